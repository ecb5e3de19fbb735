#!/usr/bin/env bash
# Installs everything bnas needs to build, test and run, from Debian packages only.
# Usage: sudo scripts/setup.sh   (as root on a fresh Debian 12 machine)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
    build-essential cmake pkg-config \
    libsqlite3-dev sqlite3 libcmocka-dev zlib1g-dev libfyaml-dev \
    libopenblas0-openmp libopenblas-openmp-dev \
    openmpi-bin libopenmpi-dev \
    clang libclang-rt-14-dev libomp-dev \
    chromium fonts-dejavu-core \
    dataset-fashion-mnist
