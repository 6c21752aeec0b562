#!/usr/bin/env bash
# Builds the GPU test and benchmark programs on this (CPU-only) machine and packs them,
# with the shared libraries they need, into .carry/ (git-ignored), for
# bench/gpu/run_on_device.sh on a GPU machine that has the CUDA toolkit and NCCL but not
# our other dependencies (HDF5, yaml-cpp, fmt, Open MPI...).
#
#   bench/gpu/prepare_carry.sh            # build dir: build-carry (sm_90, no -march=native)
#
# Left out of .carry/lib: the CUDA runtime, cuBLAS(Lt) and NCCL (the GPU machine's own,
# same major version), and the C/C++ runtime (glibc, libstdc++, libgcc_s: the GPU
# machine's are newer and backward compatible). Open MPI's component folder and help
# files go to .carry/ompi (run_on_device.sh sets OPAL_PREFIX to it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${TXL_CARRY_BUILD:-$root/build-carry}
carry=$root/.carry
jobs=${TXL_CARRY_JOBS:-2}
limit_mb=60
targets=(test_gpu gpu_bench txl_prep txl_train txl_eval)

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTXL_CUDA=ON -DTXL_NATIVE=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90 >"$root/.carry-configure.log" 2>&1 ||
  { cat "$root/.carry-configure.log"; echo "error: cmake configure failed" >&2; exit 1; }
rm -f "$root/.carry-configure.log"
ninja -C "$build" -j "$jobs" "${targets[@]}"

rm -rf "$carry"
mkdir -p "$carry/bin" "$carry/lib"
for t in "${targets[@]}"; do
  cp "$build/bin/$t" "$carry/bin/"
  strip --strip-unneeded "$carry/bin/$t"
done

# Shared-library closure, minus what the GPU machine provides itself.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libutil\.so|libresolv\.so|libstdc\+\+\.so|libgcc_s\.so|libcuda\.so|libcudart\.so|libcublas\.so|libcublasLt\.so|libnccl\.so)'
declare -A seen=()
queue=("$carry"/bin/*)
while ((${#queue[@]})); do
  f=${queue[0]}
  queue=("${queue[@]:1}")
  while read -r name path; do
    [[ -z "$path" || "$path" == "not" ]] && { [[ "$name" =~ $skip ]] || echo "warning: $f needs $name, not found here" >&2; continue; }
    [[ "$name" =~ $skip ]] && continue
    [[ -n "${seen[$name]:-}" ]] && continue
    seen[$name]=1
    cp -L "$path" "$carry/lib/$name"
    queue+=("$carry/lib/$name")
  done < <(ldd "$f" | awk '/=>/ {print $1, $3}')
done

# Open MPI: components (dlopen'ed at MPI_Init) and help texts, in the layout that
# OPAL_PREFIX relocates (prefix /usr; see `ompi_info --path all`). Their own library
# dependencies join .carry/lib.
ompi_lib=/usr/lib/x86_64-linux-gnu/openmpi/lib
if [[ -d "$ompi_lib/openmpi3" ]]; then
  mkdir -p "$carry/ompi/lib/x86_64-linux-gnu/openmpi/lib" "$carry/ompi/share" "$carry/ompi/etc"
  cp -r "$ompi_lib/openmpi3" "$carry/ompi/lib/x86_64-linux-gnu/openmpi/lib/"
  [[ -d /usr/share/openmpi ]] && cp -r /usr/share/openmpi "$carry/ompi/share/"
  [[ -d /etc/openmpi ]] && cp -r /etc/openmpi "$carry/ompi/etc/"
  for comp in "$carry"/ompi/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/*.so; do
    while read -r name path; do
      [[ -z "$path" || "$name" =~ $skip || -n "${seen[$name]:-}" ]] && continue
      seen[$name]=1
      cp -L "$path" "$carry/lib/$name"
    done < <(ldd "$comp" | awk '/=>/ {print $1, $3}')
  done
fi

size_mb=$(du -sm "$carry" | cut -f1)
echo "carry: $(ls "$carry/bin" | tr '\n' ' ')| $(ls "$carry/lib" | wc -l) libraries | ${size_mb} MB"
if ((size_mb >= limit_mb)); then
  echo "error: .carry is ${size_mb} MB, over the ${limit_mb} MB budget" >&2
  exit 1
fi
