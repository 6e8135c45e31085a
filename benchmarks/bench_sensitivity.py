"""Benchmark: sensitivity grid (bayespref.sensitivity.grid) against the cost of one fit.

Simulated confounded data (``sensitivity.simulate_confounded``: hidden binary U tied to the group
and shifting the weight of feature x0), a Hierarchical fit by NUTS (the reference), then the
group contrast over an n x n grid of (gamma, delta) in the fast mode (vectorised SVI, continuation
in gamma, transported onto the reference posterior), and one exact NUTS refit of the augmented
model at a grid point (the cost of one anchor). Wall times include compilation.

    python benchmarks/bench_sensitivity.py                      # 50k judgements, 1k users, 20 x 20
    python benchmarks/bench_sensitivity.py --users 200 --per-user 50 --grid 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--per-user", type=int, default=50)
    p.add_argument("--features", type=int, default=4)
    p.add_argument("--grid", type=int, default=20)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--warm-steps", type=int, default=5000)
    p.add_argument("--chunk", type=int, default=20)
    p.add_argument("--no-refit", action="store_true", help="skip the exact NUTS refit at one grid point")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import jax

    import bayespref as bp
    from bayespref import sensitivity as sa

    warnings.simplefilter("ignore", bp.ConvergenceWarning)
    out = {"devices": str(jax.devices()), "users": args.users, "per_user": args.per_user,
           "judgements": args.users * args.per_user, "features": args.features, "grid": f"{args.grid}x{args.grid}"}
    sim = sa.simulate_confounded(n_users=args.users, comparisons_per_user=args.per_user, n_options=100,
                                 n_features=args.features, seed=1)
    data = sim.comparisons()
    t = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(correlated=False), data, seed=1, chains=args.chains, warmup=args.warmup,
                 draws=args.draws, progress=False, log_likelihood=False)
    out["fit_s"] = time.perf_counter() - t
    print(f"reference NUTS fit: {out['fit_s']:.1f} s", flush=True)
    est = sa.group_contrast("group[B]", "x0")
    gam = np.linspace(0, 3, args.grid)
    dl = np.linspace(0, 4, args.grid)
    t = time.perf_counter()
    res = sa.grid(fit, est, gamma=gam, delta=dl, steps=args.steps, warm_steps=args.warm_steps,
                  chunk=args.chunk, anchors=None, num_samples=1000)
    out["grid_svi_s"] = time.perf_counter() - t
    out["grid_over_fit"] = out["grid_svi_s"] / out["fit_s"]
    out["unsettled_points"] = res.info["unsettled"]
    print(f"fast grid ({args.grid}x{args.grid} = {args.grid ** 2} points): {out['grid_svi_s']:.1f} s "
          f"= {out['grid_over_fit']:.2f} x the fit", flush=True)
    out["naive"] = res.naive()
    out["truth_effect"] = sim.truth["effect"]
    out["tipping_point"] = res.tipping_point()
    g0, d0 = sim.truth["gamma"], sim.truth["delta"]
    at = res.summary.interp(gamma=g0, delta=d0)
    out["at_truth_fast"] = {k: float(at[k]) for k in ("mean", "sd", "lower", "upper")}
    if not args.no_refit:
        t = time.perf_counter()
        ex = sa.grid(fit, est, gamma=[g0], delta=[d0], method="nuts",
                     nuts={"chains": 2, "warmup": args.warmup, "draws": args.draws}, benchmark=False)
        out["refit_one_point_s"] = time.perf_counter() - t
        s = ex.summary.isel(gamma=0, delta=0)
        out["at_truth_nuts"] = {k: float(s[k]) for k in ("mean", "sd", "lower", "upper")}
        out["fast_vs_nuts_sd"] = (out["at_truth_fast"]["mean"] - out["at_truth_nuts"]["mean"]) / out["at_truth_nuts"]["sd"]
        out["grid_by_refits_s_estimate"] = out["refit_one_point_s"] * args.grid ** 2
        print(f"one exact NUTS refit: {out['refit_one_point_s']:.1f} s (x {args.grid ** 2} points: "
              f"{out['grid_by_refits_s_estimate']:.0f} s)", flush=True)
    print(json.dumps(out, indent=2, default=float))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=float)


if __name__ == "__main__":
    main()
