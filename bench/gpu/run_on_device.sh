#!/usr/bin/env bash
# Runs the GPU checks and benchmarks on a GPU machine in one call, from the binaries that
# bench/gpu/prepare_carry.sh packed into .carry/ (nothing is compiled here).
#
#   bash bench/gpu/run_on_device.sh [env] [tests] [core] [e2e] [bench]   (default: all, in this order)
#
#   env    GPU, driver, the libraries the binaries resolve to
#   tests  test_gpu: every CUDA op vs the CPU backend, precision modes, arena, CUDA
#          graphs, NCCL (one rank), whole model fp32/bf16 vs CPU, 200-step loss curve
#   core   gpu_bench train wt103 base bf16 at 16 and 32 streams (tok/s, ms/step, MFU,
#          memory), each beside the traffic model's prediction (gpu_bench plan,
#          docs/gpu.md "Traffic model") for this GPU
#   bench  gpu_bench: cuBLAS GEMM rates; training throughput of the trainbench shapes
#          (wt103 base 16 and 32 streams per GPU, large 4 and 8); evaluation latency and
#          throughput of wt103 base at batch 1..32
#   e2e    txl_prep on the bundled WikiText-2 sample, then txl_train configs/tiny.yaml for
#          200 steps on the CPU and on the GPU: the two loss curves must agree
#
# Logs and results go to $OUT (default ./gpu_out): env.log, test_gpu.log, test_gpu.xml,
# bench.log, bench.jsonl, e2e.log. Stages stop early (and say so) when the whole run
# would pass TXL_DEADLINE seconds (default 560: a device call is limited to 600 s), so
# the default order puts what matters most first; `env bench` is the second call.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
carry=$root/.carry
out=${OUT:-$root/gpu_out}
deadline=${TXL_DEADLINE:-560}
mkdir -p "$out"
start=$SECONDS
stages=("$@")
((${#stages[@]})) || stages=(env tests core e2e bench)
want() { local s; for s in "${stages[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }
left() { echo $((deadline - (SECONDS - start))); }
status=0

if [[ ! -x "$carry/bin/test_gpu" ]]; then
  echo "error: $carry/bin/test_gpu missing: run bench/gpu/prepare_carry.sh on the build machine and carry .carry" >&2
  exit 1
fi

# ---- libraries: ours from .carry/lib, CUDA/NCCL from this machine ---------------------------
find_lib() {  # prints the directory holding $1, searching the usual places
  local name=$1 d site
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib /usr/local/nvidia/lib64 \
           /usr/lib/x86_64-linux-gnu; do
    [[ -e "$d/$name" ]] && { echo "$d"; return 0; }
  done
  d=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n {print $NF; exit}')
  [[ -n "$d" ]] && { dirname "$d"; return 0; }
  for site in $(python3 -c 'import site, sysconfig; print(" ".join(site.getsitepackages() + [sysconfig.get_paths()["purelib"]]))' 2>/dev/null); do
    [[ -d "$site/nvidia" ]] || continue
    d=$(find "$site/nvidia" -name "$name" 2>/dev/null | head -n 1)
    [[ -n "$d" ]] && { dirname "$d"; return 0; }
  done
  return 1
}
libpath=$carry/lib
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
  if d=$(find_lib "$lib"); then
    [[ ":$libpath:" == *":$d:"* ]] || libpath=$libpath:$d
  else
    echo "warning: $lib not found on this machine" >&2
  fi
done
export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPAL_PREFIX=$carry/ompi
export OMPI_MCA_plm_rsh_agent=false  # single node; no ssh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo}  # one node: NCCL's bootstrap needs no other interface
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
bin=$carry/bin

if want env; then
  {
    echo "== $(date -u) on $(hostname)"
    nvidia-smi 2>&1 | head -n 20 || true
    echo "== LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    for b in "$bin"/*; do
      echo "== ldd $(basename "$b")"
      ldd "$b" | grep -E 'not found|cuda|cublas|nccl|libstdc' || true
    done
  } 2>&1 | tee "$out/env.log"
  if grep -q '=> not found' "$out/env.log"; then
    echo "error: unresolved libraries (see env.log)" >&2
    status=1
  fi
fi

if want tests; then
  echo "== test_gpu ($(left) s left)"
  timeout $(($(left) > 300 ? 300 : $(left))) "$bin/test_gpu" --gtest_output="xml:$out/test_gpu.xml" 2>&1 |
    tee "$out/test_gpu.log"
  rc=${PIPESTATUS[0]}
  sed -n '/Global test environment tear-down/,$p' "$out/test_gpu.log" | grep -v '^\[  SKIPPED \] [A-Z]' | head -n 60
  ((rc == 0)) || { echo "test_gpu: exit code $rc"; status=1; }
fi

run_bench() {  # run_bench SECONDS ARGS...: one gpu_bench call if the deadline allows it
  local need=$1
  shift
  if (($(left) < need)); then
    echo "skipped (deadline): gpu_bench $*" | tee -a "$out/bench.log"
    return 0
  fi
  echo "== gpu_bench $*" | tee -a "$out/bench.log"
  timeout "$need" "$bin/gpu_bench" "$@" --json "$out/bench.jsonl" 2>&1 | tee -a "$out/bench.log"
  local rc=${PIPESTATUS[0]}
  ((rc == 0)) || { echo "gpu_bench $*: exit code $rc" | tee -a "$out/bench.log"; status=1; }
}

# The traffic model's GPU (gpu_bench plan --plan_device) for this machine's GPU name.
plan_device() {
  local name
  name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
  case $name in
    *H200*) echo h200 ;;
    *A100*) echo a100 ;;
    *) echo h100 ;;
  esac
}

if want core; then
  dev=$(plan_device)
  for batch in 16 32; do
    run_bench 90 train --model wt103_base --batch "$batch" --precision bf16 --warmup 3 --steps 10
    echo "== traffic model, wt103 base bf16 batch $batch ($dev)" | tee -a "$out/bench.log"
    "$bin/gpu_bench" plan --model wt103_base --batch "$batch" --precision bf16 --plan_device "$dev" \
      >"$out/plan_b$batch.log" 2>&1 || { echo "gpu_bench plan: failed" | tee -a "$out/bench.log"; status=1; }
    grep -E '^total|ms/step|predicted peak|^fits|^does not fit' "$out/plan_b$batch.log" | tee -a "$out/bench.log"
  done
  grep -E '^(RESULT|PLAN) train wt103_base bf16' "$out/bench.log" || true
fi


e2e() {  # prints "e2e: OK", "e2e: SKIPPED" or "e2e: FAILED ..."
  echo "== e2e ($(left) s left)"
  if (($(left) < 300)); then
    echo "e2e: SKIPPED (deadline: needs 300 s)"
    return 0
  fi
  local work dev
  work=$(mktemp -d)
  if ! "$bin/txl_prep" --dataset wt2 --data "$root/data_prep/samples/wikitext-2" --out "$work/corpus.h5"; then
    echo "e2e: FAILED (txl_prep)"
    rm -rf "$work"
    return 0
  fi
  for dev in cpu cuda; do
    if ! timeout 200 "$bin/txl_train" "$root/configs/tiny.yaml" --data "$work/corpus.h5" --work_dir "$work/$dev" \
        --device "$dev" --max_step 200 --max_step_scheduler 300 --log_interval 10 --eval_interval 100 \
        --eval_max_steps 5; then
      echo "e2e: FAILED (txl_train on $dev)"
      rm -rf "$work"
      return 0
    fi
  done
  # txl_eval on the GPU, eager and graph (the decoder layers replayed from a CUDA graph):
  # the same loss within fp32 rounding.
  local type
  for type in eager graph; do
    if ! timeout 120 "$bin/txl_eval" --model "$work/cuda/checkpoint_last.h5" --device cuda --type "$type" \
        --split test --batch_size 4 --tgt_len 32 --mem_len 64 --max_size 20 --json "$work/eval_$type.json"; then
      echo "e2e: FAILED (txl_eval --type $type)"
      rm -rf "$work"
      return 0
    fi
  done
  python3 - "$work/eval_eager.json" "$work/eval_graph.json" <<'PY' || { rm -rf "$work"; return 0; }
import json, sys
e, g = (json.load(open(p))["results"]["test"] for p in sys.argv[1:3])
rel = abs(g["loss"] - e["loss"]) / e["loss"]
print(f"txl_eval test loss eager {e['loss']:.6f} graph {g['loss']:.6f} (rel {rel:.1e}), graph replays {g['graph_replays']}")
if rel > 1e-5 or g["graph_replays"] < 10:
    print("e2e: FAILED (graph evaluation must replay and match eager within 1e-5)")
    sys.exit(1)
PY
  python3 - "$work/cpu/train_log.jsonl" "$work/cuda/train_log.jsonl" <<'PY'
import json, sys
def curve(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        if r.get("type") == "train":
            out[r["step"]] = r["loss"]
    return out
cpu, gpu = curve(sys.argv[1]), curve(sys.argv[2])
steps = sorted(set(cpu) & set(gpu))
if len(steps) < 20:
    print(f"e2e: FAILED (only {len(steps)} logged steps in common)")
    sys.exit(0)
worst = max(abs(gpu[s] - cpu[s]) / cpu[s] for s in steps)
for s in steps:
    print(f"step {s:4d}  cpu {cpu[s]:.5f}  cuda {gpu[s]:.5f}  rel {abs(gpu[s] - cpu[s]) / cpu[s]:.2e}")
print(f"loss curves: {len(steps)} logged steps, max relative difference {worst:.2e}")
if worst > 1e-2 or not gpu[steps[-1]] < gpu[steps[0]] - 0.5:
    print("e2e: FAILED (curves must agree within 1% and the loss must fall by 0.5)")
else:
    print("e2e: OK")
PY
  rm -rf "$work"
}

if want e2e; then
  e2e 2>&1 | tee "$out/e2e.log"
  grep -qE '^e2e: (OK|SKIPPED)' "$out/e2e.log" || status=1
fi

if want bench; then
  run_bench 60 gemm --model wt103_base --batch 16 --precision tf32 --steps 20
  run_bench 60 gemm --model wt103_base --batch 16 --precision bf16 --steps 20
  run_bench 90 train --model wt103_base --batch 16 --precision tf32 --warmup 3 --steps 10
  run_bench 120 train --model wt103_large --batch 4 --precision bf16 --warmup 3 --steps 8
  run_bench 120 train --model wt103_large --batch 8 --precision bf16 --warmup 3 --steps 8
  run_bench 120 eval --model wt103_base --batch 1,2,4,8,16,32 --precision tf32 --steps 20
  run_bench 120 eval --model wt103_base --batch 1,2,4,8,16,32 --precision tf32 --steps 20 --type graph
  grep '^RESULT' "$out/bench.log" || true
fi

echo "run_on_device: status $status after $((SECONDS - start)) s; logs in $out"
exit $status
