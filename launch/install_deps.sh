#!/usr/bin/env bash
# Installs the Debian packages txl needs to build and test, skipping those already
# present (so it does not touch the network when nothing is missing).
# Usage: launch/install_deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libeigen3-dev
          libyaml-cpp-dev libgtest-dev libfmt-dev libcli11-dev nlohmann-json3-dev libssl-dev zlib1g-dev)
if [[ "${1:-}" == "--test" ]]; then
  # SLURM for the two-node e2e test; the aarch64 cross compiler for the compile-only
  # check of the CPU code for Grace nodes (tests/compile_targets.sh); gnuplot for the
  # txl_plot test.
  packages+=(slurmctld slurmd slurm-client g++-aarch64-linux-gnu gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "txl: installing missing packages: ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
