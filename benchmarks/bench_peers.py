"""Side-by-side speed of bayespref and its peers on the same model and the same data.

Peers (optional benchmark dependencies, not package dependencies)::

    pip install pymc nutpie pystan choix

Models (each peer's code is below, written to match bayespref's priors exactly):

* ``bt``: plain Bradley-Terry on item worths, ``logit P(a > b) = theta_a - theta_b``,
  ``theta ~ ZeroSumNormal(2)`` (Stan: ``sum_to_zero_vector`` with ``normal(0, 2)``; PyMC:
  ``ZeroSumNormal(sigma=2)``, the same density). bayespref: ``BradleyTerry()``. choix gives the
  maximum-likelihood worths (``ilsr_pairwise`` and ``opt_pairwise``) for the raw-speed line.
* ``hier``: hierarchical BT with user-varying feature weights, non-centred, independent user effects:
  ``w_u = mu + tau * z_u``, ``mu ~ N(0, 2.5)``, ``tau ~ HalfNormal(1)``, ``z_u ~ N(0, I)``,
  ``logit P(a > b | u) = (x_a - x_b)' w_u``. bayespref: ``Hierarchical(correlated=False)``.

* ``types``: K = 3 latent user types on item worths (bayespref: ``LatentTypes(n_types=3)``, the types
  summed out per user). Stan needs the marginalisation written by hand (``STAN_TYPES``: a user x type
  matrix of log-likelihoods, then ``log_sum_exp`` per user). ESS over the worths and type shares after
  bayespref's relabelling for both (labels are arbitrary). Data: ``simulate.latent_types`` (small:
  100 users x 20, 30 options; medium: 1k users x 50, 100 options).

Sizes: ``small`` (2k judgements; hier: 100 users x 20), ``medium`` (50k judgements; hier: 1k users
x 50, 4 features). Every fit runs in a fresh child process, one after the other, so compile times
are what a user waits for in a new session (bayespref with its on-disk compilation cache: the
``--cold`` flag empties it first; PyStan with its cached model build: the first repeat builds it).

Reported per fit: wall time of the whole fit (``total_s``: model build/compile + warm-up +
sampling), the sampling phase alone (``sampling_s``), min bulk ESS over the model's parameters
(bt: worths; hier: mu, tau and every user's weights), min ESS/s for the sampling phase and for the
total, gradient evaluations (leapfrog steps) per effective sample. The summary is the median over
repeats and the ratio bayespref / peer of the medians.

Usage::

    python benchmarks/bench_peers.py --model hier --size small --repeats 3 --json out.json
    python benchmarks/bench_peers.py --render out.json      # markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import ROOT, last_json, peer_data, write_json

PEERS = ("bayespref", "pymc", "nutpie", "stan", "choix")

STAN_BT = """
data { int<lower=1> N; int<lower=2> K; array[N] int<lower=1, upper=K> a; array[N] int<lower=1, upper=K> b;
       array[N] int<lower=0, upper=1> y; }
parameters { sum_to_zero_vector[K] worth; }
model { worth ~ normal(0, 2); y ~ bernoulli_logit(worth[a] - worth[b]); }
"""

STAN_HIER = """
data { int<lower=1> N; int<lower=1> U; int<lower=1> D; array[N] int<lower=1, upper=U> user;
       matrix[N, D] dx; array[N] int<lower=0, upper=1> y; }
parameters { vector[D] mu; vector<lower=0>[D] tau; matrix[U, D] z; }
transformed parameters { matrix[U, D] w = rep_matrix(mu', U) + z .* rep_matrix(tau', U); }
model {
  mu ~ normal(0, 2.5); tau ~ normal(0, 1); to_vector(z) ~ std_normal();
  y ~ bernoulli_logit(rows_dot_product(dx, w[user]));
}
"""

# latent types, marginalised by hand: per user, log sum_k pi_k prod_n p(y_n | theta_k)
STAN_TYPES = """
data { int<lower=1> N; int<lower=2> J; int<lower=1> U; int<lower=2> K;
       array[N] int<lower=1, upper=J> a; array[N] int<lower=1, upper=J> b;
       array[N] int<lower=1, upper=U> user; array[N] int<lower=0, upper=1> y; }
