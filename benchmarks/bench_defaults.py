"""Fast, well-behaved defaults: the models alignment users fit first, fitted with no settings at all.

Cases (each fit in a fresh child process, one after the other, so compile times are what a user waits
for in a new session; bayespref with its on-disk compilation cache emptied first with ``--cold``):

* ``arena``: Arena-style medium design (12 models, 300 judges of unequal activity, 15,106 battles,
  judge covariates region and age band, Davidson ties, position effect). bayespref:
  ``bp.fit(bp.Hierarchical(covariates=["region", "age_band"], ties=True, position=True), data)``
  with nothing else. Peer: nutpie on the same model written in PyMC (same priors: ZeroSumNormal
  worths and group effects, independent HalfNormal(1) SDs (bayespref's default for more than 10
  varying effects), non-centred users, users' worths centred over models, Davidson ties), 4 chains
  x (1000 + 1000) as bayespref's defaults.
  Reported: end-to-end seconds, min bulk ESS over the population parameters and every judge's
  worths, ESS/s of sampling and of the whole fit.
* ``types``: LatentTypes K = 4 on 192 users x all 10 pairs of 5 options (types' worths N(0, 1.5^2)),
  defaults, over seeds: seconds and max R-hat over the (relabelled) worths and shares. Reference:
  EM for the same mixture (psychomix-style: responsibilities per user, then each type's
  Bradley-Terry MLE by Newton; 10 random starts, the best kept), timed on the same data.
* ``arena_large``: 1M battles (100 models, 20k judges, 50 each, regions as 2 covariate columns, no
  ties), ``bp.fit(bp.Hierarchical(varying="worths"), data)`` with nothing else (it chooses the
  Laplace method, on the paired design); seconds of the fit (the data's simulation and reading not
  counted), peak memory of the process, and the share of the 400 global parameters (population
  worths, region effects, judge SDs) whose 90% intervals cover the truth, over seeds.
* ``small``: small random-effects designs with defaults, over seeds: flatlizards (random lizard
  effect + SVL; 100 contests) and simulated random residual worths (30 options, 3 features,
  300 comparisons, residual SD 0.1): min bulk ESS and divergences.

Usage::

    python benchmarks/bench_defaults.py arena --json benchmarks/results/defaults/arena.json
    python benchmarks/bench_defaults.py types --seeds 5 --json benchmarks/results/defaults/types.json
    python benchmarks/bench_defaults.py small --seeds 3 --json benchmarks/results/defaults/small.json
    python benchmarks/bench_defaults.py arena_large --seeds 3 --cold --json benchmarks/results/defaults/arena_large.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import last_json, use_checkout, write_json

MODELS = 12
REGIONS = ("americas", "asia", "europe")
AGES = ("18-29", "30-49", "50+")


# ---------------------------------------------------------------- data
def arena_data(seed: int = 0):
    """The Arena-style medium design (a bayespref ``Comparisons``) and the plain arrays of the peers."""
    use_checkout()
    import pandas as pd

    import bayespref as bp

    rng = np.random.default_rng(seed)
    n_judges, n_battles = 300, 15_106
    names = [f"model{i:02d}" for i in range(MODELS)]
    base = np.linspace(1.2, -1.2, MODELS)
    region = rng.integers(0, len(REGIONS), n_judges)
    age = rng.integers(0, len(AGES), n_judges)
    shift_region = rng.normal(0, 0.4, (len(REGIONS), MODELS)) * np.array([0, 1, 1])[:, None]
    shift_age = rng.normal(0, 0.25, (len(AGES), MODELS)) * np.array([0, 1, 1])[:, None]
    worth = base + shift_region[region] + shift_age[age] + rng.normal(0, 0.3, (n_judges, MODELS))
    worth -= worth.mean(1, keepdims=True)
    activity = rng.lognormal(0, 0.5, n_judges)   # judges of unequal activity
    u = rng.choice(n_judges, n_battles, p=activity / activity.sum())
    a = rng.integers(0, MODELS, n_battles)
    b = (a + rng.integers(1, MODELS, n_battles)) % MODELS
    d = worth[u, a] - worth[u, b] + 0.1
    p = np.exp(np.stack([d / 2, -d / 2, np.full_like(d, -1.5)], -1))
    p /= p.sum(-1, keepdims=True)
    code = (rng.random(n_battles)[:, None] > np.cumsum(p, -1)).sum(-1)
    judges = [f"judge{i:03d}" for i in range(n_judges)]
    battles = pd.DataFrame({"model_a": np.asarray(names)[a], "model_b": np.asarray(names)[b],
                            "winner": np.array(["model_a", "model_b", "tie"])[code],
                            "judge": np.asarray(judges)[u]})
    table = pd.DataFrame({"region": np.asarray(REGIONS)[region], "age_band": np.asarray(AGES)[age]},
                         index=pd.Index(judges, name="judge"))
    table = table.loc[sorted(set(battles["judge"]))]
    data = bp.Comparisons.from_arena(battles, user_covariates=table)
    return data


def types_data(seed: int):
    """192 users x all 10 pairs of 5 options, K = 4 types with worths N(0, 1.5^2) (centred)."""
    use_checkout()
    import itertools

    import pandas as pd

    import bayespref as bp

    rng = np.random.default_rng(seed)
    n_users, n_opt, K = 192, 5, 4
    W = rng.normal(0, 1.5, (K, n_opt))
    W -= W.mean(1, keepdims=True)
    z = rng.integers(0, K, n_users)
    pairs = np.array(list(itertools.combinations(range(n_opt), 2)))
    u = np.repeat(np.arange(n_users), len(pairs))
    a, b = np.tile(pairs[:, 0], n_users), np.tile(pairs[:, 1], n_users)
    flip = rng.random(u.size) < 0.5
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    y = (rng.random(u.size) < 1 / (1 + np.exp(-(W[z[u], a] - W[z[u], b])))).astype(int)
    opts = np.array([f"o{i}" for i in range(n_opt)])
    frame = pd.DataFrame({"a": opts[a], "b": opts[b], "outcome": y, "user": [f"s{i:03d}" for i in u]})
    return bp.Comparisons.from_frame(frame, a="a", b="b", outcome="outcome", user="user")


# ---------------------------------------------------------------- workers
def _min_ess(post, names) -> float:
    from arviz_stats.base import array_stats

    out = []
    for n in names:
        v = np.asarray(post[n], float)
        flat = v.reshape(v.shape[0], v.shape[1], -1)
        out.append(float(np.nanmin(array_stats.ess(flat, chain_axis=0, draw_axis=1, method="bulk"))))
    return min(out)


def _import_fit(bp) -> float:
    """Import bayespref's fitting modules (ArviZ with them; bayespref imports them on first use) before
    the clock starts, as the peers import PyMC before theirs. Returns the seconds it took (``import_s``)."""
    t0 = time.perf_counter()
    assert callable(bp.fit)
    return time.perf_counter() - t0


def run_bayespref_arena(seed: int) -> dict:
    use_checkout()
    import bayespref as bp

    data = arena_data()
    import_s = _import_fit(bp)
    t0 = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(covariates=["region", "age_band"], ties=True, position=True), data, seed=seed)
    total = time.perf_counter() - t0
    post = fit.idata.posterior
    names = ["worth", "group_worth", "sd_worth", "position", "log_tie", "user_worth"]
    s = fit.summary(var_names=names[:-1])
    return {"total_s": total, "import_s": import_s, "compile_s": fit.info["compile_s"], "warmup_s": fit.info["warmup_s"],
            "sampling_s": fit.info["sampling_s"], "min_ess": _min_ess(post, names),
            "max_rhat": float(s["r_hat"].max()), "divergences": int(fit.idata.sample_stats["diverging"].sum()),
            "grad_evals": float(fit.idata.sample_stats["n_steps"].sum()), "method": fit.info["method"],
            "centring": fit.info.get("centring"), "target_accept": fit.info.get("target_accept"),
            "draws": fit.info.get("draws"), "extensions": fit.info.get("extensions"),
            "warned": bool(fit.info.get("convergence_check", {}).get("n_flagged")),
            "n_comparisons": data.n_comparisons}


def run_nutpie_arena(seed: int) -> dict:
    import pymc as pm
    import pytensor.tensor as pt

    use_checkout()
    data = arena_data()
    a, b, u = (np.asarray(v) for v in (data.a, data.b, data.user))
    y = np.asarray(data.y)
    code = np.select([y == 1, y == 0], [0, 1], 2)  # a, b, tie
    cov = np.asarray(data.covariates, float)
    O, U, P = data.n_options, data.n_users, cov.shape[1]
    t0 = time.perf_counter()
    with pm.Model():
        worth = pm.ZeroSumNormal("worth", sigma=2.0, shape=O)
        B = pm.ZeroSumNormal("group_worth", sigma=1.0, shape=(P, O))
        sd = pm.HalfNormal("sd_worth", 1.0, shape=O)     # 12 effects: independent, as bayespref's default
        z = pm.Normal("z", 0.0, 1.0, shape=(U, O))
        v = worth + pt.dot(cov, B) + z * sd
        v = v - v.mean(axis=1, keepdims=True)
        pm.Deterministic("user_worth", v)
        pos = pm.Normal("position", 0.0, 1.0)
        log_tie = pm.Normal("log_tie", -1.0, 1.5)
        d = v[u, a] - v[u, b] + pos
        logits = pt.stack([d / 2, -d / 2, pt.ones_like(d) * log_tie], axis=-1)
        pm.Categorical("y", logit_p=logits, observed=code)
        tr = pm.sample(draws=1000, tune=1000, chains=4, random_seed=seed, progressbar=False,
                       compute_convergence_checks=False, nuts_sampler="nutpie")
    total = time.perf_counter() - t0
    post = tr.posterior
    run_s = float(post.attrs.get("sampling_time", np.nan))
    names = ["worth", "group_worth", "sd_worth", "position", "log_tie", "user_worth"]
    return {"total_s": total, "run_s": run_s, "sampling_s": run_s / 2, "min_ess": _min_ess(post, names),
            "divergences": int(np.asarray(tr.sample_stats["diverging"]).sum()),
            "grad_evals": float(np.asarray(tr.sample_stats["n_steps"]).sum())}


def run_bayespref_types(seed: int) -> dict:
    use_checkout()
    import warnings

    import bayespref as bp

    data = types_data(seed)
    import_s = _import_fit(bp)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bp.fit(bp.LatentTypes(n_types=4), data, seed=seed)
    total = time.perf_counter() - t0
    s = fit.summary(var_names=["worth", "type_share"])
    return {"total_s": total, "import_s": import_s, "max_rhat": float(s["r_hat"].max()), "min_ess": float(s["ess_bulk"].min()),
            "modes": fit.info.get("init_modes"), "warnings": sorted({type(w.message).__name__ for w in caught})}


def em_mixture(a, b, y, user, n_users, n_opt, K, rng, iters=200, tol=1e-6):
    """EM for a K-type mixture of Bradley-Terry models (types shared by each user's comparisons)."""
    W = rng.normal(0, 1, (K, n_opt))
    pi = np.full(K, 1 / K)
    X = np.zeros((len(a), n_opt))
    X[np.arange(len(a)), a] += 1
    X[np.arange(len(a)), b] -= 1
    ll_old = -np.inf
    for _ in range(iters):
        d = X @ W.T                                               # (N, K)
        lp = np.where(y[:, None] == 1, -np.logaddexp(0, -d), -np.logaddexp(0, d))
        L = np.zeros((n_users, K))
        np.add.at(L, user, lp)
        joint = L + np.log(pi)
        m = joint.max(1, keepdims=True)
        ll = float(np.sum(m[:, 0] + np.log(np.exp(joint - m).sum(1))))
        r = np.exp(joint - m)
        r /= r.sum(1, keepdims=True)
        pi = r.mean(0)
        for k in range(K):                                       # weighted BT by Newton (ridge 1/4)
            w = r[user, k]
            for _ in range(5):
                p = 1 / (1 + np.exp(-(X @ W[k])))
                g = X.T @ (w * (y - p)) - 0.25 * W[k]
                H = (X * (w * p * (1 - p))[:, None]).T @ X + 0.25 * np.eye(n_opt)
                W[k] = W[k] + np.linalg.solve(H, g)
        if ll - ll_old < tol * abs(ll):
            break
        ll_old = ll
    return ll, W, pi


def run_em_types(seed: int) -> dict:
    data = types_data(seed)
    a, b, u = (np.asarray(v) for v in (data.a, data.b, data.user))
    y = np.asarray(data.y)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    best = max((em_mixture(a, b, y, u, data.n_users, data.n_options, 4, rng) for _ in range(10)),
               key=lambda r: r[0])
    return {"total_s": time.perf_counter() - t0, "loglik": best[0]}


def run_small(seed: int) -> dict:
    use_checkout()
    import warnings

    import bayespref as bp

    out = {}
    lizards = bp.load_dataset("flatlizards").comparisons()
    resid = bp.simulate.bradley_terry(n_options=30, n_comparisons=300, n_features=3, worth_sd=0.1,
                                      seed=seed + 1).comparisons()
    for name, data in (("flatlizards", lizards), ("residual_worths", resid)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            fit = bp.fit(bp.BradleyTerry(worths="random"), data, seed=seed)
            total = time.perf_counter() - t0
        s = fit.summary()
        out[name] = {"total_s": total, "min_ess": float(s["ess_bulk"].min()), "max_rhat": float(s["r_hat"].max()),
                     "divergences": int(fit.idata.sample_stats["diverging"].sum()),
                     "target_accept": fit.info["target_accept"],
                     "warnings": sorted({type(w.message).__name__ for w in caught
                                         if "Convergence" in type(w.message).__name__})}
    return out


def arena_large_data(seed: int, n_judges: int = 20_000, per_judge: int = 50, n_models: int = 100,
                     log_tie: float = -np.inf):
    """Arena-style large design: 100 models, 20k judges of 3 regions (2 covariate columns), 50 battles
    each (1M), no ties (Davidson ties with a finite ``log_tie``); returns the data and the truth of the
    global parameters."""
    use_checkout()
    import bayespref as bp

    rng = np.random.default_rng(1000 + seed)
    models = [f"model{i:03d}" for i in range(n_models)]
    base = np.linspace(1.5, -1.5, n_models)
    shifts = {"americas": np.zeros(n_models), "asia": rng.normal(0, 0.3, n_models),
              "europe": rng.normal(0, 0.3, n_models)}
    sim = bp.simulate.arena(n_judges=n_judges, battles_per_judge=per_judge, n_questions=500, models=models,
                            base=base, shifts=shifts, user_sd=0.3, log_tie=log_tie, seed=seed)
    data = bp.Comparisons.from_arena(sim.battles, user_covariates=sim.judges)
    g = sim.truth["group_worth"]
    truth = {"worth": g.loc["americas"].to_numpy(),
             "group_worth": np.stack([(g.loc[r] - g.loc["americas"]).to_numpy() for r in ("asia", "europe")]),
             "sd_worth": np.full(n_models, 0.3 * np.sqrt(1 - 1 / n_models))}
    if np.isfinite(log_tie):
        truth["log_tie"] = np.asarray(log_tie)
    return data, truth


def run_bayespref_arena_large(seed: int) -> dict:
    import resource

    use_checkout()
    import bayespref as bp

    data, truth = arena_large_data(seed)
    import_s = _import_fit(bp)
    t0 = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(varying="worths"), data, seed=seed)
    total = time.perf_counter() - t0
    post = fit.idata.posterior
    cover, hits, n = {}, 0, 0
    for name, value in truth.items():
        d = post[name].values.reshape((-1,) + post[name].shape[2:])
        lo, hi = np.quantile(d, 0.05, axis=0), np.quantile(d, 0.95, axis=0)
        inside = (lo <= value) & (value <= hi)
        cover[name] = float(np.mean(inside))
        hits, n = hits + int(inside.sum()), n + inside.size
    return {"total_s": total, "import_s": import_s, "method": fit.info["method"], "coverage": cover, "coverage_all": hits / n,
            "n_globals": n, "laplace_s": fit.info.get("laplace_s"), "converged": fit.info.get("laplace_converged"),
            "evaluations": fit.info.get("laplace_evaluations"), "importance": fit.info.get("laplace_importance"),
            "design": fit.info.get("laplace_design"), "user_draws": fit.info.get("user_draws"),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "n_comparisons": data.n_comparisons}


WORKERS = {("arena_large", "bayespref"): run_bayespref_arena_large, ("arena", "bayespref"): run_bayespref_arena, ("arena", "nutpie"): run_nutpie_arena,
           ("types", "bayespref"): run_bayespref_types, ("types", "em"): run_em_types,
           ("small", "bayespref"): run_small}


# ---------------------------------------------------------------- driver
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", choices=("arena", "arena_large", "types", "small"))
    p.add_argument("--peers", default=None, help="comma-separated (default: every peer of the case)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--cold", action="store_true", help="empty bayespref's compilation cache before each fit")
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--worker", nargs=2, metavar=("PEER", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        res = WORKERS[(a.case, a.worker[0])](int(a.worker[1]))
        print("RESULT " + json.dumps(res))
        return
    peers = a.peers.split(",") if a.peers else [pe for (c, pe) in WORKERS if c == a.case]
    runs = []
    for seed in range(a.seeds):
        for peer in peers:
            env = dict(os.environ)
            if peer == "bayespref" and a.cold:
                env["BAYESPREF_CACHE_DIR"] = tempfile.mkdtemp(prefix="bp-jax-")
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, a.case, "--worker", peer, str(seed)],
                                 capture_output=True, text=True, env=env)
            found = last_json(out.stdout, "RESULT ")
            res = {"error": (out.stderr or out.stdout)[-3000:]} if out.returncode or found is None else found
            res.update(peer=peer, seed=seed, process_s=time.perf_counter() - t0,
                       chose=[ln for ln in out.stderr.splitlines() if ln.startswith("bayespref.fit:")])
            print(json.dumps(res), flush=True)
            runs.append(res)
    report = {"case": a.case, "seeds": a.seeds, "cold": a.cold, "load_avg": os.getloadavg(),
              "cpus": os.cpu_count(), "runs": runs}
    if a.json:
        write_json(a.json, report)


if __name__ == "__main__":
    main()
