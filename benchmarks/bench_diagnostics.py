"""R-hat, bulk ESS and tail ESS of many parameters: bayespref's vectorised pass against ArviZ's.

The automatic check after a NUTS fit of the Arena-style medium design covers ~3,700 parameters
(population parameters and 300 judges x 12 worths). Here: ``--params`` independent AR(1) parameters
(coefficient 0.6) x 4 chains x 1,000 draws in float32, as a fit stores them; medians over
``--repeats`` runs of ``bayespref.inference.rank_diagnostics.diagnostics`` and of ``az.rhat`` +
``az.ess(method="bulk")`` + ``az.ess(method="tail")`` on the same dataset, and the largest relative
difference between the two.

Usage::

    python benchmarks/bench_diagnostics.py --params 3700 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import use_checkout


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=int, default=3700)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    use_checkout()
    import arviz as az
    import xarray as xr

    from bayespref.inference import rank_diagnostics as rd

    rng = np.random.default_rng(0)
    e = rng.normal(size=(4, 1000, args.params)).astype(np.float32)
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - 0.36)
    for t in range(1, x.shape[1]):
        x[:, t] = 0.6 * x[:, t - 1] + e[:, t]
    ds = xr.Dataset({"theta": (("chain", "draw", "k"), x)})

    def ours():
        return rd.diagnostics(ds)

    def arviz():
        return az.rhat(ds), az.ess(ds, method="bulk"), az.ess(ds, method="tail")

    times = {"bayespref": [], "arviz": []}
    for _ in range(args.repeats):
        for name, f in (("bayespref", ours), ("arviz", arviz)):
            t0 = time.perf_counter()
            res = f()
            times[name].append(time.perf_counter() - t0)
            if name == "bayespref":
                mine = res
            else:
                theirs = res
    diff = max(float(np.nanmax(np.abs(m["theta"].values / (t.dataset if hasattr(t, "dataset") else t)["theta"].values - 1)))
               for m, t in zip(mine, theirs))
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(json.dumps({"params": args.params, "draws": "4 x 1000", "median_s": med, "times_s": times,
                      "arviz_over_bayespref": round(med["arviz"] / med["bayespref"], 2),
                      "max_relative_difference": diff}))


if __name__ == "__main__":
    main()
