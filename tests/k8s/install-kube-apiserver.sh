#!/usr/bin/env bash
# Installs what the `k8s` test tier needs: Debian's etcd and a kube-apiserver built once from
# Debian bookworm's kubernetes source package (no registry ships the binary; Debian ships only
# the client). Idempotent: a cached binary that runs `--version` skips the build (about 10
# minutes on 2 cores). The build needs no network beyond apt: the source package vendors every
# Go module, so GOPROXY=off. The machine's apt sources are left alone: the deb-src line lives in
# a private apt configuration under the cache directory.
set -euo pipefail

VERSION=1.20.2
DEBIAN_VERSION=1.20.5+really1.20.2-1.1+deb12u1
CACHE_DIR=${SCIENCELAB_CACHE_DIR:-$HOME/.cache/sciencelab}
DEST=$CACHE_DIR/kube-apiserver-$VERSION
BINARY=$DEST/kube-apiserver
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} = 0 ] && return
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q \
        --no-install-recommends "${missing[@]}"
}

apt_install etcd-server

mkdir -p "$DEST"
# Two `make test` runs at once build once: the second waits here and then finds the binary.
exec 9>"$DEST/.lock"
flock 9
# The marker tells a binary built with reflect2 1.0.2 (below) from an older, crashing one.
PATCHED=$DEST/.reflect2-1.0.2
if [ -x "$BINARY" ] && [ -e "$PATCHED" ] && "$BINARY" --version | grep -q "v$VERSION"; then
    echo "kube-apiserver v$VERSION: cached in $DEST"
    exit 0
fi

echo "kube-apiserver v$VERSION: building from Debian's source package kubernetes=$DEBIAN_VERSION (about 10 minutes)"
started=$(date +%s)
apt_install golang-go rsync jq dpkg-dev
rm -rf "$DEST"/build.*  # what a killed build left (we hold the lock: no build is running)

build_dir=$(mktemp -d "$DEST/build.XXXXXX")
trap 'rm -rf "$build_dir"' EXIT
apt_dir=$build_dir/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
    >"$apt_dir/sources.list"
private_apt=(
    -o Dir::Etc::sourcelist="$apt_dir/sources.list"
    -o Dir::Etc::sourceparts=-
    -o Dir::State::Lists="$apt_dir/lists"
    -o Dir::Cache="$apt_dir/cache"
    -o APT::Get::List-Cleanup=0
    # apt's `_apt` sandbox user cannot write into a root-owned private directory.
    -o APT::Sandbox::User="$(id -un)"
)
apt-get "${private_apt[@]}" update -q
(cd "$build_dir" && apt-get "${private_apt[@]}" source -q "kubernetes=$DEBIAN_VERSION")
source_dir=$(find "$build_dir" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*')
# The source vendors modern-go/reflect2 1.0.1, which makes Go >= 1.18 binaries crash (SIGSEGV in
# json-iterator's map iteration) on every custom resource, e.g. a DaskCluster: use bookworm's 1.0.2.
apt_install golang-github-modern-go-reflect2-dev
rsync -a --delete /usr/share/gocode/src/github.com/modern-go/reflect2/ "$source_dir/vendor/github.com/modern-go/reflect2/"
(
    cd "$source_dir"
    export GOPROXY=off GOFLAGS=-mod=vendor GOCACHE="$build_dir/gocache" GOPATH="$build_dir/gopath"
    make WHAT=cmd/kube-apiserver
)
install -m 0755 "$source_dir/_output/bin/kube-apiserver" "$BINARY.new"
mv "$BINARY.new" "$BINARY"
touch "$PATCHED"
"$BINARY" --version
echo "kube-apiserver v$VERSION: built in $(( $(date +%s) - started )) s, cached in $DEST"
