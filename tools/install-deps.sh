#!/usr/bin/env bash
# Install what recompose needs on Debian 12 / Ubuntu 22.04+ (apt only).
# Idempotent; uses sudo when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake pkg-config git
      libopenblas-dev liblapacke-dev libinih-dev libjansson-dev libomp-dev
      libturbojpeg0-dev libpng-dev zlib1g-dev libcairo2-dev fonts-dejavu-core
      libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
      python3 python3-numpy python3-torch python3-matplotlib python3-sklearn python3-opencv
      libopenmpi-dev openmpi-bin valgrind libdnnl-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "recompose: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
