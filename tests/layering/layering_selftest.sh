#!/usr/bin/env bash
# The layering check on a made-up tree: it passes a declared include, and names each
# undeclared one (also one into a nested module's header folder, txl/a/sub/ = module c).
set -euo pipefail
check=$(cd "$(dirname "$0")" && pwd)/check_layering.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/src/{a,b,c} "$tmp"/include/txl/a/sub "$tmp"/include/txl/b
printf 'a src/a include/txl/a\nb src/b include/txl/b a\nc src/c include/txl/a/sub a\n' > "$tmp/modules.txt"
echo '#include "txl/a/one.h"' > "$tmp/src/b/uses_a.cpp"         # declared: b uses a
echo '#include "txl/a/sub/two.h"' > "$tmp/src/c/own.cpp"          # c's own header
echo '#include "txl/a/one.h"' > "$tmp/include/txl/a/sub/two.h"    # c uses a
: > "$tmp/include/txl/a/one.h"
: > "$tmp/include/txl/b/three.h"
"$check" "$tmp/modules.txt" "$tmp" > "$tmp/out" || { cat "$tmp/out"; echo "FAIL: a clean tree was rejected"; exit 1; }

echo '#include "txl/b/three.h"' > "$tmp/src/a/bad.cpp"            # a does not use b
echo '  #  include "txl/a/sub/two.h"' > "$tmp/include/txl/b/three.h"  # b does not use c
echo '#include "txl/zzz/x.h"' > "$tmp/src/b/unknown.cpp"          # no such module
if "$check" "$tmp/modules.txt" "$tmp" > "$tmp/out" 2>&1; then
  cat "$tmp/out"; echo "FAIL: undeclared includes passed"; exit 1
fi
grep -q "src/a/bad.cpp:1: module a includes txl/b/three.h (module b)" "$tmp/out" || { cat "$tmp/out"; echo "FAIL: a->b not named"; exit 1; }
grep -q "include/txl/b/three.h:1: module b includes txl/a/sub/two.h (module c)" "$tmp/out" || { cat "$tmp/out"; echo "FAIL: b->c not named"; exit 1; }
grep -q "src/b/unknown.cpp:1: includes txl/zzz/x.h, which belongs to no declared module" "$tmp/out" || { cat "$tmp/out"; echo "FAIL: unknown module not named"; exit 1; }
[ "$(grep -c ':1: ' "$tmp/out")" -eq 3 ] || { cat "$tmp/out"; echo "FAIL: expected exactly 3 violations"; exit 1; }
echo "layering self-test: ok"
