#!/usr/bin/env bash
# Install a personal HTCondor for the `htcondor` tests; idempotent, a few seconds when done before.
#
# Debian bookworm has no HTCondor and the PyPI `htcondor` wheel has no daemons, so HTCondor comes
# from Debian trixie's `condor` package inside a minbase trixie chroot, cached outside the
# repository in ${SCIENCELAB_CACHE_DIR:-$HOME/.cache/sciencelab}/htcondor-trixie. Nothing is
# mounted in the host's mount namespace: the build runs inside `unshare --mount`, so the /proc and
# /dev that debootstrap and apt need vanish with it, even if it is killed. tests/batch/htcondor.py
# starts the pool the same way.
#
# The jobs run as the unprivileged user created here (HTCondor refuses root's jobs), with the same
# uid and gid on the host and in the chroot so files in the shared /tmp belong to the same user.
set -euo pipefail

CACHE_DIR=${SCIENCELAB_CACHE_DIR:-$HOME/.cache/sciencelab}
ROOT=$CACHE_DIR/htcondor-trixie
# Bump when the chroot's contents change, so cached chroots are rebuilt.
LAYOUT=1
READY=$ROOT/.sciencelab-ready
BATCH_USER=sciencelab-batch
MIRROR=http://deb.debian.org/debian
# The condor daemons and tools, plus the shared libraries a CPython built elsewhere (pyenv, uv,
# python.org) loads for a Dask worker: ssl, ffi, compression, uuid, expat, sqlite.
PACKAGES=(condor libssl3t64 libffi8 zlib1g libbz2-1.0 liblzma5 libuuid1 libexpat1 libsqlite3-0 ca-certificates)

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "$@"
}

# Refuses to go on while anything is mounted below $1 or any process has its root there: a
# recursive delete would then reach through a bind mount into /tmp or the venv.
assert_unused() {
    local dir=$1 pid
    if grep -qsF " $dir/" /proc/[0-9]*/mountinfo || grep -qsF " $dir " /proc/[0-9]*/mountinfo; then
        echo "install-htcondor: something is mounted below $dir; not touching it" >&2
        exit 1
    fi
    for pid in /proc/[0-9]*; do
        case "$(readlink "$pid/root" 2>/dev/null)" in
            "$dir" | "$dir"/*)
                echo "install-htcondor: process ${pid#/proc/} runs inside $dir (a pool is up); not touching it" >&2
                exit 1 ;;
        esac
    done
}

# Ready: the chroot of this layout is built, and the jobs' user has the same uid here and there.
if [[ -f $READY && $(cat "$READY") == "$LAYOUT" ]] && id -u "$BATCH_USER" >/dev/null 2>&1 \
        && [[ $(id -u "$BATCH_USER") == $(awk -F: -v user="$BATCH_USER" '$1 == user {print $3}' "$ROOT/etc/passwd") ]]; then
    echo "install-htcondor: $ROOT is ready"
    exit 0
fi

command -v debootstrap >/dev/null || { apt-get update -q && apt_install debootstrap; }
if ! getent passwd "$BATCH_USER" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$BATCH_USER"
fi
BATCH_UID=$(id -u "$BATCH_USER")
BATCH_GID=$(id -g "$BATCH_USER")

mkdir -p "$CACHE_DIR"
PARTIAL=$ROOT.partial
for dir in "$PARTIAL" "$ROOT"; do
    if [[ -e $dir ]]; then
        assert_unused "$dir"
        rm -rf --one-file-system "$dir"
    fi
done

echo "install-htcondor: building $ROOT (debootstrap trixie + condor, about a minute)"
export PARTIAL MIRROR BATCH_USER BATCH_UID BATCH_GID
export PACKAGES_LIST="${PACKAGES[*]}"
# Everything mounted in here lives in this private mount namespace only.
unshare --mount --propagation private bash -euo pipefail -c '
    debootstrap --variant=minbase trixie "$PARTIAL" "$MIRROR"
    mount -t proc proc "$PARTIAL/proc"
    mount --rbind /dev "$PARTIAL/dev"
    # No service starts inside the chroot while packages install; the fixture starts the pool.
    printf "#!/bin/sh\nexit 101\n" > "$PARTIAL/usr/sbin/policy-rc.d"
    chmod 755 "$PARTIAL/usr/sbin/policy-rc.d"
    # The user first, so the condor package picks other ids for its own user.
    chroot "$PARTIAL" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        groupadd --system --gid "$BATCH_GID" "$BATCH_USER"
    chroot "$PARTIAL" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        useradd --system --uid "$BATCH_UID" --gid "$BATCH_GID" --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$BATCH_USER"
    chroot "$PARTIAL" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends $PACKAGES_LIST
    chroot "$PARTIAL" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get clean
'
# Host paths bind-mounted for the jobs (a Python under /root, a venv) must be reachable by the
# unprivileged user inside the chroot.
chmod 755 "$PARTIAL/root"
assert_unused "$PARTIAL"
mv "$PARTIAL" "$ROOT"
echo "$LAYOUT" > "$READY"
echo "install-htcondor: $ROOT is ready ($(chroot "$ROOT" /usr/bin/condor_version | head -1))"
