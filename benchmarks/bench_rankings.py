"""Rankings (Plackett-Luce): recovery, the published beans fit, latent types and a PyMC peer.

Studies (each a subcommand with its own options, ``bench_rankings.py STUDY --help``; each writes one
JSON file into ``benchmarks/results/rankings/`` unless ``--json`` names another):

* ``coverage``: recovery of the 20 pooled worths from simulated rankings (``bp.simulate.rankings``)
  for three designs (``DESIGNS``: complete rankings, top-3 rankings, rankings with ties of two). Per
  seed, ``bp.BradleyTerry(ties=...)`` is fitted to the rankings (Plackett-Luce) and to
  ``rankings.explode()`` (the implied pairs as independent Bradley-Terry comparisons). Reported per
  design: the coverage of the equal-tailed 90 % intervals of the 20 worths (centred, as the truth),
  pooled over seeds, with its binomial SE and the seed-level SE (SD of the per-seed coverage over
  sqrt(seeds): the 20 worths of one seed share one data set), mean interval width and RMSE of the
  posterior means, for both fits. Bar (issue 22): Plackett-Luce coverage in 0.85-0.95.
* ``beans``: pooled ``bp.BradleyTerry()`` on the bundled beans rankings (NUTS, 4 x 1000) against the
  published pooled Plackett-Luce MLE (PlackettLuce, ``npseudo = 0``, reference ``ALS 0532-6``): per
  option the posterior mean and SD of the log worth relative to the reference, the published value,
  |difference| and |difference| / SD. Bar: every |difference| <= 0.05 (or <= 0.2 posterior SD).
* ``latent_types``: two latent types (150 users x 10 rankings of 4 of 8 options, type worths
  ~ N(0, 1)), ``bp.LatentTypes(n_types=2)``; accuracy of the argmax of ``fit.membership()`` against
  the true type, up to label switching, over seeds. Bar: >= 0.9.
* ``peers``: user-varying worths on 100k complete rankings of 4 of 10 options by 5k users (20 each;
  true user SD 0.5) in bayespref (``Hierarchical(correlated=False)``) and in PyMC (``PYMC_MODEL``
  below, the same model), each fit in a fresh process, the same data and seed; wall time (compile,
  warm-up, sampling), min bulk ESS over ``worth``, ``sd_worth`` and every ``user_worth``, ESS/s, the
  ratio bayespref / PyMC. bayespref's phases are its own timings (its chains run in step); PyMC's chains
  run in separate processes, so its phase times are the slowest chain's sum of step times (PyMC's
  ``perf_counter_diff``) and its compile time is the whole fit less ``sampling_time``. PyMC is a
  benchmark dependency only: ``pip install pymc``.
* ``render``: the markdown tables of a results file.

Usage::

    python benchmarks/bench_rankings.py coverage --seeds 20
    python benchmarks/bench_rankings.py beans
    python benchmarks/bench_rankings.py latent_types --seeds 5
    python benchmarks/bench_rankings.py peers --chains 2 --warmup 300 --draws 300
    python benchmarks/bench_rankings.py render benchmarks/results/rankings/coverage.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
from _common import RESULTS_DIR, last_json, loadavg, peak_rss_mb, use_checkout, write_json

OUT_DIR = RESULTS_DIR / "rankings"

#: the coverage designs: simulator arguments (20 options) and whether the model has ties
DESIGNS = {
    "complete": {"sim": {"n_shown": 6}, "ties": False,
                 "text": "complete rankings of 6 options shown out of 20"},
    "top3": {"sim": {"n_shown": 8, "top": 3}, "ties": False,
             "text": "top-3 rankings of 8 options shown out of 20 (the other 5 shown, unranked)"},
    "ties": {"sim": {"n_shown": 6, "log_tie": -1.0}, "ties": True,
             "text": "complete rankings of 6 of 20 with ties of two (log delta_2 = -1)"},
}


def _setup():
    use_checkout()
    import bayespref as bp

    warnings.simplefilter("ignore", bp.ConvergenceWarning)
    return bp


def _conv(fit) -> dict:
    c = fit.info.get("convergence_check") or {}
    div = int(np.asarray(fit.idata.sample_stats["diverging"]).sum()) if "diverging" in fit.idata.sample_stats else None
    return {"max_rhat": c.get("max_rhat"), "min_ess_bulk": c.get("min_ess_bulk"), "divergences": div}


def _min_ess(draws: dict) -> float:
    """Min bulk ESS over every element of the given (chain, draw, ...) arrays."""
    from arviz_stats.base import array_stats

    out = []
    for v in draws.values():
        v = np.asarray(v, float)
        ess = array_stats.ess(v.reshape(v.shape[0], v.shape[1], -1), chain_axis=0, draw_axis=1, method="bulk")
        out.append(float(np.nanmin(ess)))
    return min(out)


# ---------------------------------------------------------------- coverage
def _interval(draws, truth, prob):
    """Per option: covered (bool), width, posterior mean of (chain, draw, option) draws."""
    flat = np.asarray(draws, float).reshape(-1, draws.shape[-1])
    lo, hi = np.quantile(flat, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return (lo <= truth) & (truth <= hi), hi - lo, flat.mean(0)


def _summarise(covered, widths, errors, per_seed):
    n = covered.size
    p = float(covered.mean())
    return {"coverage": p, "binomial_se": math.sqrt(p * (1 - p) / n), "n_intervals": int(n),
            "seed_se": float(np.std(per_seed, ddof=1) / math.sqrt(len(per_seed))) if len(per_seed) > 1 else None,
            "per_seed_coverage": [float(x) for x in per_seed], "mean_width": float(widths.mean()),
            "rmse": float(np.sqrt(np.mean(errors ** 2)))}


def coverage_main(args):
    bp = _setup()
    from bayespref.simulate.families import option_labels

    settings = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws, "progress": False,
                "log_likelihood": False}
    out = {"study": "coverage", "n_options": args.options, "n_rankings": args.rankings, "prob": args.prob,
           "seeds": list(range(args.first_seed, args.first_seed + args.seeds)), "settings": settings,
           "truth": "worths ~ N(0, 1), centred (bp.simulate.rankings worth_sd=1); intervals on the centred worths",
           "designs": {}}
    labels = option_labels(args.options)
    t_all = time.perf_counter()
    for name in args.designs.split(","):
        d = DESIGNS[name]
        rows = []
        acc = {"pl": ([], [], []), "pairs": ([], [], [])}
        t0 = time.perf_counter()
        for seed in out["seeds"]:
            sim = bp.simulate.rankings(n_rankings=args.rankings, n_options=args.options, seed=seed, **d["sim"])
            truth_all = dict(zip(labels, sim.truth["worth"]))
            data = sim.rankings()
            row = {"seed": seed, "ties_share": float(np.mean((data.level[:, :, None] == data.level[:, None, :]).sum(-1)
                                                             .max(-1) > 1)) if d["ties"] else 0.0}
            for kind, obs in (("pl", data), ("pairs", data.explode())):
                fit = bp.fit(bp.BradleyTerry(ties=d["ties"]), obs, seed=seed, **settings)
                post = fit.idata.posterior["worth"]
                truth = np.array([truth_all[o] for o in post["option"].values])
                cov, width, mean = _interval(post.values, truth, args.prob)
                for lst, v in zip(acc[kind], (cov, width, mean - truth)):
                    lst.append(v)
                row[kind] = {"coverage": float(cov.mean()), "mean_width": float(width.mean()),
                             "n_obs": int(obs.n_obs), **_conv(fit)}
                if d["ties"]:  # the tie prevalence log delta_2 (a scalar site: ties of two only)
                    lt = np.asarray(fit.idata.posterior["log_tie"].values, float).reshape(-1)
                    lo, hi = np.quantile(lt, [(1 - args.prob) / 2, (1 + args.prob) / 2])
                    row[kind]["log_tie"] = {"mean": float(lt.mean()), "sd": float(lt.std()),
                                            "covered": bool(lo <= d["sim"]["log_tie"] <= hi)}
            rows.append(row)
            print(f"{name} seed {seed}: PL {row['pl']['coverage']:.2f} (width {row['pl']['mean_width']:.3f}), "
                  f"pairs {row['pairs']['coverage']:.2f} (width {row['pairs']['mean_width']:.3f})", flush=True)
        res = {"design": d["text"], "simulator": {"n_rankings": args.rankings, "n_options": args.options, **d["sim"]},
               "model": f"BradleyTerry(ties={d['ties']})", "seconds": time.perf_counter() - t0, "per_seed": rows}
        for kind in ("pl", "pairs"):
            cov, width, err = (np.stack(x) for x in acc[kind])
            res[kind] = _summarise(cov, width, err, cov.mean(1))
        if d["ties"]:
            for kind in ("pl", "pairs"):
                lts = [r[kind]["log_tie"] for r in rows]
                res[kind]["log_tie"] = {"truth": d["sim"]["log_tie"], "mean_of_means": float(np.mean([x["mean"] for x in lts])),
                                        "mean_sd": float(np.mean([x["sd"] for x in lts])),
                                        "coverage": float(np.mean([x["covered"] for x in lts]))}
        res["width_ratio_pairs_over_pl"] = res["pairs"]["mean_width"] / res["pl"]["mean_width"]
        res["bar"] = "Plackett-Luce coverage in [0.85, 0.95]"
        res["bar_met"] = bool(0.85 <= res["pl"]["coverage"] <= 0.95)
        out["designs"][name] = res
    out.update(seconds=time.perf_counter() - t_all, load_avg=loadavg())
    return out


# ---------------------------------------------------------------- beans
def beans_main(args):
    bp = _setup()
    ds = bp.load_dataset("beans")
    ref = ds.reference
    ref_opt = ref["reference_option"]
    data = ds.rankings()
    t0 = time.perf_counter()
    fit = bp.fit(bp.BradleyTerry(), data, seed=args.seed, chains=args.chains, warmup=args.warmup,
                 draws=args.draws, progress=False)
    secs = time.perf_counter() - t0
    w = fit.worths(reference=ref_opt)
    # cross-check: the difference of the draws
    post = fit.idata.posterior["worth"]
    diff = post - post.sel(option=ref_opt)
    rows, ok_abs, ok_sd = [], [], []
    for opt in w.index:
        if opt == ref_opt:
            continue
        m, sd = float(w.loc[opt, "mean"]), float(w.loc[opt, "sd"])
        pub = float(ref["log_worth"][opt])
        err = abs(m - pub)
        rows.append({"option": str(opt), "mean": m, "sd": sd, "published": pub, "abs_diff": err, "diff_over_sd": err / sd,
                     "published_se": float(ref["se_npseudo"][opt]) if opt in ref.get("se_npseudo", {}) else None,
                     "draws_mean": float(diff.sel(option=opt).mean()), "draws_sd": float(diff.sel(option=opt).std())})
        ok_abs.append(err <= args.tol)
        ok_sd.append(err <= args.tol_sd * sd)
    return {"study": "beans", "data": str(data).splitlines()[0], "model": "BradleyTerry() (pooled Plackett-Luce)",
            "reference_option": ref_opt, "published": ref["source"],
            "settings": {"chains": args.chains, "warmup": args.warmup, "draws": args.draws, "seed": args.seed},
            "seconds": secs, "fit_info": {k: fit.info[k] for k in ("compile_s", "warmup_s", "sampling_s")},
            "convergence": _conv(fit), "rows": rows,
            "max_abs_diff": max(r["abs_diff"] for r in rows), "max_diff_over_sd": max(r["diff_over_sd"] for r in rows),
            "bar": f"|mean - published| <= {args.tol} (or <= {args.tol_sd} posterior SD) for every option",
            "bar_met_abs": bool(all(ok_abs)), "bar_met_sd": bool(all(ok_sd)),
            "bar_met": bool(all(a or b for a, b in zip(ok_abs, ok_sd))), "load_avg": loadavg()}


# ---------------------------------------------------------------- latent types
def latent_types_main(args):
    bp = _setup()
    settings = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws, "progress": False,
                "log_likelihood": False}
    rows = []
    t0 = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        sim = bp.simulate.rankings(n_rankings=args.users * args.per_user, n_options=args.options, n_shown=args.shown,
                                   n_users=args.users, n_types=2, worth_sd=args.worth_sd, seed=seed)
        data = sim.rankings()
        t = time.perf_counter()
        fit = bp.fit(bp.LatentTypes(n_types=2), data, seed=seed, **settings)
        secs = time.perf_counter() - t
        m = fit.membership()
        pos = {u: i for i, u in enumerate(data.users)}
        users = [str(u) for u in m["user"].values]
        truth = np.array([sim.truth["type"][pos[u]] for u in users])
        guess = np.asarray(m.values).argmax(-1)
        acc = max(float(np.mean(guess == truth)), float(np.mean(guess == 1 - truth)))
        sep = float(np.sqrt(np.mean(np.diff(sim.truth["worth"], axis=0) ** 2)))
        rows.append({"seed": seed, "accuracy": acc, "seconds": secs, "true_shares": np.bincount(truth, minlength=2).tolist(),
                     "type_worth_rms_difference": sep, "mean_max_membership": float(np.asarray(m.values).max(-1).mean()),
                     **_conv(fit)})
        print(f"seed {seed}: accuracy {acc:.3f} ({secs:.0f} s)", flush=True)
    accs = [r["accuracy"] for r in rows]
    return {"study": "latent_types", "design": (f"{args.users} users x {args.per_user} complete rankings of {args.shown} "
                                                f"of {args.options} options, 2 types, type worths ~ N(0, {args.worth_sd}^2)"),
            "model": "LatentTypes(n_types=2)", "settings": settings, "per_seed": rows,
            "mean_accuracy": float(np.mean(accs)), "min_accuracy": float(np.min(accs)), "bar": "accuracy >= 0.9",
            "bar_met": bool(np.mean(accs) >= 0.9), "bar_met_every_seed": bool(np.min(accs) >= 0.9),
            "seconds": time.perf_counter() - t0, "load_avg": loadavg()}


# ---------------------------------------------------------------- peers
def peer_rankings(users: int, per_user: int, options: int, shown: int, seed: int = 0):
    """The peers' data: complete rankings of ``shown`` of ``options`` by ``users`` users (``per_user``
    each), user worths = population (N(0, 1)) + N(0, 0.5^2) deviations. Returns the bayespref
    ``Rankings`` and the plain arrays (``items`` best first, ``user``)."""
    bp = _setup()
    sim = bp.simulate.rankings(n_rankings=users * per_user, n_options=options, n_shown=shown, n_users=users,
                               user_sd=0.5, seed=seed)
    data = sim.rankings()
    assert (data.level == np.arange(shown)).all(), "complete rankings without ties, items best first"
    return data, {"items": np.asarray(data.items, int), "user": np.asarray(data.user, int),
                  "n_users": int(data.n_users), "n_options": int(data.n_options)}


PYMC_MODEL = """bayespref's Hierarchical(correlated=False) with varying worths, written in PyMC:
    worth ~ ZeroSumNormal(2) (option); sd_worth ~ HalfNormal(1) (option); z ~ N(0, 1) (user, option);
    user_worth = worth + sd_worth * z, centred over options per user;
    log-likelihood: sum over rankings and stages s = 0..K-2 of r_s - logsumexp(r_s..r_{K-1}) (pm.Potential),
    r the user's worths of the ranking's items, best first."""


def _pymc_model(d):
    import pymc as pm
    import pytensor.tensor as pt

    K = d["items"].shape[1]
    with pm.Model() as m:
        worth = pm.ZeroSumNormal("worth", sigma=2.0, shape=d["n_options"])
        sd = pm.HalfNormal("sd_worth", sigma=1.0, shape=d["n_options"])
        z = pm.Normal("z", 0.0, 1.0, shape=(d["n_users"], d["n_options"]))
        v = worth + z * sd
        v = v - v.mean(axis=1, keepdims=True)
        r = v[d["user"][:, None], d["items"]]                    # (R, K), best first
        ll = sum(r[:, s] - pt.logsumexp(r[:, s:], axis=1) for s in range(K - 1))
        pm.Potential("plackett_luce", ll.sum())
    return m


def _user_worth(worth, sd, z):
    v = worth[:, :, None, :] + sd[:, :, None, :] * z
    return v - v.mean(-1, keepdims=True)


def _peer_worker(peer, a):
    data, d = peer_rankings(a.users, a.per_user, a.options, a.shown, seed=a.data_seed)
    if peer == "bayespref":
        import bayespref as bp

        t1 = time.perf_counter()
        fit = bp.fit(bp.Hierarchical(correlated=False), data, seed=a.seed, chains=a.chains, warmup=a.warmup,
                     draws=a.draws, progress=False, log_likelihood=False)
        total = time.perf_counter() - t1
        post = fit.idata.posterior
        ess = _min_ess({k: post[k].values for k in ("worth", "sd_worth", "user_worth")})
        ss = fit.idata.sample_stats
        return {"total_s": total, "compile_s": fit.info["compile_s"], "warmup_s": fit.info["warmup_s"],
                "sampling_s": fit.info["sampling_s"], "min_ess": ess,
                "ess_by_var": {k: _min_ess({k: post[k].values}) for k in ("worth", "sd_worth", "user_worth")},
                "grad_evals_sampling": float(ss["n_steps"].sum()),
                "divergences": int(ss["diverging"].sum()), "peak_rss_mb": peak_rss_mb()}
    import pymc as pm

    t1 = time.perf_counter()
    with _pymc_model(d):
        tr = pm.sample(draws=a.draws, tune=a.warmup, chains=a.chains, cores=a.chains, random_seed=a.seed,
                       progressbar=False, compute_convergence_checks=False, nuts_sampler="pymc",
                       discard_tuned_samples=False)
    total = time.perf_counter() - t1
    post = tr.posterior
    worth, sd, z = (np.asarray(post[k].values) for k in ("worth", "sd_worth", "z"))
    draws = {"worth": worth, "sd_worth": sd, "user_worth": _user_worth(worth, sd, z)}
    ss, ws = tr.sample_stats, tr.warmup_sample_stats

    def span(s):  # seconds of a phase: the chains run in parallel processes, not in step; the slowest chain's
        return float(np.asarray(s["perf_counter_diff"].values).sum(axis=1).max())  # sum of its step times

    run_s = float(post.attrs["sampling_time"])            # warm-up + draws, compilation excluded
    return {"total_s": total, "compile_s": total - run_s, "warmup_s": span(ws), "sampling_s": span(ss),
            "run_s": run_s, "grad_evals_warmup": float(ws["n_steps"].sum()), "min_ess": _min_ess(draws),
            "ess_by_var": {k: _min_ess({k: v}) for k, v in draws.items()},
            "grad_evals_sampling": float(ss["n_steps"].sum()), "divergences": int(ss["diverging"].sum()),
            "peak_rss_mb": peak_rss_mb()}


def _run_worker(cmd, timeout):
    """Run one worker in a fresh process (its own session, so that a timeout stops PyMC's chain processes
    too): ``(result or None, error text or None)``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, errtext = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, f"stopped after the --timeout of {timeout:.0f} s, not finished"
    res = last_json(out, "RESULT ")
    if res is None or proc.returncode:
        return None, (errtext or out)[-3000:]
    return res, None


