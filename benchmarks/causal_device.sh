#!/usr/bin/env bash
# The causal studies at full size, sharded over the CPU cores of a lent machine (16 cores): one
# process per shard, JAX on the CPU, one intra-op thread each. arviz 1.x wheels are carried in
# .gpuwheels/ (see gpu_check.sh). Writes one CSV per study (and the log) to $OUT (or ./causal-out); the
# committed copies are in benchmarks/results/causal/ (names in benchmarks/README.md).
set -u
OUT=${OUT:-causal-out}; mkdir -p "$OUT"; W=$(mktemp -d)
python3 -m pip install -q --no-deps .gpuwheels/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} JAX_PLATFORMS=cpu PYTHONUNBUFFERED=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
python3 -c "import jax, numpyro, arviz; print('jax', jax.__version__, 'numpyro', numpyro.__version__, 'arviz', arviz.__version__, 'cpus', __import__('os').cpu_count())"
B="python3 benchmarks/bench_causal.py"
for r in 0.0 0.3 0.6 0.9; do $B --study table1 --rhos $r --out $W/table1_$r.csv 2>$W/table1_$r.log & done
for r in 0.5 0.6 0.7 0.8 0.9 1.0; do $B --study table2 --rhos $r --out $W/table2_$r.csv 2>$W/table2_$r.log & done
# configuration B: compliance seen through noise, conflict dominant on type-1 prompts
SIMB='{"quality": 0.35, "scale": 2.0, "off_sd": 0.05, "n_quality": 4, "comply_noise": 0.5, "proxy_link": 1.0}'
for r in 0.5 0.6 0.7 0.8 0.9 1.0; do $B --study table2 --rhos $r --sim "$SIMB" --out $W/table2b_$r.csv 2>$W/table2b_$r.log & done
# shared representation, sparse conflict (simulate.confounded_shared), 5 seeds; erasure diagnostics
for r in 0.5 0.6 0.7 0.8 0.9 1.0; do $B --study table2s --rhos $r --out $W/table2s_$r.csv 2>$W/table2s_$r.log & done
$B --study erasure --rhos 0.5 0.6 0.7 0.8 0.9 1.0 --out $W/erasure_0.csv 2>$W/erasure.log &
for s in "0 1 2 3 4" "5 6 7 8 9" "10 11 12 13 14" "15 16 17 18 19"; do
  $B --study adjustment --seeds $s --out "$W/adjustment_${s%% *}.csv" 2>"$W/adjustment_${s%% *}.log" &
done
$B --study nonadditive --out $W/nonadditive_0.csv 2>$W/nonadditive.log &
$B --study amce --out $W/amce_0.csv 2>$W/amce.log &
$B --study position --out $W/position_0.csv 2>$W/position.log &
$B --study swap --out $W/swap_0.csv 2>$W/swap.log &
wait
for s in table1 table2 table2b table2s erasure adjustment nonadditive amce position swap; do
  python3 - "$s" "$W" "$OUT" <<'PY'
import glob, sys, pandas as pd
s, w, out = sys.argv[1:]
files = sorted(glob.glob(f"{w}/{s}_*.csv"))
if files:
    pd.concat([pd.read_csv(f) for f in files]).to_csv(f"{out}/{s}.csv", index=False)
PY
done
tail -n 3 $W/*.log > "$OUT/causal_log.txt" 2>&1
cat "$OUT/causal_log.txt" | grep -v "^$" | tail -60
