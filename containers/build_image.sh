#!/usr/bin/env bash
# Builds the txl container image and, when Enroot is installed, its squashfs file for
# Pyxis (srun --container-image). Run from anywhere:
#   containers/build_image.sh [TAG] [SQSH]        defaults: txl:latest, ./txl.sqsh
# Extra docker build arguments: DOCKER_BUILD_ARGS="--build-arg CUDA_ARCHITECTURES=90"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-txl:latest}
sqsh=${2:-$PWD/txl.sqsh}
# shellcheck disable=SC2086
DOCKER_BUILDKIT=1 docker build -f "$root/containers/Dockerfile" -t "$tag" ${DOCKER_BUILD_ARGS:-} "$root"
if command -v enroot >/dev/null; then
  rm -f "$sqsh"
  enroot import -o "$sqsh" "dockerd://$tag"
  echo "image $tag -> $sqsh; use it with: CONT=$sqsh sbatch -N 2 slurm/run.sub train"
else
  echo "image $tag built; enroot is not installed here: on a cluster node run" \
       "'enroot import -o txl.sqsh dockerd://$tag' (same docker daemon) or push the image and" \
       "'enroot import -o txl.sqsh docker://REGISTRY#$tag'"
fi
