#!/usr/bin/env bash
# Downloads and unpacks the standard language-modelling corpora into the layout txl_prep
# reads, then prints the txl_prep command for each. Run on a machine with internet access
# (not part of the tests or CI).
#
#   data_prep/getdata.sh [DEST] [wt103 wt2 ptb enwik8 text8 lm1b]   (default: DEST=data, all)
#
# Layout produced (what `txl_prep --dataset NAME --data DEST/NAME` expects):
#   wikitext-103/ wikitext-2/ penn/   train.txt valid.txt test.txt
#   enwik8/enwik8.zip   text8/text8.zip   (txl_prep reads the zip directly and splits it)
#   one-billion-words/  1b_word_vocab.txt, valid.txt, test.txt and the benchmark's
#                       1-billion-word-language-modeling-benchmark-r13output/ tree
set -euo pipefail

dest=${1:-data}
shift || true
sets=("$@")
((${#sets[@]})) || sets=(wt103 wt2 ptb enwik8 text8 lm1b)

fetch() {  # fetch URL FILE [FALLBACK_URL]
  local url=$1 out=$2 alt=${3:-}
  [[ -s $out ]] && { echo "  have $out"; return 0; }
  echo "  downloading $url"
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$out.part" "$url" || { [[ -n $alt ]] && curl -fL --retry 3 -o "$out.part" "$alt"; }
  else
    wget -q -O "$out.part" "$url" || { [[ -n $alt ]] && wget -q -O "$out.part" "$alt"; }
  fi
  mv "$out.part" "$out"
}

wikitext() {  # wikitext NAME DIR
  local name=$1 dir=$2
  mkdir -p "$dest/$dir" && cd "$dest/$dir"
  fetch "https://wikitext.smerity.com/$name-v1.zip" "$name-v1.zip" \
        "https://s3.amazonaws.com/research.metamind.io/wikitext/$name-v1.zip"
  unzip -oq "$name-v1.zip"
  for s in train valid test; do mv -f "$name/wiki.$s.tokens" "$s.txt"; done
  rmdir "$name" 2>/dev/null || true
  cd - >/dev/null
}

for set in "${sets[@]}"; do
  echo "== $set"
  case $set in
    wt103) wikitext wikitext-103 wikitext-103; dir=wikitext-103 ;;
    wt2) wikitext wikitext-2 wikitext-2; dir=wikitext-2 ;;
    ptb)
      dir=penn
      mkdir -p "$dest/$dir" && cd "$dest/$dir"
      fetch "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz" simple-examples.tgz
      tar -xzf simple-examples.tgz
      for s in train valid test; do cp -f "simple-examples/data/ptb.$s.txt" "$s.txt"; done
      rm -rf simple-examples
      cd - >/dev/null ;;
    enwik8)
      dir=enwik8
      mkdir -p "$dest/$dir" && cd "$dest/$dir"
      fetch "http://mattmahoney.net/dc/enwik8.zip" enwik8.zip
      cd - >/dev/null ;;
    text8)
      dir=text8
      mkdir -p "$dest/$dir" && cd "$dest/$dir"
      fetch "http://mattmahoney.net/dc/text8.zip" text8.zip
      cd - >/dev/null ;;
    lm1b)
      dir=one-billion-words
      mkdir -p "$dest/$dir" && cd "$dest/$dir"
      fetch "http://www.statmt.org/lm-benchmark/1-billion-word-language-modeling-benchmark-r13output.tar.gz" \
            1-billion-word-language-modeling-benchmark-r13output.tar.gz
      tar -xzf 1-billion-word-language-modeling-benchmark-r13output.tar.gz
      held=1-billion-word-language-modeling-benchmark-r13output/heldout-monolingual.tokenized.shuffled
      # As in the published recipe, the first held-out shard serves as both valid and test.
      cp -f "$held/news.en.heldout-00000-of-00050" valid.txt
      cp -f "$held/news.en.heldout-00000-of-00050" test.txt
      fetch "https://github.com/rafaljozefowicz/lm/raw/master/1b_word_vocab.txt" 1b_word_vocab.txt
      cd - >/dev/null ;;
    *) echo "unknown corpus '$set' (expected wt103 wt2 ptb enwik8 text8 lm1b)" >&2; exit 1 ;;
  esac
  echo "  prepare with: build/bin/txl_prep --dataset $set --data $dest/$dir --out $dest/$set.h5"
done
