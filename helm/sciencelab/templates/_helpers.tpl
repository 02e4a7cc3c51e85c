{{- /* Names, labels, images, generated secrets and API versions shared by the templates. */}}

{{- define "sciencelab.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* The prefix of every object's name; at most 40 characters, so `<prefix>-proxy-public` fits. */}}
{{- define "sciencelab.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := include "sciencelab.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sciencelab.hub.fullname" -}}{{ include "sciencelab.fullname" . }}-hub{{- end }}
{{- define "sciencelab.hubDb.fullname" -}}{{ include "sciencelab.fullname" . }}-hub-db{{- end }}
{{- define "sciencelab.profiles.fullname" -}}{{ include "sciencelab.fullname" . }}-profiles{{- end }}
{{- define "sciencelab.proxy.fullname" -}}{{ include "sciencelab.fullname" . }}-proxy{{- end }}
{{- define "sciencelab.proxyApi.fullname" -}}{{ include "sciencelab.fullname" . }}-proxy-api{{- end }}
{{- define "sciencelab.proxyPublic.fullname" -}}{{ include "sciencelab.fullname" . }}-proxy-public{{- end }}
{{- define "sciencelab.singleuser.fullname" -}}{{ include "sciencelab.fullname" . }}-singleuser{{- end }}
{{- define "sciencelab.dask.fullname" -}}{{ include "sciencelab.fullname" . }}-dask{{- end }}

{{- define "sciencelab.hub.serviceAccountName" -}}
{{- if .Values.hub.serviceAccount.create }}
{{- .Values.hub.serviceAccount.name | default (include "sciencelab.hub.fullname" .) }}
{{- else }}
{{- required "hub.serviceAccount.name: name the existing service account when hub.serviceAccount.create is false" .Values.hub.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /*
  Kubernetes' Service environment variables (`<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT`) of a
  Service named by the argument: how pods find the hub and the proxy's API without cluster DNS.
*/}}
{{- define "sciencelab.serviceEnvPrefix" -}}
{{- . | upper | replace "-" "_" }}
{{- end }}

{{- define "sciencelab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sciencelab.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sciencelab.labels" -}}
{{ include "sciencelab.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- /* The labels that select one component's pods; the argument is (list $ "hub"). */}}
{{- define "sciencelab.componentSelector" -}}
{{ include "sciencelab.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- /*
  Users' server pods, as KubeSpawner labels them: its `component_label` and the common labels that
  files/hub/jupyterhub_config.py sets (name, instance). The NetworkPolicies select them by these.
*/}}
{{- define "sciencelab.singleuserSelector" -}}
{{ include "sciencelab.componentSelector" (list . "singleuser-server") }}
{{- end }}

{{- /* `name:tag`, the tag defaulting to the chart's appVersion. The argument is (list $ image). */}}
{{- define "sciencelab.image" -}}
{{- $image := index . 1 }}
{{- printf "%s:%s" $image.name ($image.tag | default (index . 0).Chart.AppVersion) }}
{{- end }}

{{- define "sciencelab.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{- /*
  Security contexts: non-root, no privilege, every capability dropped, seccomp RuntimeDefault; the
  values may add to them (the schema refuses root and privileges). The argument is the value.
*/}}
{{- define "sciencelab.podSecurityContext" -}}
{{- $defaults := dict "runAsNonRoot" true "runAsUser" 1000 "runAsGroup" 1000 "fsGroup" 1000 "seccompProfile" (dict "type" "RuntimeDefault") }}
{{- mergeOverwrite $defaults . | toYaml }}
{{- end }}

{{- define "sciencelab.containerSecurityContext" -}}
{{- $defaults := dict "allowPrivilegeEscalation" false "capabilities" (dict "drop" (list "ALL")) "readOnlyRootFilesystem" true "runAsNonRoot" true }}
{{- mergeOverwrite $defaults . | toYaml }}
{{- end }}

{{- /*
  A secret that is generated once: the value given, else the one the release's hub Secret already
  holds under `key` (so upgrades keep it), else 64 random hex characters. Arguments: (list $ key given).
*/}}
{{- define "sciencelab.keptSecret" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- $given := index . 2 }}
{{- if $given }}
{{- $given }}
{{- else }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (include "sciencelab.hub.fullname" $root) | default dict }}
{{- $data := get $existing "data" | default dict }}
{{- if hasKey $data $key }}
{{- index $data $key | b64dec }}
{{- else }}
{{- randAlphaNum 64 | sha256sum }}
{{- end }}
{{- end }}
{{- end }}

{{- /*
  API versions of kinds that moved since Kubernetes 1.20, by the cluster's version (as `helm
  template --kube-version` states it too): policy/v1 PodDisruptionBudget from 1.21.
*/}}
{{- define "sciencelab.apiVersion.pdb" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version }}policy/v1{{ else }}policy/v1beta1{{ end }}
{{- end }}

{{- /*
  Egress rules of a NetworkPolicy from its `egressAllowRules` switches and its extra `egress`
  rules. The argument is the networkPolicy value.
*/}}
{{- define "sciencelab.privateCidrs" -}}
- 10.0.0.0/8
- 172.16.0.0/12
- 192.168.0.0/16
{{- end }}

{{- define "sciencelab.egressRules" -}}
{{- $allow := .egressAllowRules }}
{{- if $allow.dnsPorts }}
# DNS, wherever the resolver is.
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end }}
{{- if $allow.nonPrivateIPs }}
# The internet: not private addresses, not the cloud metadata server.
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          {{- include "sciencelab.privateCidrs" . | nindent 10 }}
          - 169.254.169.254/32
{{- end }}
{{- if $allow.privateIPs }}
# Private addresses: other pods, the Kubernetes API, in-house services.
- to:
    {{- range (include "sciencelab.privateCidrs" . | fromYamlArray) }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
{{- end }}
{{- if $allow.cloudMetadataServer }}
# The cloud metadata server.
- to:
    - ipBlock: {cidr: 169.254.169.254/32}
{{- end }}
{{- with .egress }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- /*
  What files/hub/jupyterhub_config.py reads: the values it applies and the names of the objects it
  refers to. The profile file is not here: it has its own ConfigMap, which the hub re-reads without
  a restart, while a change here restarts the hub (the Deployment's checksum).
*/}}
{{- define "sciencelab.hubValues" -}}
{{- $names := dict
  "fullname" (include "sciencelab.fullname" .)
  "hubService" (include "sciencelab.hub.fullname" .)
  "proxyApiService" (include "sciencelab.proxyApi.fullname" .)
  "daskConfigMap" (include "sciencelab.dask.fullname" .)
  "singleuserServiceAccount" (include "sciencelab.singleuser.fullname" .)
}}
{{- $release := dict "name" .Release.Name "namespace" .Release.Namespace "appName" (include "sciencelab.name" .) }}
{{- $hub := pick .Values.hub "baseUrl" "config" "extraConfig" "db" "services" "login" "sessions" "sharing" }}
{{- $singleuser := omit .Values.singleuser "profiles" "networkPolicy" }}
{{- $_ := set $singleuser "image" (dict "name" (include "sciencelab.image" (list . .Values.singleuser.image)) "pullPolicy" .Values.singleuser.image.pullPolicy) }}
{{- $dask := dict "configs" (keys .Values.dask.configs | sortAlpha) "kubernetes" (pick .Values.dask.kubernetes "enabled" "namespace") }}
{{- toYaml (dict "names" $names "release" $release "hub" $hub "singleuser" $singleuser "dask" $dask "imagePullSecrets" .Values.imagePullSecrets) }}
{{- end }}

{{- /*
  Dask pods of the `kubernetes` backend: the operator copies the DaskCluster's labels, which
  server_extension/sciencelab/dask/backends/kubernetes.py (make_labels) sets, to its pods, and
  adds `dask.org/component`.
*/}}
{{- define "sciencelab.daskSelector" -}}
app.kubernetes.io/managed-by: sciencelab
{{- end }}

{{- define "sciencelab.daskSchedulerSelector" -}}
{{ include "sciencelab.daskSelector" . }}
dask.org/component: scheduler
{{- end }}
