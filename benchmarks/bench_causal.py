"""The causal layer's studies at full size: the paper's Tables 1 and 2 on our simulators, and the checks.

Runs one study (or one shard of it: some rhos, some seeds) and writes its rows as CSV; ``--report``
combines CSVs into the markdown tables of ``RESULTS.md``. The studies themselves live in
``experiments/causal.py`` at the repository root (the slow tests and notebook 03 run them at
smaller sizes). The per-seed rows behind ``RESULTS.md`` are in ``benchmarks/results/causal/``.

    python benchmarks/bench_causal.py --study table1 --out t1.csv                # ~2 min
    python benchmarks/bench_causal.py --study table2 --rhos 0.8 --seeds 0 1 --out t2_08.csv
    python benchmarks/bench_causal.py --report t1.csv t2_*.csv adj.csv ...       # markdown
    python benchmarks/bench_causal.py --study table2s --models weighted --out w.csv  # one model
    python benchmarks/bench_causal.py --study table2s --models weighted_ess --rhos 0.7 0.8 0.9 --out e.csv

Studies: table1 (limited latent positivity, NUTS), table2 (confounding by objective, SVI), table2s
(confounding by objective with a shared representation, ``simulate.confounded_shared``, SVI; ~10 min
per rho on one core), erasure (what linear erasure removes there, no fits),
adjustment (C observed vs ignored, NUTS), nonadditive (NUTS), amce (NUTS), position (NUTS),
swap (a/b swap with flipped outcomes, NUTS).

Models of table2 / table2s (``--models``): those of ``experiments.causal.table2_models`` (pooled, base,
multihead, balanced, sparse, weighted) and ``weighted_ess``, defined here: exploratory, not
pre-registered, not part of the package: ``Conditioned(C, balance="weights")`` with each level's
weights rescaled to sum to their Kish effective sample size instead of the level's number of
comparisons. It asks whether the loss of ``balance="weights"`` at rho = 0.8-0.9
(``results/causal/balance_weights.md``) comes from the weighted likelihood claiming more information
than the weighted sample holds (weights up to 10 acting as pseudo-counts); with sum w = ESS the
likelihood claims no more than the ESS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
from _common import use_checkout

STUDIES = ("table1", "table2", "table2s", "erasure", "adjustment", "nonadditive", "amce", "position", "swap")


def _position(seeds, size=0.5):
    import bayespref as bp

    rows = []
    for seed in seeds:
        sim = bp.simulate.position_bias(size=size, n_options=8, n_comparisons=2000, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = bp.fit(bp.BradleyTerry(position=True), sim.comparisons(), seed=seed, chains=2, warmup=500,
                       draws=500, progress=False)
        p = f.idata.posterior["position"]
        lo, hi = np.quantile(p.values, [0.05, 0.95])
        rows.append({"seed": seed, "truth": size, "mean": float(p.mean()), "sd": float(p.std()),
                     "lower": lo, "upper": hi, "covers": bool(lo <= size <= hi)})
    return pd.DataFrame(rows)


def _swap(seeds):
    import arviz as az

    import bayespref as bp

    rows = []
    for seed in seeds:
        sim = bp.simulate.latent_positivity(rho=0.6, n_train=1000, n_test=10, seed=seed)
        fr = sim.frame[sim.splits["train"]]
        sw = fr.copy()
        for col in [c for c in fr.columns if c.endswith("_a")]:
            sw[col], sw[col[:-2] + "_b"] = fr[col[:-2] + "_b"], fr[col]
        sw["a"], sw["b"], sw["outcome"] = fr["b"], fr["a"], 1 - fr["outcome"]
        out = {}
        for name, frame in (("original", fr), ("swapped", sw)):
            data = bp.Comparisons.from_frame(frame, **sim.options)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = bp.fit(bp.BradleyTerry(worths=False), data, seed=seed, chains=2, warmup=500, draws=1000,
                           progress=False)
            out[name] = az.summary(f.idata, var_names=["weight"], kind="all")
        a, b = out["original"], out["swapped"]
        z = (a["mean"] - b["mean"]).abs() / np.sqrt(a["mcse_mean"] ** 2 + b["mcse_mean"] ** 2)
        rows.append({"seed": seed, "max_abs_diff": float((a["mean"] - b["mean"]).abs().max()),
                     "max_z": float(z.max()), "max_sd_ratio": float((a["sd"] / b["sd"]).max()),
                     "min_sd_ratio": float((a["sd"] / b["sd"]).min())})
    return pd.DataFrame(rows)


def _weighted_ess():
    """``Conditioned("objective", balance="weights")`` with each level's weights scaled to sum to its ESS."""
    import dataclasses

    import jax.numpy as jnp

    from bayespref.models import Conditioned

    @dataclasses.dataclass(frozen=True)
    class ESSWeighted(Conditioned):
        """``Conditioned(balance="weights")`` with each level's weights scaled to sum to its ESS."""

        def arrays(self, data, *, with_outcome: bool = True):
            out = super().arrays(data, with_outcome=with_outcome)
            bw = self.balance_weights(data)
            share = bw.summary()["ess_share"].to_numpy()
            out["balance_weight"] = jnp.asarray(bw.weights * share[bw.level])
            return out

    return ESSWeighted("objective", balance="weights")


