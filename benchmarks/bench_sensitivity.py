"""Benchmark: sensitivity grid (bayespref.analyses.sensitivity.grid) against the cost of one fit.

Simulated confounded data (``sensitivity.simulate_confounded``: hidden binary U tied to the group
and shifting the weight of feature x0), a Hierarchical fit by NUTS (the reference), then the
group contrast over an n x n grid of (gamma, delta) in the fast mode (vectorised SVI, continuation
in gamma, transported onto the reference posterior), and one exact NUTS refit of the augmented
model at a grid point (the cost of one anchor). Wall times include compilation.

    python benchmarks/bench_sensitivity.py                      # 50k judgements, 1k users, 20 x 20
    python benchmarks/bench_sensitivity.py --users 200 --per-user 50 --grid 10 --json out.json

``coverage`` (its own options, ``bench_sensitivity.py coverage --help``): the coverage study of the
augmented model at the true (gamma, delta) against an oracle that sees U; see ``COVERAGE_DOC``::

    python benchmarks/bench_sensitivity.py coverage --users 400   # the slow test's design
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
from _common import write_json


def grid_main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="Coverage at the true (gamma, delta): bench_sensitivity.py coverage --help.")
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
    from bayespref.analyses import sensitivity as sa

    bp.config.ensure_jax()  # before jax.devices() starts JAX, as fit() would: virtual CPU devices
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
        write_json(args.json, out, indent=2, default=float)


# ---------------------------------------------------------------- coverage
COVERAGE_DOC = """Coverage study: the augmented model at the true (gamma, delta) against an oracle that sees U.

For each seed, ``sensitivity.simulate_confounded`` data (hidden binary U tied to the group with
log odds ratio delta, shifting the weight of x0 by gamma; observed covariates ``group`` and
``trait``) and three estimates of the group contrast of x0 (truth: ``effect``):

* ``exact``: NUTS refit of the U-augmented model at the true (gamma, delta) (what a grid anchor or
  ``grid(method="nuts")`` computes), U hidden;
* ``oracle``: the same ``Hierarchical(correlated=False)`` model fitted with U given as a user
  covariate (the data-generating model with nothing hidden), same NUTS settings;
* ``sample``: least squares of the simulated users' true x0 weights on (1, group, trait, U): the
  contrast in this sample of users, without the noise of judging;
