#!/usr/bin/env bash
# The main job on the embedded default: build, prepare the bundled WikiText-2 corpus,
# train configs/tiny.yaml on CPU for a few minutes, evaluate on test, print perplexity.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
launch/install_deps.sh
TXL_BUILD_TARGETS="txl_prep txl_train txl_eval" launch/build.sh
bin=${TXL_BUILD_DIR:-$root/build}/bin
work=${TXL_WORK_DIR:-$root/work_dir/quickstart}
mkdir -p "$work"
"$bin/txl_prep" --dataset wt2 --data data_prep/samples/wikitext-2 --out "$work/corpus.h5"
# --restart auto: a second run continues an interrupted one (nothing is lost or redone)
# and finds a finished one finished.
"$bin/txl_train" configs/tiny.yaml --data "$work/corpus.h5" --work_dir "$work" --restart auto "$@"
"$bin/txl_eval" --model "$work/checkpoint_best.h5" --data "$work/corpus.h5" --split test
