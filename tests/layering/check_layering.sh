#!/usr/bin/env bash
# check_layering.sh MODULES_FILE [ROOT]: every #include "txl/<module>/..." in a module's
# folder and in its public headers names the module itself or one it declares with USES
# in its CMakeLists.txt. MODULES_FILE has one line per module (written by the top-level
# CMakeLists.txt as build/txl_modules.txt): "<module> <source dir> <header dir> <uses...>".
# Prints one line per violation ("file:line: includes <module> ..."); exit 1 when any.
set -euo pipefail
modules_file=$1
root=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -r "$modules_file" ] || { echo "error: $modules_file: module list not found (configure with cmake first)" >&2; exit 2; }

declare -A src_dir hdr_dir uses
while read -r module dir headers rest; do
  [ -n "${module:-}" ] || continue
  src_dir[$module]=$dir
  hdr_dir[$module]=$headers
  uses[$module]=" $module ${rest:-} "
done < "$modules_file"

# The module a header path "txl/a/b/c.h" belongs to: the longest declared header folder
# that holds it (txl/data/prep/ is module prep, txl/data/ module data).
owner_of() {
  local path="include/$1" best="" best_len=0 m h
  for m in "${!hdr_dir[@]}"; do
    h=${hdr_dir[$m]}
    if [[ "$path" == "$h/"* && ${#h} -gt $best_len ]]; then best=$m; best_len=${#h}; fi
  done
  echo "$best"
}

violations=0
check_file() {  # file, module whose rules apply
  local file=$1 module=$2 line_no text path owner
  while IFS=: read -r line_no text; do
    path=$(sed -E 's/.*#[[:space:]]*include[[:space:]]+"(txl\/[^"]+)".*/\1/' <<<"$text")
    owner=$(owner_of "$path")
    if [ -z "$owner" ]; then
      echo "$file:$line_no: includes $path, which belongs to no declared module"
      violations=$((violations + 1))
    elif [[ "${uses[$module]}" != *" $owner "* ]]; then
      echo "$file:$line_no: module $module includes $path (module $owner); declare it in ${src_dir[$module]}/CMakeLists.txt (USES) or move the code"
      violations=$((violations + 1))
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"txl/' "$file" || true)
}

for module in "${!src_dir[@]}"; do
  while IFS= read -r -d '' f; do check_file "$f" "$module"; done \
    < <(find "$root/${src_dir[$module]}" -maxdepth 1 -type f \( -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' \) -print0)
  if [ -d "$root/${hdr_dir[$module]}" ]; then
    # A module's own header folder, without the folders of other modules inside it.
    while IFS= read -r -d '' f; do
      [ "$(owner_of "${f#"$root"/include/}")" = "$module" ] && check_file "$f" "$module"
    done < <(find "$root/${hdr_dir[$module]}" -type f -name '*.h' -print0)
  fi
done
if ((violations)); then
  echo "layering: $violations include(s) cross a module boundary the CMakeLists files do not declare" >&2
  exit 1
fi
echo "layering: ${#src_dir[@]} modules, every include declared"
