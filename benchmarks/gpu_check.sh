#!/usr/bin/env bash
# GPU check, prepared as one short script for a lent GPU machine (see benchmarks/README.md).
# Expects the image's python3 with JAX (CUDA) and NumPyro; arviz 1.x and h5netcdf are installed
# from wheels carried in .gpuwheels/ (the machine cannot download). Results go to $OUT (or ./gpu-out).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-deps .gpuwheels/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 - <<'PY' 2>&1 | tee "$OUT/gpu_smoke.txt"
import time, jax, numpyro, arviz, bayespref as bp
print("jax", jax.__version__, jax.devices(), "numpyro", numpyro.__version__, "arviz", arviz.__version__)
from bayespref.config import devices_for_chains
print("chain method for 4 chains:", devices_for_chains(4))
t = time.time()
fit = bp.fit(bp.BradleyTerry(position=True), bp.load_dataset("baseball").comparisons(), seed=1, progress=False)
print(f"baseball BT on GPU: {time.time() - t:.1f} s", fit.worths(reference="Baltimore")["mean"].round(3).to_dict())
print("info", fit.info, "max R-hat", round(fit.diagnostics()["max_rhat"], 4))
t = time.time()
again = bp.fit(bp.BradleyTerry(position=True), bp.load_dataset("baseball").comparisons(), seed=2, progress=False)
print(f"same model and shape again: {time.time() - t:.2f} s, sampler reused: {again.info['sampler_reused']}")
PY
timeout 200 python3 benchmarks/bench_foundation.py --case nuts_medium --no-write --no-profile \
  --json "$OUT/gpu_nuts_medium.json" 2>&1 | tail -40 | tee "$OUT/gpu_nuts_medium.txt"
[ -n "${SKIP_SVI:-}" ] || timeout 200 python3 benchmarks/bench_foundation.py --case svi_large --no-full-batch --no-write \
  --json "$OUT/gpu_svi_large.json" 2>&1 | tail -30 | tee "$OUT/gpu_svi_large.txt"
