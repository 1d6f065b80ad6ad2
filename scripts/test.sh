#!/usr/bin/env bash
# Installs what is missing, builds Lepton with its tests, and runs every test (ctest, then pytest).
# Usage: bash scripts/test.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${1:-build}
bash scripts/install-deps.sh

# Paths relative to the checkout let ccache reuse objects between clones in different folders.
export CCACHE_BASEDIR="$PWD"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DLEPTON_SHARED_DIR="${LEPTON_SHARED_DIR:-$PWD/../shared}"
cmake --build "$build_dir" -j"$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)"

# Python: the module of this build tree, compared with the CLI of the same build.
build_path=$(cd "$build_dir" && pwd)
if compgen -G "$build_path/bindings/python/lepton*.so" > /dev/null; then
  PYTHONPATH="$build_path/bindings/python${PYTHONPATH:+:$PYTHONPATH}" LEPTON_CLI="$build_path/lepton" \
    LEPTON_SHARED_DIR="${LEPTON_SHARED_DIR:-$PWD/../shared}" /usr/bin/python3 -m pytest -q tests/python
else
  # install-deps.sh installs pybind11 and the Python headers, so a missing module is a build fault here.
  echo "test.sh: $build_path has no Python module (see CMake's 'lepton: skipping' line); pytest cannot run" >&2
  exit 1
fi

# Fuzz the model-file parser with libFuzzer for a bounded 30 s, in a small runtime-only clang build.
cmake -S . -B "$build_dir-fuzz" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++-14 -DLEPTON_BUILD_FUZZ=ON \
  -DLEPTON_BUILD_TRAIN=OFF -DLEPTON_BUILD_PYTHON=OFF -DLEPTON_BUILD_EXAMPLES=OFF
cmake --build "$build_dir-fuzz" -j"$(nproc)" --target fuzz_artifact
ctest --test-dir "$build_dir-fuzz" -L fuzz --output-on-failure
