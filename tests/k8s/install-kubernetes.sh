#!/usr/bin/env bash
# Installs what the `k8s` test tier's single-node cluster needs (tests/k8s/cluster.py):
# - from apt: etcd, containerd, runc, the CNI plugins, conntrack (kube-proxy), nftables (to remove
#   the iptables tables kube-proxy creates), busybox-static (the test pods' image);
# - built once from Debian bookworm's kubernetes source package (no registry ships the server
#   binaries; Debian ships only the client): kube-apiserver, kube-controller-manager,
#   kube-scheduler, kubelet and kube-proxy, in one `make WHAT=...`, and the pause binary of the
#   pod sandbox image from the same source.
# Idempotent: cached binaries that print the version skip the build (about 6 minutes on a quiet
# 2-core machine, longer on a busy one); a missing one rebuilds only the missing ones. The build
# needs no network beyond apt: the source package vendors every Go module, so GOPROXY=off. The
# machine's apt sources are left alone: the deb-src line lives in a private apt configuration.
set -euo pipefail

VERSION=1.20.2
DEBIAN_VERSION=1.20.5+really1.20.2-1.1+deb12u1
CACHE_DIR=${SCIENCELAB_CACHE_DIR:-$HOME/.cache/sciencelab}
DEST=$CACHE_DIR/kubernetes-$VERSION
COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} = 0 ] && return
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
    # The packages' own daemons (a system containerd) must not start: the tests run their own, with
    # their own sockets and state. A policy-rc.d of the machine's own is left as it is.
    local policy=/usr/sbin/policy-rc.d created="" status=0
    if [ ! -e "$policy" ]; then
        $SUDO sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 0755 $policy"
        created=yes
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q \
        --no-install-recommends "${missing[@]}" || status=$?
    [ -z "$created" ] || $SUDO rm -f "$policy"
    return $status
}

apt_install etcd-server containerd runc containernetworking-plugins conntrack iptables nftables busybox-static

mkdir -p "$DEST"
# Two `make test` runs at once build once: the second waits here and then finds the binaries.
exec 9>"$DEST/.lock"
flock 9

missing=()
for command in "${COMMANDS[@]}"; do
    binary=$DEST/$command
    [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -q "v$VERSION" || missing+=("$command")
done
if [ ${#missing[@]} = 0 ] && [ -x "$DEST/pause" ]; then
    echo "kubernetes v$VERSION (${COMMANDS[*]}, pause): cached in $DEST"
    exit 0
fi
[ ${#missing[@]} = 0 ] && missing=(kube-apiserver)  # only pause is missing: the smallest build that unpacks the source

echo "kubernetes v$VERSION: building ${missing[*]} and pause from Debian's source package kubernetes=$DEBIAN_VERSION"
started=$(date +%s)
apt_install golang-go rsync jq dpkg-dev gcc libc6-dev golang-github-modern-go-reflect2-dev
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
rsync -a --delete /usr/share/gocode/src/github.com/modern-go/reflect2/ "$source_dir/vendor/github.com/modern-go/reflect2/"
(
    cd "$source_dir"
    export GOPROXY=off GOFLAGS=-mod=vendor GOCACHE="$build_dir/gocache" GOPATH="$build_dir/gopath"
    make WHAT="${missing[*]/#/cmd/}"
)
for command in "${missing[@]}"; do
    install -m 0755 "$source_dir/_output/bin/$command" "$DEST/$command.new"
    mv "$DEST/$command.new" "$DEST/$command"
    "$DEST/$command" --version
done
# The pod sandbox's PID 1, as upstream builds it for the registry.k8s.io/pause image.
gcc -Os -Wall -static -DVERSION="v$VERSION-sciencelab" -o "$DEST/pause.new" \
    "$(find "$source_dir/build/pause" -name pause.c | head -1)"
mv "$DEST/pause.new" "$DEST/pause"
echo "kubernetes v$VERSION: built in $(( $(date +%s) - started )) s, cached in $DEST"