parameters { simplex[K] share; array[K] sum_to_zero_vector[J] worth; }
model {
  share ~ dirichlet(rep_vector(1, K));
  for (k in 1:K) worth[k] ~ normal(0, 2);
  matrix[U, K] lp = rep_matrix(log(share)', U);
  for (k in 1:K) {
    vector[N] d = worth[k][a] - worth[k][b];
    for (n in 1:N) lp[user[n], k] += bernoulli_logit_lpmf(y[n] | d[n]);
  }
  for (u in 1:U) target += log_sum_exp(lp[u]');
}
"""


def _relabelled_min_ess(worth, share) -> float:
    """Min bulk ESS over the type parameters after bayespref's relabelling (labels are arbitrary)."""
    import arviz as az

    from bayespref.models.mixture import relabel

    dt = az.from_dict({"posterior": {"worth": worth, "type_share": share}},
                      dims={"worth": ["type", "option"], "type_share": ["type"]})
    post = relabel(dt).posterior
    return _min_ess({k: post[k].values for k in ("worth", "type_share")})


def _min_ess(draws: dict) -> float:
    """Min bulk ESS over every element of the given (chain, draw, ...) arrays."""
    from arviz_stats.base import array_stats

    out = []
    for v in draws.values():
        v = np.asarray(v, float)
        flat = v.reshape(v.shape[0], v.shape[1], -1)
        ess = array_stats.ess(flat, chain_axis=0, draw_axis=1, method="bulk")
        out.append(float(np.nanmin(ess)))
    return min(out)


# ---------------------------------------------------------------- workers (one per child process)
def run_bayespref(model, size, seed, chains, warmup, draws, centring=None):
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    import bayespref as bp

    data, _ = peer_data(model, size)
    spec = {"bt": bp.BradleyTerry(), "hier": bp.Hierarchical(correlated=False, centring=centring),
            "types": bp.LatentTypes(n_types=3)}[model]
    t1 = time.perf_counter()
    fit = bp.fit(spec, data, seed=seed, chains=chains, warmup=warmup, draws=draws, progress=False,
                 log_likelihood=False)
    t2 = time.perf_counter()
    post = fit.idata.posterior
    names = {"bt": ["worth"], "hier": ["weight", "sd_weight", "user_weight"], "types": ["worth", "type_share"]}[model]
    ess = _min_ess({k: post[k].values for k in names})  # LatentTypes draws come relabelled
    steps = float(fit.idata.sample_stats["n_steps"].sum())
    return {"total_s": t2 - t1, "import_s": t1 - t0, "compile_s": fit.info["compile_s"],
            "warmup_s": fit.info["warmup_s"], "sampling_s": fit.info["sampling_s"], "min_ess": ess,
            "grad_evals": steps, "centring": fit.info.get("centring")}


def run_stan(model, size, seed, chains, warmup, draws):
    import stan

    _, d = peer_data(model, size)
    if model == "bt":
        code = STAN_BT
        sd = {"N": len(d["y"]), "K": d["n_options"], "a": (d["a"] + 1).tolist(), "b": (d["b"] + 1).tolist(),
              "y": d["y"].tolist()}
    elif model == "types":
        code = STAN_TYPES
        sd = {"N": len(d["y"]), "J": d["n_options"], "U": d["n_users"], "K": 3, "a": (d["a"] + 1).tolist(),
              "b": (d["b"] + 1).tolist(), "user": (d["user"] + 1).tolist(), "y": d["y"].tolist()}
    else:
        code = STAN_HIER
        sd = {"N": len(d["y"]), "U": d["n_users"], "D": d["dx"].shape[1], "user": (d["user"] + 1).tolist(),
              "dx": d["dx"].tolist(), "y": d["y"].tolist()}
    t1 = time.perf_counter()
    posterior = stan.build(code, data=sd, random_seed=seed)
    t2 = time.perf_counter()
    fit = posterior.sample(num_chains=chains, num_warmup=warmup, num_samples=draws)
    t3 = time.perf_counter()
    # Stan reports the per-chain warm-up and sampling times only in its CSV comments; PyStan does not
    # expose them, so the sampling phase is estimated from the leapfrog counts (see `phase_split`)
    names = {"bt": ["worth"], "hier": ["mu", "tau", "w"], "types": ["worth", "share"]}[model]
    post = {}
    for n in names:
        v = np.asarray(fit[n])                  # (..., draws * chains): draw index varies fastest
        v = np.moveaxis(v.reshape(v.shape[:-1] + (draws, chains), order="F"), (-1, -2), (0, 1))
        post[n] = v
    steps = np.asarray(fit["n_leapfrog__"]).sum()
    if model == "types":  # worth is (chain, draw, type, option); relabel before the ESS
        ess = _relabelled_min_ess(post["worth"], post["share"])
    else:
        ess = _min_ess(post)
    return {"total_s": t3 - t1, "compile_s": t2 - t1, "run_s": t3 - t2, "min_ess": ess,
            "grad_evals": float(steps)}


def _pymc_model(model, d):
    import pymc as pm

    with pm.Model() as m:
        if model == "bt":
            worth = pm.ZeroSumNormal("worth", sigma=2.0, shape=d["n_options"])
            pm.Bernoulli("y", logit_p=worth[d["a"]] - worth[d["b"]], observed=d["y"])
        else:
            D = d["dx"].shape[1]
            mu = pm.Normal("mu", 0.0, 2.5, shape=D)
            tau = pm.HalfNormal("tau", 1.0, shape=D)
            z = pm.Normal("z", 0.0, 1.0, shape=(d["n_users"], D))
            w = pm.Deterministic("w", mu + z * tau)
            pm.Bernoulli("y", logit_p=(d["dx"] * w[d["user"]]).sum(-1), observed=d["y"])
    return m


def run_pymc(model, size, seed, chains, warmup, draws, nutpie=False):
    import pymc as pm

    _, d = peer_data(model, size)
    t1 = time.perf_counter()
    m = _pymc_model(model, d)
    names = ["worth"] if model == "bt" else ["mu", "tau", "w"]
    with m:
        # PyMC picks nutpie by itself when it is installed: name the sampler explicitly
        tr = pm.sample(draws=draws, tune=warmup, chains=chains, random_seed=seed, progressbar=False,
                       compute_convergence_checks=False, nuts_sampler="nutpie" if nutpie else "pymc")
    t3 = time.perf_counter()
    post = {n: np.asarray(tr.posterior[n].values) for n in names}
    steps = float(np.asarray(tr.sample_stats["n_steps"].values).sum())
    run_s = float(tr.posterior.attrs["sampling_time"])   # warm-up + draws, compilation excluded
    return {"total_s": t3 - t1, "compile_s": (t3 - t1) - run_s, "run_s": run_s, "min_ess": _min_ess(post),
            "grad_evals": steps}


def run_choix(model, size, seed, chains, warmup, draws):
    import choix

    if model != "bt":
        return {"skipped": "choix fits plain Bradley-Terry only"}
    _, d = peer_data(model, size)
    pairs = np.where(d["y"][:, None] == 1, np.c_[d["a"], d["b"]], np.c_[d["b"], d["a"]])
    t1 = time.perf_counter()
    choix.ilsr_pairwise(d["n_options"], pairs, alpha=1e-4)
    t2 = time.perf_counter()
    choix.opt_pairwise(d["n_options"], pairs, alpha=1e-4)
    t3 = time.perf_counter()
    return {"ilsr_s": t2 - t1, "opt_s": t3 - t2}


def run_nutpie(model, size, seed, chains, warmup, draws):
    return run_pymc(model, size, seed, chains, warmup, draws, nutpie=True)


WORKERS = {"bayespref": run_bayespref, "stan": run_stan, "pymc": run_pymc, "nutpie": run_nutpie,
           "choix": run_choix}


def phase_split(res: dict, warmup: int, draws: int) -> dict:
    """Fill ``sampling_s`` for peers that report only the whole run.

    The run is split in proportion to iterations (warm-up iterations are taken to cost as much as
    sampling ones, which favours the peer: warm-up trees are usually deeper)."""
    if "sampling_s" not in res and "run_s" in res:
        res["sampling_s"] = res["run_s"] * draws / (warmup + draws)
    return res


# ---------------------------------------------------------------- driver
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("bt", "hier", "types"), default="hier")
    p.add_argument("--size", choices=("small", "medium"), default="small")
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--cold", action="store_true", help="empty bayespref's compilation cache before each fit")
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--render", type=pathlib.Path, help="print the markdown table of a saved JSON file")
    p.add_argument("--worker", nargs=3, metavar=("PEER", "MODEL", "SIZE"), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--centring", default="auto",
                   help="bayespref's Hierarchical(centring=...) for --model hier: 'auto' (default: chosen from the "
                        "data, bayespref's default) or a number (0: non-centred, as the peers)")
    a = p.parse_args(argv)
    if a.render:
        print(render(json.loads(a.render.read_text())))
        return
    if a.worker:
        peer, model, size = a.worker
        c = None if a.centring == "auto" else float(a.centring)
        kw = {"centring": c} if peer == "bayespref" and model == "hier" else {}
        res = WORKERS[peer](model, size, a.seed, a.chains, a.warmup, a.draws, **kw)
        print("RESULT " + json.dumps(res))
        return
    runs = []
    for rep in range(a.repeats):
        for peer in a.peers.split(","):
            env = dict(os.environ)
            if peer == "bayespref" and a.cold:
                env["BAYESPREF_CACHE_DIR"] = tempfile.mkdtemp(prefix="bp-jax-")
            cmd = [sys.executable, __file__, "--worker", peer, a.model, a.size, "--seed", str(rep),
                   "--chains", str(a.chains), "--warmup", str(a.warmup), "--draws", str(a.draws),
                   "--centring", str(a.centring)]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            found = last_json(out.stdout, "RESULT ")
            if out.returncode or found is None:
                res = {"error": (out.stderr or out.stdout)[-2000:]}
            else:
                res = phase_split(found, a.warmup, a.draws)
            res.update(peer=peer, repeat=rep, process_s=wall)
            print(json.dumps(res), flush=True)
            runs.append(res)
    report = {"model": a.model, "size": a.size, "centring": a.centring, "chains": a.chains, "warmup": a.warmup, "draws": a.draws,
              "cold": a.cold, "load_avg": os.getloadavg(), "cpus": os.cpu_count(), "runs": runs}
    if a.json:
        write_json(a.json, report)
    print(render(report))


def _median(runs, peer, key):
    vals = [r[key] for r in runs if r.get("peer") == peer and isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else float("nan")


def render(report: dict) -> str:
    runs = report["runs"]
    for r in runs:
        if "min_ess" in r:
            r["ess_per_s"] = r["min_ess"] / r["sampling_s"]
            r["ess_per_s_total"] = r["min_ess"] / r["total_s"]
            r["grad_per_ess"] = r["grad_evals"] / r["min_ess"]
    peers = [p for p in PEERS if any(r.get("peer") == p for r in runs)]
    head = (f"{report['model']} / {report['size']}: {report['chains']} chains x ({report['warmup']} warm-up + "
            f"{report['draws']} draws), medians over {max(r['repeat'] for r in runs) + 1} repeats; "
            f"load average at the end {tuple(round(x, 1) for x in report['load_avg'])} on {report['cpus']} CPUs\n\n")
    rows = ["| peer | total s | sampling s | min bulk ESS | ESS/s sampling | ESS/s total | grad/ESS | "
            "bayespref / peer (sampling) | bayespref / peer (total) |", "|---" * 9 + "|"]
    base_s = _median(runs, "bayespref", "ess_per_s")
    base_t = _median(runs, "bayespref", "ess_per_s_total")
    for p in peers:
        if p == "choix":
            ilsr, opt = _median(runs, p, "ilsr_s"), _median(runs, p, "opt_s")
            if ilsr == ilsr:
                rows.append(f"| choix (MLE) | ilsr {ilsr:.3f} / opt {opt:.3f} | | | | | | | |")
            continue
        e, et = _median(runs, p, "ess_per_s"), _median(runs, p, "ess_per_s_total")
        rows.append(f"| {p} | {_median(runs, p, 'total_s'):.1f} | {_median(runs, p, 'sampling_s'):.1f} | "
                    f"{_median(runs, p, 'min_ess'):.0f} | {e:.1f} | {et:.1f} | {_median(runs, p, 'grad_per_ess'):.1f} | "
                    f"{base_s / e:.2f} | {base_t / et:.2f} |")
    errors = [f"- {r['peer']} (repeat {r['repeat']}): {r['error'][-300:]}" for r in runs if "error" in r]
    return head + "\n".join(rows) + ("\n\nErrors:\n" + "\n".join(errors) if errors else "")


if __name__ == "__main__":
    main()