def run(study, seeds, rhos=None, sim=None, models=None):
    use_checkout()
    from experiments import causal as ce

    kw = {} if rhos is None else {"rhos": rhos}
    if models is not None:  # table2 / table2s: only these models of table2_models (and weighted_ess)
        if study not in ("table2", "table2s"):
            raise SystemExit("--models applies to --study table2 and table2s only")
        every = ce.table2_models(sparse=True, weighted=True)
        if "weighted_ess" in models:
            every["weighted_ess"] = _weighted_ess()
        unknown = [m for m in models if m not in every]
        if unknown:
            raise SystemExit(f"unknown models {unknown}; choose from {list(every)}")
        kw["models"] = {m: every[m] for m in models}
    kw.update(sim or {})
    if study == "table1":
        return ce.latent_positivity_study(seeds=seeds, **kw)
    if study == "table2":
        return ce.confounding_study(seeds=seeds, **kw)
    if study == "table2s":  # shared representation, sparse conflict (simulate.confounded_shared)
        return ce.confounding_study(seeds=seeds, simulator="shared", n_users=100, comparisons_per_user=20,
                                    n_test=2000, **kw)
    if study == "erasure":
        return ce.erasure_study(seeds=seeds, **kw)
    if study == "adjustment":
        return ce.adjustment_study(seeds=seeds)
    if study == "nonadditive":
        return ce.nonadditive_study(seeds=seeds)
    if study == "amce":
        return ce.amce_study(seeds=seeds)
    if study == "position":
        return _position(seeds)
    if study == "swap":
        return _swap(seeds)
    raise SystemExit(f"unknown study {study!r}; choose from {STUDIES}")


def _ms(df, by, cols, digits=3):
    g = df.groupby(by)[cols]
    m, se = g.mean(), g.std(ddof=1) / np.sqrt(g.count())
    out = m.copy().astype(object)
    for c in cols:
        out[c] = [f"{a:.{digits}f} ± {b:.{digits}f}" if np.isfinite(a) else "–" for a, b in zip(m[c], se[c])]
    return out


PAIRS = (("multihead", "base"), ("sparse", "base"), ("balanced", "multihead"), ("balanced", "base"), ("multihead", "pooled"),
         ("weighted", "base"), ("weighted", "multihead"))


def _paired(df):
    """Paired differences over seeds (mean ± SE) of test-inconsistent accuracy/agreement between models,
    and each model's train-test gap on inconsistent pairs (acc train - acc test)."""
    rows = {}
    for rho, d in df.groupby("rho"):
        w = d.set_index(["seed", "model"])
        row = {}
        for m1, m2 in PAIRS:
            if m1 not in d["model"].values or m2 not in d["model"].values:
                continue
            for metric in ("acc", "agree"):
                x = (w[f"{metric}_test_inconsistent"].xs(m1, level="model")
                     - w[f"{metric}_test_inconsistent"].xs(m2, level="model")).dropna()  # seeds with both
                row[f"{metric} {m1} - {m2}"] = f"{x.mean():+.3f} ± {x.std(ddof=1) / np.sqrt(len(x)):.3f}"
        gap = w["acc_train_inconsistent"] - w["acc_test_inconsistent"]
        for m in ("base", "multihead", "sparse", "balanced", "weighted", "pooled"):
            if m in d["model"].values and gap.xs(m, level="model").notna().any():
                g = gap.xs(m, level="model")
                row[f"gap {m}"] = f"{g.mean():.3f} ± {g.std(ddof=1) / np.sqrt(len(g)):.3f}"
        rows[rho] = row
    return _md(pd.DataFrame(rows).T.rename_axis("rho"))


