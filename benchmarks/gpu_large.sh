#!/usr/bin/env bash
# Large cases on a lent GPU machine, prepared as one short script (GPU time is scarce; see
# benchmarks/README.md). Expects the image's python3 with JAX (CUDA) and NumPyro; arviz 1.x and
# h5netcdf come from wheels carried in .gpuwheels/ (the machine cannot download). Each case has its own
# time limit, so one slow case cannot take the others' results with it. Results go to $OUT.
#   1. NUTS on 1M judgements / 20k users / 8 features, 4 vectorised chains, started from an SVI fit
#      (draws and variances), 300 warm-up + 1000 draws: wall time, R-hat, ESS, globals vs truth;
#   2. the log-density gradient on the same data against the GPU's streaming bandwidth;
#   3. SVI alone on the same data (structured guide, 2,000 users per step);
#   4. the Laplace-integrated users experiment on the same data (benchmarks/bench_scale.py laplace_users).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
[ -n "${NO_WHEELS:-}" ] || python3 -m pip install -q --no-deps .gpuwheels/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi 2>/dev/null --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu_info.txt"
python3 -c "import jax, numpyro; print('jax', jax.__version__, jax.devices(), 'numpyro', numpyro.__version__)" \
  | tee -a "$OUT/gpu_info.txt"
run() {  # name, limit in seconds, command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1; local rc=$?
  echo "$name: exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/gpu_info.txt"
  tail -5 "$OUT/$name.txt"
}
run gpu_large_nuts "${NUTS_LIMIT:-330}" python3 benchmarks/bench_scale.py nuts --warm --warmup 300 --draws 1000 \
  --users "${USERS:-20000}" --json "$OUT/gpu_large_nuts.json"
run gpu_large_grad 90 python3 benchmarks/bench_scale.py grad --users "${USERS:-20000}" --json "$OUT/gpu_large_grad.json"
run gpu_large_svi 90 python3 benchmarks/bench_scale.py svi --user-batch 2000 --users "${USERS:-20000}" --json "$OUT/gpu_large_svi.json"
run gpu_large_laplace 60 python3 benchmarks/bench_scale.py laplace_users --users "${USERS:-20000}" --importance 8 --float32 \
  --newton 6 --covariance opg
