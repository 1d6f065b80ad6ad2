#!/usr/bin/env bash
# Installs Lepton's build and test dependencies from Debian 12's own packages (no PyPI, no downloads).
# Skips apt entirely when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config git
  libtorch-dev libeigen3-dev libfmt-dev nlohmann-json3-dev libsodium-dev libopenblas-dev libcli11-dev libcpuinfo-dev libgloo-dev
  clang-14 libclang-rt-14-dev
  catch2 pybind11-dev python3-dev python3-numpy python3-pytest python3-pandas python3-matplotlib
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo_prefix=()
[ "$(id -u)" -eq 0 ] || sudo_prefix=(sudo)
echo "install-deps: installing ${missing[*]}"
"${sudo_prefix[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_prefix[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
