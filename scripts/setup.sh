#!/usr/bin/env bash
# Installs everything bnas needs to build, test and run, from Debian packages only.
# Usage: scripts/setup.sh   (as root, or as a user who may sudo, on Debian 12)
# If another apt or dpkg process holds its lock (unattended-upgrades, a second
# setup), this waits for it up to 10 minutes instead of failing at once.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "setup.sh: run it as root (sudo is not installed)" >&2
        exit 1
    fi
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
WAIT=600 # seconds to wait for another process's apt or dpkg lock
APT=($SUDO apt-get -o DPkg::Lock::Timeout=$WAIT)

# apt-get install waits for the dpkg lock (DPkg::Lock::Timeout); apt-get update
# (apt 2.6) does not wait for the package lists' lock, so it is retried.
err=$(mktemp)
trap 'rm -f "$err"' EXIT
deadline=$((SECONDS + WAIT))
until "${APT[@]}" update -q 2>"$err"; do
    rc=$?
    cat "$err" >&2
    if ! grep -q "Could not get lock" "$err" || [ $SECONDS -ge $deadline ]; then exit $rc; fi
    echo "setup.sh: another apt process holds the lock; waiting" >&2
    sleep 5
done
cat "$err" >&2

"${APT[@]}" install -y -q --no-install-recommends \
    build-essential cmake pkg-config \
    libsqlite3-dev sqlite3 libcmocka-dev zlib1g-dev libfyaml-dev \
    libopenblas0-openmp libopenblas-openmp-dev \
    openmpi-bin libopenmpi-dev \
    clang libclang-rt-14-dev libomp-dev \
    chromium fonts-dejavu-core \
    dataset-fashion-mnist
