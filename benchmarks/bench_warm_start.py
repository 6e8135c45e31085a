"""NUTS started from an SVI fit against NUTS from NumPyro's random initialisation (LatentTypes K = 3).

Data as in ``bench_latent_types.py`` (1k users x 50 judgements, 100 options, three types). Each
variant runs in its own process with the on-disk compilation cache as the user has it::

    python benchmarks/bench_warm_start.py --warmup 500 --draws 500

Reports wall time of SVI, warm-up and sampling of NUTS, min bulk ESS over the relabelled type
parameters, max R-hat, for ``init=None`` and ``init=svi_fit``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def worker(variant: str, warmup: int, draws: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import bayespref as bp

    data = bp.simulate.latent_types(n_users=1000, comparisons_per_user=50, n_options=100, n_types=3,
                                    worth_sd=1.0, seed=0).comparisons()
    spec = bp.LatentTypes(n_types=3)
    out = {"variant": variant}
    init = None
    if variant == "svi":
        t = time.perf_counter()
        init = bp.fit(spec, data, method="svi", progress=False, num_samples=200, log_likelihood=False)
        out["svi_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fit = bp.fit(spec, data, chains=4, warmup=warmup, draws=draws, progress=False, init=init, log_likelihood=False)
    out["nuts_s"] = time.perf_counter() - t
    out.update({k: fit.info[k] for k in ("compile_s", "warmup_s", "sampling_s")})
    summ = fit.summary(var_names=["worth", "type_share"])
    out["min_ess"] = float(summ["ess_bulk"].min())
    out["max_rhat"] = float(summ["r_hat"].max())
    out["divergences"] = int(np.asarray(fit.idata.sample_stats["diverging"]).sum())
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--json", type=pathlib.Path)
    a = p.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(a.worker, a.warmup, a.draws)))
        return
    rows = []
    for variant in ("random", "svi"):
        res = subprocess.run([sys.executable, __file__, "--worker", variant, "--warmup", str(a.warmup),
                              "--draws", str(a.draws)], capture_output=True, text=True, check=False)
        line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
        rows.append(json.loads(line[-1][7:]) if line else {"variant": variant, "error": res.stderr[-2000:]})
        print(json.dumps(rows[-1]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