def peers_main(args):
    runs = []
    for rep in range(args.repeats):
        for peer in args.peers.split(","):
            cmd = [sys.executable, __file__, "peers", "--worker", peer, "--seed", str(args.seed + rep)]
            for k in ("users", "per_user", "options", "shown", "chains", "warmup", "draws", "data_seed"):
                cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
            t0 = time.perf_counter()
            res, err = _run_worker(cmd, args.timeout)
            res = {"error": err} if err else res
            res.update(peer=peer, repeat=rep, process_s=time.perf_counter() - t0, load_avg_after=loadavg())
            if "min_ess" in res:
                res["ess_per_s_sampling"] = res["min_ess"] / res["sampling_s"]
                res["ess_per_s_total"] = res["min_ess"] / res["total_s"]
                res["grad_per_ess"] = res["grad_evals_sampling"] / res["min_ess"]
            print(json.dumps({k: v for k, v in res.items() if k != "error"} | ({"error": err[-300:]} if err else {})),
                  flush=True)
            runs.append(res)
    summary = {}
    for peer in args.peers.split(","):
        ok = [r for r in runs if r["peer"] == peer and "min_ess" in r]
        if ok:
            summary[peer] = {k: statistics.median(r[k] for r in ok)
                             for k in ("total_s", "compile_s", "warmup_s", "sampling_s", "min_ess",
                                       "ess_per_s_sampling", "ess_per_s_total", "grad_per_ess")}
    if "bayespref" in summary and "pymc" in summary:
        b, p = summary["bayespref"], summary["pymc"]
        summary["ratio_bayespref_over_pymc"] = {
            "ess_per_s_sampling": b["ess_per_s_sampling"] / p["ess_per_s_sampling"],
            "ess_per_s_total": b["ess_per_s_total"] / p["ess_per_s_total"],
            "total_s": b["total_s"] / p["total_s"]}
    return {"study": "peers", "design": (f"{args.users * args.per_user} complete rankings of {args.shown} of "
                                         f"{args.options} options by {args.users} users ({args.per_user} each), "
                                         "user worths = population N(0, 1) + N(0, 0.5^2)"),
            "model": "Hierarchical(correlated=False) (varying worths, independent user effects); PyMC: " + PYMC_MODEL,
            "settings": {"chains": args.chains, "warmup": args.warmup, "draws": args.draws, "seed": args.seed,
                         "repeats": args.repeats},
            "cpus": os.cpu_count(), "load_avg": loadavg(), "runs": runs, "summary": summary}


