#!/usr/bin/env bash
# Install SLURM and MUNGE from Debian for the `slurm` tests; idempotent, instant when done before.
#
# Only the packages: tests/batch/slurm.py writes a private slurm.conf and MUNGE key per cluster and
# starts munged, slurmctld and slurmd itself, so nothing is configured or started here. Package
# scripts that would start services find no init system, or are told not to by policy-rc.d.
set -euo pipefail
[[ $(id -u) == 0 ]] || { echo "install-slurm: run as root (apt-get)" >&2; exit 1; }

if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
    echo "install-slurm: $(slurmctld -V) and munge are installed"
    exit 0
fi

# No service starts during this install unless the machine already had its own policy.
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\nexit 101\n' | tee "$POLICY" >/dev/null
    chmod 755 "$POLICY"
    trap 'rm -f "$POLICY"' EXIT
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends \
    slurmctld slurmd slurm-client munge
echo "install-slurm: $(slurmctld -V) and munge are installed"
