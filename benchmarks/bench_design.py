"""Benchmark: Bayesian experimental design (bayespref.design), the must-show numbers of issue 23.

One study per call (each has ``--help``), each writing ``benchmarks/results/design/<study>.json``:

* ``contrast``   -- the sequential loop on a simulated group-contrast design: judgements that EIG,
  uncertainty sampling and random selection need to bring the 90 % interval width of the contrast
  below a set value, over seeds (and the plot of width against judgements);
* ``onboarding`` -- new annotators of a K = 3 latent-types fit: judgements until P(true type) >= 0.9
  with EIG-chosen against random pairs, median over simulated users;
* ``overlap``    -- two features correlated 0.9: posterior SD of the weaker feature's weight after
  200 overlap-breaking judgements against 200 random pool judgements (real refits), over seeds;
* ``estimator``  -- the cheap (Gaussian, reweighted-draws) EIG against nested Monte Carlo on small
  problems (Gaussian posteriors of small fits);
* ``timing``     -- scoring 10k candidates for a hierarchical fit with 1k users.

    python benchmarks/bench_design.py contrast --seeds 10
    python benchmarks/bench_design.py onboarding --users 60
    python benchmarks/bench_design.py overlap --seeds 5
    python benchmarks/bench_design.py estimator
    python benchmarks/bench_design.py timing

Run from the repository root (results go to ``benchmarks/results/design/``; ``--json`` elsewhere).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS_DIR, loadavg, use_checkout, write_json

use_checkout()
OUT = RESULTS_DIR / "design"


def _sigmoid(d):
    return 1 / (1 + np.exp(-d))


def _setup():
    import bayespref as bp

    bp.config.ensure_jax()
    warnings.simplefilter("ignore")
    return bp


# ---------------------------------------------------------------------------------------------- contrast
CONTRAST_DESIGN = (
    "Per seed: 60 annotators, 15 in group B and 45 in group A; 40 options with two features x0, x1 ~ N(0, 1); "
    "annotator weights w_u = (1.0, -0.5) + (0.5, 0) [group B] + N(0, 0.3^2 I); P(a > b | u) = sigmoid((x_a - x_b) "
    "w_u). Start: 6 random judgements per annotator plus 60 by one pilot annotator of group A (420). Pool: 80 "
    "random pairs per annotator (4,800 candidates, each collected at most once), at most 12 more judgements per "
    "annotator. Model: Hierarchical(covariates=['group']) (user-varying weights, LKJ), NUTS 2 chains x (300 "
    "warm-up + 250 draws), refitted after every batch of 50. Target: the group contrast of the weight of x0, "
    "B minus A (true 0.5). Strategies: EIG (greedy batch, ensemble method), uncertainty sampling (largest "
    "predictive entropy), random. The pilot annotator's 60 judgements keep the per-user layout of the sampler "
    "the same for every strategy, so the compiled sampler is reused across strategies and seeds.")


def contrast_data(seed, n_users=60, share_b=0.25, n_opt=40, init_per_user=6, pool_per_user=80, tau=0.3, beta=0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_opt, 2))
    opts = np.array([f"o{i:02d}" for i in range(n_opt)])
    table = pd.DataFrame(X, index=pd.Index(opts, name="option"), columns=["x0", "x1"])
    g = np.where(np.arange(n_users) < share_b * n_users, "B", "A")
    users = np.array([f"u{i:03d}" for i in range(n_users)])
    W = np.array([1.0, -0.5]) + np.outer(g == "B", [beta, 0.0]) + tau * rng.normal(size=(n_users, 2))
    user_table = pd.DataFrame({"group": g}, index=pd.Index(users, name="user"))

    def pairs(per, who=None):
        u = np.repeat(np.arange(n_users) if who is None else np.asarray(who), per)
        a = rng.integers(0, n_opt, u.size)
        b = (a + rng.integers(1, n_opt, u.size)) % n_opt
        return pd.DataFrame({"a": opts[a], "b": opts[b], "user": users[u]})

    def truth(rows):
        ui = pd.Index(users).get_indexer(rows["user"])
        d = ((table.loc[rows["a"]].to_numpy() - table.loc[rows["b"]].to_numpy()) * W[ui]).sum(1)
        return _sigmoid(d)

    initial = pd.concat([pairs(init_per_user), pairs(60, [n_users - 1])], ignore_index=True)
    initial["outcome"] = (rng.random(len(initial)) < truth(initial)).astype(float)
    return initial, pairs(pool_per_user), truth, {"user": "user", "features": table, "user_covariates": user_table}


def contrast_main(argv):
    p = argparse.ArgumentParser(prog="bench_design.py contrast", description=CONTRAST_DESIGN)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--width", type=float, default=0.75, help="the interval width to reach (default %(default)s)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--per-step", type=int, default=50)
    p.add_argument("--full", action="store_true", help="run every step (no stop at the width): the full curves")
    p.add_argument("--json", default=str(OUT / "contrast.json"))
    args = p.parse_args(argv)
    bp = _setup()
    from bayespref.analyses import design

    t0 = time.perf_counter()
    histories = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        initial, pool, truth, options = contrast_data(seed)
        res = design.sequential(
            bp.Hierarchical(covariates=["group"]), initial, pool, truth, design.contrast("group", "B", "A", effect="x0"),
            data_options=options, per_step=args.per_step, steps=args.steps, seeds=[seed], method="nuts",
            fit_options={"chains": 2, "warmup": 300, "draws": 250, "log_likelihood": False}, budget=12,
            max_draws=500, stop_width=None if args.full else args.width)
        histories.append(res.history)
        need = res.judgements_to_reach(args.width)
        print(f"seed {seed}: judgements to width {args.width}: {need.iloc[0].to_dict()} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    result = design.SequentialResult(pd.concat(histories, ignore_index=True), res.target, 0.9)
    summary = result.summary(args.width)
    print(summary.to_string())
    fig = result.plot(width=args.width)
    fig.savefig(OUT / "contrast_loop.png", dpi=120)
    out = {"design": CONTRAST_DESIGN, "width": args.width, "seeds": args.seeds, "first_seed": args.first_seed,
           "summary": summary.reset_index().to_dict("records"),
           "judgements_to_reach": result.judgements_to_reach(args.width).reset_index().to_dict("records"),
           "history": result.history.to_dict("records"),
           "eig_fewer_than_random": float(1 - summary.loc["eig", "mean"] / summary.loc["random", "mean"]),
           "eig_fewer_than_uncertainty": float(1 - summary.loc["eig", "mean"] / summary.loc["uncertainty", "mean"]),
           "seconds": round(time.perf_counter() - t0, 1), "loadavg": loadavg()}
    write_json(args.json, out, default=str)
    print(f"EIG needs {100 * out['eig_fewer_than_random']:.0f}% fewer judgements than random and "
          f"{100 * out['eig_fewer_than_uncertainty']:.0f}% fewer than uncertainty sampling -> {args.json}")


# -------------------------------------------------------------------------------------------- onboarding
ONBOARDING_DESIGN = (
    "LatentTypes(n_types=3) fitted by NUTS (2 chains x 500 + 500) to simulate.latent_types(n_users=150, "
    "comparisons_per_user=20, n_options=10, n_types=3, seed=0) (type worths N(0, 1.5^2)). New annotators: the "
    "true type drawn uniformly, answers drawn from the true type's worths; the pool is the 45 option pairs, each "
    "asked at most once; after every answer the membership P(z = k | answers) is updated from the fit's draws "
    "(design.Onboarding, no refit). Recorded: answers until P(true type) >= 0.9 (censored at the cap + 1). "
    "Fitted types are matched to the true ones by the correlation of their mean worths.")


def onboarding_main(argv):
    p = argparse.ArgumentParser(prog="bench_design.py onboarding", description=ONBOARDING_DESIGN)
    p.add_argument("--users", type=int, default=60)
    p.add_argument("--cap", type=int, default=30, help="questions per annotator at most")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--json", default=str(OUT / "onboarding.json"))
    args = p.parse_args(argv)
    bp = _setup()
    from bayespref.analyses import design

    t0 = time.perf_counter()
    sim = bp.simulate.latent_types(n_users=150, comparisons_per_user=20, n_options=10, n_types=3, seed=0)
    fit = bp.fit(bp.LatentTypes(n_types=3), sim.comparisons(), seed=1, chains=2, warmup=500, draws=500,
                 progress=False)
    fitted = fit.idata.posterior["worth"].mean(("chain", "draw")).values
    match = np.array([int(np.argmax([np.corrcoef(t, f)[0, 1] for f in fitted])) for t in sim.truth["worth"]])
    print(f"fit {time.perf_counter() - t0:.0f} s; true type -> fitted type {match.tolist()}", flush=True)
    opts = list(fit.data.options)
    rng = np.random.default_rng(0)
    rows = []
    for user in range(args.users):
        z = int(rng.integers(0, 3))
        worth = sim.truth["worth"][z]
        for how in ("eig", "random"):
            urng = np.random.default_rng([user, 0 if how == "eig" else 1])
            ob = design.Onboarding(fit)
            need, prob = args.cap + 1, None
            for step in range(1, args.cap + 1):
                q = ob.next(1) if how == "eig" else ob.pool[~ob.asked].sample(1, random_state=urng)
                a, b = q["a"].iloc[0], q["b"].iloc[0]
                ob.record(a, b, float(urng.random() < _sigmoid(worth[opts.index(a)] - worth[opts.index(b)])))
                prob = float(ob.membership().iloc[match[z]])
                if prob >= args.threshold:
                    need = step
                    break
            rows.append({"user": user, "true_type": z, "strategy": how, "judgements": need, "p_true_type": prob})
    df = pd.DataFrame(rows)
    summary = df.groupby("strategy")["judgements"].agg(["median", "mean", lambda s: int((s > args.cap).sum())])
    summary.columns = ["median", "mean", "censored"]
    wins = (df[df.strategy == "eig"].set_index("user")["judgements"]
            < df[df.strategy == "random"].set_index("user")["judgements"]).mean()
    print(summary.to_string())
    out = {"design": ONBOARDING_DESIGN, "users": args.users, "threshold": args.threshold, "cap": args.cap,
           "summary": summary.reset_index().to_dict("records"), "share_users_eig_faster": float(wins),
           "rows": rows, "seconds": round(time.perf_counter() - t0, 1), "loadavg": loadavg()}
    write_json(args.json, out, default=str)
    print(f"median judgements to P >= {args.threshold}: EIG {summary.loc['eig', 'median']:g}, random "
          f"{summary.loc['random', 'median']:g} -> {args.json}")


# ------------------------------------------------------------------------------------------------ overlap
OVERLAP_DESIGN = (
    "Per seed: pairs of responses with features x1, x2 whose pair differences are N(0, [[1, 0.9], [0.9, 1]]); "
    "truth P(a > b) = sigmoid(0.5 dx1 + 1.5 dx2) (x1 the weaker feature). Start: 300 judgements; pool: 5,000 "
    "pairs from the same process. Model: BradleyTerry() on x1, x2 (features only), NUTS 2 chains x (500 + "
    "1000). Overlap-breaking: design.overlap_breaking(fit, 'x1', n=200, pool=pool): 200 judgements chosen by "
    "EIG about weight[x1] from 800 synthetic one-factor pairs (x1 differs by its 90% quantile |dx1|, x2 equal) "
    "and the pool rows whose |dx2| <= 0.25 SD; random: 200 pool rows. Outcomes drawn from the truth, model "
    "refitted; reported: posterior SD of weight[x1] before and after, and (SD0 - SD_ob) / (SD0 - SD_random).")


def overlap_data(seed, n, prefix, rho=0.9, w=(0.5, 1.5)):
    rng = np.random.default_rng([seed, sum(map(ord, prefix))])
    cov = np.array([[1.0, rho], [rho, 1.0]]) / 2
    xa, xb = rng.multivariate_normal([0, 0], cov, n), rng.multivariate_normal([0, 0], cov, n)
    ids = np.arange(n)
    frame = pd.DataFrame({"a": [f"{prefix}{i}a" for i in ids], "b": [f"{prefix}{i}b" for i in ids],
                          "x1_a": xa[:, 0], "x1_b": xb[:, 0], "x2_a": xa[:, 1], "x2_b": xb[:, 1]})
    return frame


def overlap_truth(rows, w=(0.5, 1.5)):
    d = (rows[["x1_a", "x2_a"]].to_numpy() - rows[["x1_b", "x2_b"]].to_numpy()) @ np.asarray(w)
    return _sigmoid(d)


def overlap_main(argv):
    p = argparse.ArgumentParser(prog="bench_design.py overlap", description=OVERLAP_DESIGN)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--json", default=str(OUT / "overlap_breaking.json"))
    args = p.parse_args(argv)
    bp = _setup()
    from bayespref.analyses import design

    t0 = time.perf_counter()
    settings = {"chains": 2, "warmup": 500, "draws": 1000, "progress": False, "log_likelihood": False}
    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        start = overlap_data(seed, 300, "s")
        start["outcome"] = (rng.random(len(start)) < overlap_truth(start)).astype(float)
        pool = overlap_data(seed, 5000, "p")

        def refit(frame, seed=seed):
            data = bp.Comparisons.from_frame(frame, features=["x1", "x2"], check_connected=False)
            return bp.fit(bp.BradleyTerry(), data, seed=seed, **settings)

        fit = refit(start)
        sd0 = float(fit.idata.posterior["weight"].sel(feature="x1").std())
        ob = design.overlap_breaking(fit, "x1", n=args.n, pool=pool, seed=seed)
        batch = ob.batch[["a", "b", "x1_a", "x1_b", "x2_a", "x2_b"]].reset_index(drop=True)
        rand = pool.sample(args.n, random_state=seed).reset_index(drop=True)
        sds = {}
        for name, add in (("overlap_breaking", batch), ("random", rand)):
            add = add.assign(outcome=(rng.random(len(add)) < overlap_truth(add)).astype(float))
            f2 = refit(pd.concat([start, add], ignore_index=True))
            sds[name] = float(f2.idata.posterior["weight"].sel(feature="x1").std())
        red_ob, red_rand = sd0 - sds["overlap_breaking"], sd0 - sds["random"]
        row = {"seed": seed, "rho_start": float(design.feature_overlap(fit)["rho"].iloc[0]), "sd_before": sd0,
               "sd_after_overlap_breaking": sds["overlap_breaking"], "sd_after_random": sds["random"],
               "reduction_ratio": red_ob / red_rand if red_rand > 0 else float("inf"),
               "sd_ratio_random_over_ob": sds["random"] / sds["overlap_breaking"],
               "expected_sd_after_overlap_breaking": ob.sd_after, "expected_sd_after_random": ob.sd_after_random,
               "synthetic_in_batch": int(ob.batch.index.astype(str).str.startswith("synthetic").sum())}
        rows.append(row)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()},
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    out = {"design": OVERLAP_DESIGN, "n": args.n, "rows": rows,
           "mean_reduction_ratio": float(df["reduction_ratio"].mean()),
           "min_reduction_ratio": float(df["reduction_ratio"].min()),
           "mean_sd_before": float(df["sd_before"].mean()),
           "mean_sd_after_overlap_breaking": float(df["sd_after_overlap_breaking"].mean()),
           "mean_sd_after_random": float(df["sd_after_random"].mean()),
           "seconds": round(time.perf_counter() - t0, 1), "loadavg": loadavg()}
    write_json(args.json, out)
    print(f"SD reduction of weight[x1], overlap-breaking / random: mean {out['mean_reduction_ratio']:.2f}x, "
          f"min {out['min_reduction_ratio']:.2f}x -> {args.json}")


# ---------------------------------------------------------------------------------------------- estimator
ESTIMATOR_DESIGN = (
    "Three small problems, each a Gaussian posterior N(m, S) fitted to the NUTS draws of a small fit: (1) "
    "BradleyTerry on two features correlated 0.9 (100 judgements), target weight[x1], 80 candidates (60 pool "
    "pairs, 20 one-factor pairs); (2) the same fit, target weight[x1] - weight[x2]; (3) BradleyTerry worths "
    "of 6 options (60 judgements), target worth[o0] - worth[o1], all 15 pairs as candidates. Reference: "
    "nested Monte Carlo under N(m, S) (design.nested_eig: 400 stratified outer values of T, 2,048 inner "
    "conditional draws, inner bias removed). Cheap: design.score on a Fit whose draws are S draws of N(m, S) "
    "(S = 20,000 for the estimator's bias; S = 1,000, the default max_draws, for its typical error).")


def _gaussian_fit(bp, fit, sites, S, seed):
    """The fit with its posterior replaced by S draws of the Gaussian of its draws of ``sites``."""
    import arviz as az

    post = fit.idata.posterior
    flat = np.concatenate([post[s].values.reshape(-1, int(np.prod(post[s].shape[2:]) or 1)) for s in sites], 1)
    mean, cov = flat.mean(0), np.cov(flat.T)
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0, None))
    draws = mean + np.random.default_rng(seed).standard_normal((S, mean.size)) @ root.T
    out, k = {}, 0
    for s in sites:
        shape = post[s].shape[2:]
        size = int(np.prod(shape) or 1)
        out[s] = draws[:, k:k + size].reshape((1, S) + shape)
        k += size
    spec, data = fit.model, fit.data
    idata = az.from_dict({"posterior": out}, coords=spec.coords(data), dims=spec.dims(spec.sizes(data)))
    return bp.Fit(idata, spec, data, {"method": "gaussian"}), mean, cov


def estimator_main(argv):
    p = argparse.ArgumentParser(prog="bench_design.py estimator", description=ESTIMATOR_DESIGN)
    p.add_argument("--outer", type=int, default=400)
    p.add_argument("--inner", type=int, default=2048)
    p.add_argument("--json", default=str(OUT / "estimator.json"))
    args = p.parse_args(argv)
    bp = _setup()
    from bayespref.analyses import design

    t0 = time.perf_counter()
    settings = {"chains": 2, "warmup": 500, "draws": 1000, "progress": False}
    rng = np.random.default_rng(0)
    start = overlap_data(0, 100, "s")
    start["outcome"] = (rng.random(100) < overlap_truth(start)).astype(float)
    bt = bp.fit(bp.BradleyTerry(), bp.Comparisons.from_frame(start, features=["x1", "x2"], check_connected=False),
                seed=1, **settings)
    pool = pd.concat([overlap_data(0, 60, "p"), design.one_factor_pairs(bt, "x1", n=20, seed=1)], ignore_index=True)
    dx = pool[["x1_a", "x2_a"]].to_numpy() - pool[["x1_b", "x2_b"]].to_numpy()

    def prob_bt(th):
        pa = _sigmoid(th @ dx.T)
        return np.stack([pa, 1 - pa], -1)

    opts = [f"o{i}" for i in range(6)]
    a = rng.integers(0, 6, 60)
    b = (a + rng.integers(1, 6, 60)) % 6
    true = np.linspace(1, -1, 6)
    wf = pd.DataFrame({"a": np.asarray(opts)[a], "b": np.asarray(opts)[b]})
    wf["outcome"] = (rng.random(60) < _sigmoid(true[a] - true[b])).astype(float)
    wfit = bp.fit(bp.BradleyTerry(), bp.Comparisons.from_frame(wf), seed=1, **settings)
    pairs = design.all_pairs(wfit)
    ia = pd.Index(opts).get_indexer(pairs["a"])
    ib = pd.Index(opts).get_indexer(pairs["b"])

    def prob_w(th):
        pa = _sigmoid(th[:, ia] - th[:, ib])
        return np.stack([pa, 1 - pa], -1)

    problems = [
        ("bt_weight_x1", bt, ["weight"], pool, design.weight("x1"), prob_bt, np.array([1.0, 0.0]), None),
        ("bt_weight_difference", bt, ["weight"], pool, None, prob_bt, np.array([1.0, -1.0]),
         lambda f: f.idata.posterior["weight"].sel(feature="x1") - f.idata.posterior["weight"].sel(feature="x2")),
        ("worth_difference", wfit, ["worth"], pairs, None, prob_w, np.eye(6)[0] - np.eye(6)[1],
         lambda f: f.idata.posterior["worth"].sel(option="o0") - f.idata.posterior["worth"].sel(option="o1")),
    ]
    rows, per_candidate = [], []
    for name, fit, sites, cands, target, prob, avec, draws_fn in problems:
        g20k, mean, cov = _gaussian_fit(bp, fit, sites, 20000, seed=2)
        g1k, _, _ = _gaussian_fit(bp, fit, sites, 1000, seed=3)
        nested = design.nested_eig(prob, mean, cov, avec, outer=args.outer, inner=args.inner, seed=4)
        res = {}
        for label, gf in (("S20000", g20k), ("S1000", g1k)):
            t = target if target is not None else design.from_draws(draws_fn(gf), name)
            sc = design.score(gf, cands, t, max_draws=len(gf.idata.posterior["draw"]))
            res[label] = sc.sort_index()["eig"].to_numpy()
        keep = nested >= 1e-3
        row = {"problem": name, "candidates": int(len(cands)), "candidates_eig_ge_1e-3": int(keep.sum()),
               "candidates_eig_ge_0.01": int((nested >= 1e-2).sum()),
               "nested_eig_range": [float(nested.min()), float(nested.max())]}
        for label, cheap in res.items():
            rel = cheap[keep] / nested[keep] - 1
            row[f"{label}_median_abs_rel_error"] = float(np.median(np.abs(rel)))
            row[f"{label}_p90_abs_rel_error"] = float(np.quantile(np.abs(rel), 0.9))
            row[f"{label}_max_abs_rel_error"] = float(np.max(np.abs(rel)))
            row[f"{label}_mean_rel_bias"] = float(np.mean(rel))
            row[f"{label}_ratio_of_sums"] = float(cheap[keep].sum() / nested[keep].sum())
            row[f"{label}_rank_corr"] = float(pd.Series(cheap).rank().corr(pd.Series(nested).rank()))
            big = nested >= 1e-2
            if big.any():
                row[f"{label}_max_abs_rel_error_eig_ge_0.01"] = float(np.max(np.abs(cheap[big] / nested[big] - 1)))
        rows.append(row)
        per_candidate += [{"problem": name, "nested": float(n_), "cheap_S20000": float(c2), "cheap_S1000": float(c1)}
                          for n_, c2, c1 in zip(nested, res["S20000"], res["S1000"])]
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()},
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    out = {"design": ESTIMATOR_DESIGN, "rows": rows, "per_candidate": per_candidate,
           "closed_form": _closed_form(design, args),
           "seconds": round(time.perf_counter() - t0, 1), "loadavg": loadavg()}
    write_json(args.json, out)
    print(f"-> {args.json}")


def _closed_form(design, args):
    """T ~ N(0, 1), eta ~ N(0, 1), logit P(a) = alpha T + beta eta + gamma: the exact EIG about T by
    Gauss-Hermite quadrature, nested MC and the cheap estimator on 200,000 draws."""
    import jax.numpy as jnp

    from bayespref.analyses.design import eig as E

    coef = np.array([[0.5, 0, 0], [1, 0, 0], [2, 0, 0], [3, 1, 2], [1, 1, 0], [2, 2, 1], [0.3, 2, 0], [5, 0, 0],
                     [8, 0, 0]], dtype=float)
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()

    def h(p):
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))

    def prob(th):
        p = _sigmoid(th[:, :1] * coef[:, 0] + th[:, 1:2] * coef[:, 1] + coef[:, 2])
        return np.stack([p, 1 - p], -1)

    exact = []
    for a, b, c in coef:
        pt = (_sigmoid(a * x[:, None] + b * x[None, :] + c) * w[None, :]).sum(1)
        exact.append(float(h((pt * w).sum()) - (h(pt) * w).sum()))
    nested = design.nested_eig(prob, np.zeros(2), np.eye(2), np.array([1.0, 0.0]), outer=args.outer,
                               inner=args.inner, seed=5)
    th = np.random.default_rng(6).standard_normal((200000, 2))
    cheap = np.asarray(E.eig_gaussian(jnp.asarray(prob(th), dtype=jnp.float32),
                                      jnp.asarray(th[:, :1], dtype=jnp.float32), jnp.full(200000, 1 / 200000)))
    return [{"alpha": a, "beta": b, "gamma": c, "exact": e, "nested_over_exact": float(n / e),
             "cheap_over_exact": float(ch / e)} for (a, b, c), e, n, ch in zip(coef, exact, nested, cheap)]


# -------------------------------------------------------------------------------------------------- timing
TIMING_DESIGN = (
    "simulate.hierarchical(n_users=1000, comparisons_per_user=20, n_options=50, n_features=3, group_effect=(0.5, "
    "0, 0), user_sd=0.3): 20k judgements, Hierarchical(covariates=['group']) fitted by method='laplace' (1,000 "
    "draws). 10,000 candidates: random option pairs, each judged by a random training annotator. Scored: "
    "design.score with the group contrast of x0 (B minus A) and with all parameters; wall seconds, the first "
    "call (with compilation) and the median of 3 more; then design.select(n=50). On the machine's cores "
    "(nproc), with its load average recorded.")


def timing_main(argv):
    p = argparse.ArgumentParser(prog="bench_design.py timing", description=TIMING_DESIGN)
    p.add_argument("--candidates", type=int, default=10000)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--json", default=str(OUT / "timing_10k_candidates.json"))
    args = p.parse_args(argv)
    bp = _setup()
    import os

    from bayespref.analyses import design

    sim = bp.simulate.hierarchical(n_users=args.users, comparisons_per_user=20, n_options=50, n_features=3,
                                   group_effect=[0.5, 0.0, 0.0], user_sd=0.3, seed=0)
    data = sim.comparisons()
    t = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(covariates=["group"]), data, method="laplace", seed=1, progress=False)
    fit_s = time.perf_counter() - t
    rng = np.random.default_rng(1)
    opts, users = np.asarray(data.options), np.asarray(data.users)
    n = args.candidates
    a = rng.integers(0, 50, n)
    b = (a + rng.integers(1, 50, n)) % 50
    pool = pd.DataFrame({"a": opts[a], "b": opts[b], "user": users[rng.integers(0, len(users), n)]})
    out = {"design": TIMING_DESIGN, "cores": os.cpu_count(), "fit_s": round(fit_s, 2),
           "draws": int(fit.idata.posterior.sizes["chain"] * fit.idata.posterior.sizes["draw"])}
    for name, target in (("contrast", design.contrast("group", "B", "A", effect="x0")), ("parameters", None)):
        times = []
        for _ in range(4):
            t = time.perf_counter()
            design.score(fit, pool, target)
            times.append(time.perf_counter() - t)
        out[f"score_{name}_first_s"] = round(times[0], 2)
        out[f"score_{name}_median_s"] = round(float(np.median(times[1:])), 2)
        print(f"score 10k, {name}: first {times[0]:.2f} s, then median {np.median(times[1:]):.2f} s", flush=True)
    t = time.perf_counter()
    design.select(fit, pool, design.contrast("group", "B", "A", effect="x0"), n=50)
    out["select_50_s"] = round(time.perf_counter() - t, 2)
    out["loadavg"] = loadavg()
    print(f"select 50 of 10k: {out['select_50_s']:.2f} s; load {out['loadavg']}")
    write_json(args.json, out)
    print(f"-> {args.json}")


STUDIES = {"contrast": contrast_main, "onboarding": onboarding_main, "overlap": overlap_main,
           "estimator": estimator_main, "timing": timing_main}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STUDIES:
        print(__doc__)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    STUDIES[argv[0]](argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