def _md(df, index=True):
    """A DataFrame as a markdown table (no tabulate dependency)."""
    df = df.reset_index() if index else df
    cols = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def report(paths):
    frames = {}
    for p in paths:
        df = pd.read_csv(p)
        frames.setdefault(df["study"].iloc[0], []).append(df)
    out = []
    for study, dfs in frames.items():
        df = pd.concat(dfs, ignore_index=True)
        n = df["seed"].nunique()
        out.append(f"### {study} ({n} seeds; mean ± SE over seeds)\n")
        if study.startswith("table1"):
            t = _ms(df, "rho", ["agree_id", "agree_ood", "acc_id", "acc_ood", "orientation_sd", "share"])
            sd0 = df[df["rho"] == df["rho"].min()]["orientation_sd"].mean()
            t["sd ratio"] = [f"{v / sd0:.2f}" for v in df.groupby("rho")["orientation_sd"].mean()]
            t["theory 1/sqrt(1-rho)"] = [f"{1 / np.sqrt(1 - r):.2f}" for r in t.index]
            t["share theory"] = [f"{0.5 - np.arcsin(r) / np.pi:.3f}" for r in t.index]
            out.append(_md(t))
        elif study.startswith("table2"):
            for metric in ("agree", "acc"):
                cols = [f"{metric}_test_inconsistent", f"{metric}_test_consistent", f"{metric}_train_inconsistent",
                        f"{metric}_train_consistent"]
                t = _ms(df, ["rho", "model"], cols)
                out.append(f"\n{metric}:\n\n" + _md(t.unstack("model")))
            out.append("\ndiagnostics warned about an empty cell: "
                       + ", ".join(f"rho={r}: {bool(w)}" for r, w in df.groupby("rho")["warned"].max().items()))
            if study.startswith("table2s"):
                out.append("\n" + _paired(df))
        elif study == "erasure":
            out.append(_md(_ms(df, "rho", ["erased", "diff_change", "auc_level_raw", "auc_level_erased",
                                            "auc_spread_raw", "auc_spread_erased"])))
        elif study in ("adjustment", "amce"):
            key = "model" if study == "adjustment" else "reference"
            g = df.groupby(key)
            t = pd.DataFrame({"coverage": g["covers"].mean(), "mean bias": g.apply(lambda d: (d["mean"] - d["truth"]).mean()),
                              "mean interval width": g.apply(lambda d: (d["upper"] - d["lower"]).mean()),
                              "truth (mean)": g["truth"].mean()})
            if study == "adjustment":
                t["|bias| > half width (share)"] = g.apply(
                    lambda d: ((d["mean"] - d["truth"]).abs() > (d["upper"] - d["lower"]) / 2).mean())
            out.append(_md(t.round(3)))
        elif study == "nonadditive":
            out.append(_md(_ms(df, "model", ["agree_between", "acc_between", "agree_test", "acc_test",
                                             "task_mean", "task_sd"])))
        elif study == "position":
            out.append(_md(pd.DataFrame({"coverage": [df["covers"].mean()], "mean": [df["mean"].mean()],
                                         "truth": [df["truth"].iloc[0]], "mean sd": [df["sd"].mean()]}).round(3),
                           index=False))
        elif study == "swap":
            out.append(_md(df.round(3), index=False))
        out.append("")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", choices=STUDIES)
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--rhos", type=float, nargs="+", default=None)
    ap.add_argument("--sim", default="{}", help="simulator keyword arguments as JSON (table2), e.g. "
                    '\'{"quality": 0.35, "comply_noise": 0.5}\'')
    ap.add_argument("--models", nargs="+", default=None,
                    help="table2/table2s: fit only these models (pooled base multihead balanced sparse weighted "
                         "weighted_ess)")
    ap.add_argument("--out")
    ap.add_argument("--report", nargs="+")
    args = ap.parse_args(argv)
    if args.report:
        print(report(args.report))
        return
    if not args.study:
        ap.error("--study or --report is needed")
    defaults = {"table1": range(5), "table2": range(3), "table2s": range(5), "erasure": range(5), "adjustment": range(20), "nonadditive": range(3),
                "amce": range(10), "position": range(10), "swap": range(3)}
    seeds = args.seeds if args.seeds is not None else list(defaults[args.study])
    t0 = time.time()
    sim = json.loads(args.sim)
    df = run(args.study, seeds, args.rhos, sim, args.models)
    df.insert(0, "study", args.study + (f" {args.sim}" if sim else ""))
    df["wall_s"] = time.time() - t0
    df["load"] = os.getloadavg()[0]
    if args.out:
        df.to_csv(args.out, index=False)
    print(df.to_string(), file=sys.stderr)
    print(f"{args.study} seeds={seeds} rhos={args.rhos}: {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