# ---------------------------------------------------------------- render
def render(rep: dict) -> str:
    s = rep["study"]
    if s == "coverage":
        lines = [f"{len(rep['seeds'])} seeds, {rep['n_rankings']} rankings of {rep['n_options']} options per seed, "
                 f"{rep['settings']['chains']} chains x ({rep['settings']['warmup']} + {rep['settings']['draws']}); "
                 f"{int(rep['prob'] * 100)} % intervals\n",
                 "| design | fit | coverage (binomial SE; seed SE) | mean width | RMSE | bar 0.85-0.95 |",
                 "|---|---|---|---|---|---|"]
        for name, d in rep["designs"].items():
            for kind, label in (("pl", "Plackett-Luce"), ("pairs", "exploded pairs")):
                r = d[kind]
                bar = ("met" if d["bar_met"] else "**not met**") if kind == "pl" else "(reported)"
                seed_se = "-" if r["seed_se"] is None else f"{r['seed_se']:.3f}"
                lines.append(f"| {name}: {d['design']} | {label} | {r['coverage']:.3f} ({r['binomial_se']:.3f}; "
                             f"{seed_se}) | {r['mean_width']:.3f} | {r['rmse']:.3f} | {bar} |")
        for name, d in rep["designs"].items():
            for kind, label in (("pl", "Plackett-Luce"), ("pairs", "exploded pairs (Davidson's nu, another quantity)")):
                lt = d[kind].get("log_tie")
                if lt:
                    lines.append(f"\n{name}, {label}: log_tie (truth {lt['truth']}): mean of posterior means "
                                 f"{lt['mean_of_means']:.3f}, mean posterior SD {lt['mean_sd']:.3f}, "
                                 f"90 % coverage {lt['coverage']:.2f}")
        return "\n".join(lines)
    if s == "beans":
        lines = [f"{rep['data']}; {rep['model']}, {rep['settings']['chains']} x {rep['settings']['draws']} draws; "
                 f"log worths relative to {rep['reference_option']}\n",
                 "| option | posterior mean | posterior SD | published MLE | published SE | abs diff | abs diff / SD |",
                 "|---|---|---|---|---|---|---|"]
        for r in rep["rows"]:
            lines.append(f"| {r['option']} | {r['mean']:.4f} | {r['sd']:.4f} | {r['published']:.4f} | "
                         f"{r['published_se']:.4f} | {r['abs_diff']:.4f} | {r['diff_over_sd']:.3f} |")
        lines.append(f"\nmax abs diff {rep['max_abs_diff']:.4f}, max abs diff / SD {rep['max_diff_over_sd']:.3f}: "
                     f"bar {'met' if rep['bar_met'] else 'NOT met'}")
        return "\n".join(lines)
    if s == "latent_types":
        lines = [f"{rep['design']}; {rep['model']}, {rep['settings']['chains']} chains x "
                 f"({rep['settings']['warmup']} + {rep['settings']['draws']})\n",
                 "| seed | accuracy | mean max membership | RMS difference of type worths | max R-hat | seconds |",
                 "|---|---|---|---|---|---|"]
        for r in rep["per_seed"]:
            lines.append(f"| {r['seed']} | {r['accuracy']:.3f} | {r['mean_max_membership']:.3f} | "
                         f"{r['type_worth_rms_difference']:.2f} | {r['max_rhat']:.3f} | {r['seconds']:.0f} |")
        lines.append(f"\nmean accuracy {rep['mean_accuracy']:.3f} (min {rep['min_accuracy']:.3f}): "
                     f"bar {'met' if rep['bar_met'] else 'NOT met'}")
        return "\n".join(lines)
    if s == "peers":
        st = rep["settings"]
        lines = [f"{rep['design']}; {st['chains']} chains x ({st['warmup']} warm-up + {st['draws']} draws), "
                 f"{st['repeats']} repeat(s), medians; load average {rep['load_avg']} on {rep['cpus']} CPUs\n",
                 "| peer | total s | compile s | warm-up s | sampling s | min bulk ESS | ESS/s sampling | ESS/s total | "
                 "grad/ESS |", "|---" * 9 + "|"]
        for peer in ("bayespref", "pymc"):
            r = rep["summary"].get(peer)
            if r:
                lines.append(f"| {peer} | {r['total_s']:.0f} | {r['compile_s']:.1f} | {r['warmup_s']:.0f} | "
                             f"{r['sampling_s']:.0f} | {r['min_ess']:.0f} | {r['ess_per_s_sampling']:.2f} | "
                             f"{r['ess_per_s_total']:.2f} | {r['grad_per_ess']:.1f} |")
        ratio = rep["summary"].get("ratio_bayespref_over_pymc")
        if ratio:
            lines.append(f"\nbayespref / PyMC: ESS/s sampling {ratio['ess_per_s_sampling']:.2f}, ESS/s total "
                         f"{ratio['ess_per_s_total']:.2f}, wall time {ratio['total_s']:.2f}")
        errors = [f"- {r['peer']}: {r['error'][-300:]}" for r in rep["runs"] if r.get("error")]
        return "\n".join(lines + (["\nErrors:"] + errors if errors else []))
    raise ValueError(f"unknown study {s!r}")