* ``mle``: the same regression on per-user maximum-likelihood weights (logistic regression of each
  user's judgements on the feature differences, a ridge of 0.01): how far the judgements alone
  push the contrast (per-user logistic estimates are biased away from zero, more for large weights).

If the augmented model at the true parameters reproduces the data-generating model, ``exact``
covers the truth as often as ``oracle`` does. Prints one row per seed and the coverage counts.

    python benchmarks/bench_sensitivity.py coverage                  # 20 seeds, 100 users x 30
    python benchmarks/bench_sensitivity.py coverage --users 400      # the slow test's design (calibrated)
    python benchmarks/bench_sensitivity.py coverage --seeds 40 --per-user 100 --csv out.csv
"""


def _per_user_mle(dx, y, user, n_users):
    """Per-user logistic-regression weights (no intercept, ridge 0.01), by BFGS."""
    from scipy.optimize import minimize

    out = np.zeros((n_users, dx.shape[1]))
    for k in range(n_users):
        x, t = dx[user == k], y[user == k]

        def nll(w, x=x, t=t):
            e = x @ w
            return np.sum(np.logaddexp(0, e) - t * e) + 0.005 * w @ w, x.T @ (1 / (1 + np.exp(-e)) - t) + 0.01 * w
        out[k] = minimize(nll, np.zeros(dx.shape[1]), jac=True, method="BFGS").x
    return out


def coverage_main(argv=None):
    p = argparse.ArgumentParser(prog="bench_sensitivity.py coverage", description=COVERAGE_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=100)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--per-user", type=int, default=30)
    p.add_argument("--effect", type=float, default=0.5)
    p.add_argument("--gamma", type=float, default=1.5)
    p.add_argument("--delta", type=float, default=2.0)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--draws", type=int, default=400)
    p.add_argument("--no-oracle", action="store_true")
    p.add_argument("--csv", default=None)
    args = p.parse_args(argv)

    import jax

    import bayespref as bp
    from bayespref.analyses import sensitivity as sa
    from bayespref.simulate import Simulated

    warnings.simplefilter("ignore", bp.ConvergenceWarning)
    g_true, d_true, truth = args.gamma, args.delta, args.effect
    rows = []
    for k in range(args.seeds):
        seed = args.first_seed + k
        t = time.perf_counter()
        sim = sa.simulate_confounded(n_users=args.users, comparisons_per_user=args.per_user, effect=truth,
                                     gamma=g_true, delta=d_true, seed=seed)
        U, W = sim.truth["U"], sim.truth["user_weight"]
        g = (sim.user_table["group"] == "B").to_numpy(float)
        o = (sim.user_table["trait"] == "yes").to_numpy(float)
        design = np.column_stack([np.ones_like(g), g, o, U])
        sample = np.linalg.lstsq(design, W[:, 0], rcond=None)[0][1]
        data = sim.comparisons()
        X = sim.option_table.loc[np.asarray(data.options)].to_numpy()
        dx = X[np.asarray(data.a)] - X[np.asarray(data.b)]
        what = _per_user_mle(dx, np.asarray(data.y, float), np.asarray(data.user), args.users)
        mle = np.linalg.lstsq(design, what[:, 0], rcond=None)[0][1]
        row = {"seed": seed, "sample": sample, "mle": mle, "imbalance": U[g == 1].mean() - U[g == 0].mean()}
        # a short fit only supplies the model and data to the augmented model; the exact refit is below
        stub = bp.fit(bp.Hierarchical(correlated=False), data, chains=1, warmup=30, draws=30, progress=False, seed=k)
        exact = sa.grid(stub, sa.group_contrast("group[B]", "x0"), gamma=[g_true], delta=[d_true], method="nuts",
                        benchmark=False, seed=k, nuts={"chains": args.chains, "warmup": args.warmup,
                                                       "draws": args.draws}).summary.isel(gamma=0, delta=0)
        row.update({f"exact_{v}": float(exact[v]) for v in ("mean", "sd", "lower", "upper")})
        if not args.no_oracle:
            users = sim.user_table.assign(U=np.where(U == 1, "one", "zero"))
            seen = Simulated(sim.frame, sim.option_table, users, sim.truth).comparisons()
            fit = bp.fit(bp.Hierarchical(correlated=False), seen, chains=args.chains, warmup=args.warmup,
                         draws=args.draws, progress=False, seed=k)
            b = fit.idata.posterior["group_weight"].sel(covariate="group[B]", feature="x0").values.ravel()
            lo, hi = np.quantile(b, [0.05, 0.95])
            row.update({"oracle_mean": b.mean(), "oracle_sd": b.std(ddof=1), "oracle_lower": lo, "oracle_upper": hi})
        row["seconds"] = time.perf_counter() - t
        rows.append(row)
        print(pd.DataFrame([row]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
    df = pd.DataFrame(rows)
    for arm in ("exact", "oracle"):
        if f"{arm}_mean" not in df:
            continue
        cover = int(((df[f"{arm}_lower"] <= truth) & (truth <= df[f"{arm}_upper"])).sum())
        print(f"{arm}: 90% interval covers {truth} in {cover}/{len(df)} seeds; mean estimate "
              f"{df[f'{arm}_mean'].mean():.3f}, mean posterior SD {df[f'{arm}_sd'].mean():.3f}, mean - sample "
              f"contrast {(df[f'{arm}_mean'] - df['sample']).mean():+.3f}")
        z = (df[f"{arm}_mean"] - truth) / df[f"{arm}_sd"]
        print(f"  z = (estimate - truth) / posterior SD: mean {z.mean():+.2f}, variance {z.var(ddof=0):.2f} (1 if calibrated)")
    if "oracle_mean" in df and len(df) > 2:
        gap = df["exact_mean"] - df["oracle_mean"]
        # expected imbalance P(U=1 | B) - P(U=1 | A), the group centred at 1/2 and prevalence 1/2
        expected = 1 / (1 + np.exp(-d_true / 2)) - 1 / (1 + np.exp(d_true / 2))
        slope = np.polyfit(df["imbalance"] - expected, gap, 1)[0]
        extra = np.sqrt(np.maximum(df["exact_sd"] ** 2 - df["oracle_sd"] ** 2, 0)).mean()
        print(f"exact - oracle: SD {gap.std(ddof=1):.3f} over seeds, slope {slope:.2f} on the realised U imbalance "
              f"(gamma {g_true}); posterior SD added by hidden U {extra:.3f} (quadrature)")
    print(f"sample contrast: mean {df['sample'].mean():.3f}; devices {jax.devices()}")
    if args.csv:
        df.to_csv(args.csv, index=False)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "coverage":  # a study with its own options
        return coverage_main(argv[1:])
    return grid_main(argv)


if __name__ == "__main__":
    main()