# ---------------------------------------------------------------- driver
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="Each study has its own options: bench_rankings.py STUDY --help.")
    sub = p.add_subparsers(dest="study", required=True)

    def common(q, name, chains, warmup, draws):
        q.add_argument("--chains", type=int, default=chains)
        q.add_argument("--warmup", type=int, default=warmup)
        q.add_argument("--draws", type=int, default=draws)
        q.add_argument("--json", type=pathlib.Path, default=OUT_DIR / f"{name}.json",
                       help="results file (default: %(default)s)")

    q = sub.add_parser("coverage", help="90%% interval coverage of the worths: Plackett-Luce against exploded pairs")
    q.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated, of " + ", ".join(DESIGNS))
    q.add_argument("--seeds", type=int, default=20)
    q.add_argument("--first-seed", type=int, default=0)
    q.add_argument("--rankings", type=int, default=300, help="rankings per data set")
    q.add_argument("--options", type=int, default=20)
    q.add_argument("--prob", type=float, default=0.9)
    common(q, "coverage", 4, 500, 500)

    q = sub.add_parser("beans", help="pooled Plackett-Luce on the beans rankings against the published MLE")
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--tol", type=float, default=0.05)
    q.add_argument("--tol-sd", type=float, default=0.2)
    common(q, "beans", 4, 1000, 1000)

    q = sub.add_parser("latent_types", help="two latent types on rankings: membership accuracy")
    q.add_argument("--seeds", type=int, default=5)
    q.add_argument("--first-seed", type=int, default=0)
    q.add_argument("--users", type=int, default=150)
    q.add_argument("--per-user", type=int, default=10)
    q.add_argument("--options", type=int, default=8)
    q.add_argument("--shown", type=int, default=4)
    q.add_argument("--worth-sd", type=float, default=1.0)
    common(q, "latent_types", 4, 500, 500)

    q = sub.add_parser("peers", help="Hierarchical Plackett-Luce in bayespref and in PyMC, fresh processes")
    q.add_argument("--users", type=int, default=5000)
    q.add_argument("--per-user", type=int, default=20)
    q.add_argument("--options", type=int, default=10)
    q.add_argument("--shown", type=int, default=4)
    q.add_argument("--peers", default="bayespref,pymc")
    q.add_argument("--repeats", type=int, default=1)
    q.add_argument("--seed", type=int, default=0, help="sampler seed (repeat r uses seed + r)")
    q.add_argument("--data-seed", type=int, default=0)
    q.add_argument("--timeout", type=float, default=3600, help="seconds per fit before it is stopped")
    q.add_argument("--worker", choices=("bayespref", "pymc"), help=argparse.SUPPRESS)
    common(q, "peers", 2, 300, 300)

    q = sub.add_parser("render", help="print the markdown tables of a results file")
    q.add_argument("path", type=pathlib.Path)

    a = p.parse_args(argv)
    if a.study == "render":
        print(render(json.loads(a.path.read_text())))
        return
    if a.study == "peers" and a.worker:
        print("RESULT " + json.dumps(_peer_worker(a.worker, a)), flush=True)
        return
    main_fn = {"coverage": coverage_main, "beans": beans_main, "latent_types": latent_types_main,
               "peers": peers_main}[a.study]
    rep = main_fn(a)
    rep["command"] = "python benchmarks/bench_rankings.py " + " ".join(sys.argv[1:] if argv is None else argv)
    write_json(a.json, rep)
    print(render(rep))
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
