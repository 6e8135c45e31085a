#!/usr/bin/env python
"""Benchmark of ``LatentTypes`` (K = 3) on 50k judgements / 1k users: NUTS and SVI.

Data: ``bayespref.simulate.latent_types(n_users=1000, comparisons_per_user=50, n_options=100,
n_types=3, worth_sd=1.0, seed=...)`` (50,000 judgements, three equally likely types with
independent N(0, 1) worths over 100 options).

Cases (each in its own child process: cold JIT, and by default a fresh, empty JAX persistent
compilation cache, so compile times are first-run times; ``--warm-cache`` uses the user's cache)

``nuts``  ``bayespref.fit(LatentTypes(n_types=3), data, chains=C, warmup=W, draws=D)`` (defaults
          4 x 1000/1000; ``--warmup 500 --draws 500`` for the shorter run).
``svi``   ``bayespref.fit(LatentTypes(n_types=3), data, method="svi")`` (AutoNormal, defaults).

Reported per case: wall time of ``fit`` (everything: compile, warm-up, sampling, relabelling, ArviZ
conversion), the part of it spent compiling (JAX monitoring spans), min bulk ESS over the type
parameters after relabelling (``worth`` (type, option) and ``type_share``) and over the
label-invariant per-user log-likelihood ``user_ll``, max R-hat, divergences, gradient evaluations
per min ESS, and recovery: share of users assigned to their true type (labels matched by the best
permutation) and the correlation of posterior-mean worths with the truth.

min ESS/s is given end to end (min ESS / fit wall time) and without compilation. For SVI the draws
are independent draws from the fitted guide, so ESS equals the number of draws by construction;
its "ESS/s" measures only speed, not the quality of the approximation (compare its recovery and
its worth means with NUTS).

Usage::

    python benchmarks/bench_latent_types.py                          # both cases, 4 x 1000/1000 NUTS
    python benchmarks/bench_latent_types.py --warmup 500 --draws 500 # shorter NUTS
    python benchmarks/bench_latent_types.py --case svi
    python benchmarks/bench_latent_types.py --quick                  # smoke run, small sizes
    python benchmarks/bench_latent_types.py --json out.json          # also save the numbers
    python benchmarks/bench_latent_types.py warm_start --warmup 300 --draws 300   # NUTS from SVI vs random start

It prints the numbers; it does not write ``RESULTS.md``.

``warm_start`` (its own options, ``bench_latent_types.py warm_start --help``): see ``WARM_START_DOC``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import tempfile
import time

from _common import ROOT, last_json, loadavg, run_child, write_json

MARK = "@@BENCH_JSON@@"
_spans: list = []


def _install_compile_listener():
    import jax.monitoring

    events = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def on_span(event, start, end, *args, **kwargs):
        if event in events:
            _spans.append((float(start), float(end)))

    jax.monitoring.register_event_time_span_listener(on_span)


def _compile_total() -> float:
    """Seconds spent compiling: the union of the compile events' time spans (nested traces overlap)."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(_spans):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def _sizes(args):
    if args.quick:
        return dict(n_users=100, comparisons_per_user=20, n_options=20, n_types=3)
    return dict(n_users=1000, comparisons_per_user=50, n_options=100, n_types=3)


def _min_ess_rhat(ds):
    import arviz as az
    import numpy as np

    ess = az.ess(ds, method="bulk")
    rhat = az.rhat(ds)
    ess = ess.dataset if hasattr(ess, "dataset") else ess
    rhat = rhat.dataset if hasattr(rhat, "dataset") else rhat
    e = {k: float(np.nanmin(v.values)) for k, v in ess.data_vars.items()}
    r = {k: float(np.nanmax(v.values)) for k, v in rhat.data_vars.items()}
    return e, r


def _recovery(f, sim):
    import numpy as np

    m = f.membership().transpose("user", "type").values
    z = np.asarray(sim.truth["type"])
    W = np.asarray(sim.truth["worth"])
    K = W.shape[0]
    post = f.idata.posterior["worth"].transpose("chain", "draw", "type", "option").values
    wm = post.reshape(-1, *post.shape[2:]).mean(0)
    best = None
    for perm in itertools.permutations(range(K)):  # fitted type perm[k] <-> true type k
        acc = float(np.mean(np.asarray(perm)[z] == m.argmax(1)))
        if best is None or acc > best[0]:
            best = (acc, perm)
    acc, perm = best
    corr = [float(np.corrcoef(wm[perm[k]], W[k])[0, 1]) for k in range(K)]
    return {"type_accuracy": acc, "worth_corr_min": min(corr)}


def run_case(args) -> dict:
    import numpy as np

    _install_compile_listener()
    import bayespref as bp

    sz = _sizes(args)
    sim = bp.simulate.latent_types(worth_sd=1.0, seed=args.seed, **sz)
    data = sim.comparisons()
    res = {"case": args.case, "sizes": sz, "n_comparisons": int(data.n_comparisons)}
    spec = bp.LatentTypes(n_types=sz["n_types"])
    c0, t0 = _compile_total(), time.perf_counter()
    if args.case == "nuts":
        f = bp.fit(spec, data, seed=args.seed, chains=args.chains, warmup=args.warmup, draws=args.draws,
                   progress=False)
        res.update(chains=args.chains, warmup=args.warmup, draws=args.draws)
    else:
        f = bp.fit(spec, data, method="svi", seed=args.seed, progress=False)
        res.update(steps=f.info["steps"], converged=f.info["converged"], num_samples=f.info["num_samples"])
    wall = time.perf_counter() - t0
    comp = _compile_total() - c0
    res.update(fit_wall_s=wall, compile_s=comp)
    post = f.idata.posterior.dataset
    if args.case == "nuts":
        e, r = _min_ess_rhat(post[["worth", "type_share"]])
        eu, ru = _min_ess_rhat(f.idata.log_likelihood.dataset[["user_ll"]])
        ss = f.idata.sample_stats.dataset
        nsteps = ss["n_steps"] if "n_steps" in ss else ss["num_steps"]
        min_ess = min(e.values())
        res.update(min_ess_bulk=min_ess, min_ess_by_var=e, max_rhat=max(r.values()),
                   min_ess_user_ll=eu["user_ll"], max_rhat_user_ll=ru["user_ll"],
                   divergences=int(ss["diverging"].values.sum()),
                   mean_tree_size=float(nsteps.values.mean()),
                   grads_per_ess_sampling=float(nsteps.values.sum()) / min_ess,
                   relabel_switch_rate=post.attrs.get("relabel_switch_rate"))
    else:
        min_ess = float(post.sizes["draw"] * post.sizes.get("chain", 1))
        res.update(min_ess_bulk=min_ess, note="SVI draws are iid from the guide: ESS = number of draws")
    res["ess_per_s"] = min_ess / wall
    res["ess_per_s_excl_compile"] = min_ess / max(wall - comp, 1e-9)
    res["recovery"] = _recovery(f, sim)
    res["worth_mean"] = np.asarray(f.idata.posterior["worth"].mean(("chain", "draw")).values).round(4).tolist()
    return res


def _machine():
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = loadavg()
    return {"cpu": cpu, "nproc": os.cpu_count(), "loadavg": load, "python": platform.python_version()}


def _child(args, case):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--case", case, "--seed", str(args.seed),
           "--chains", str(args.chains), "--warmup", str(args.warmup), "--draws", str(args.draws)]
    if args.quick:
        cmd.append("--quick")
    env = dict(os.environ)
    tmp = None
    if not args.warm_cache:
        tmp = tempfile.TemporaryDirectory(prefix="bench_lt_cache_")
        env["BAYESPREF_CACHE_DIR"] = tmp.name
    load_before = _machine()["loadavg"]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    res = last_json(out.stdout, MARK)
    if res is not None:
        res["loadavg_before"], res["loadavg_after"] = load_before, _machine()["loadavg"]
        return res
    raise RuntimeError(f"case {case} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def _print(res):
    print(f"\n== {res['case']}: {res['n_comparisons']} judgements, {res['sizes']['n_users']} users, "
          f"{res['sizes']['n_options']} options, K = {res['sizes']['n_types']}")
    if res["case"] == "nuts":
        print(f"   {res['chains']} chains x {res['warmup']} warm-up + {res['draws']} draws")
    else:
        print(f"   {res['steps']} steps (converged: {res['converged']}), {res['num_samples']} draws")
    print(f"   fit wall time      {res['fit_wall_s']:.1f} s (compile {res['compile_s']:.1f} s)")
    print(f"   min bulk ESS       {res['min_ess_bulk']:.0f}" + (
        f"  (worth/type_share; user_ll {res['min_ess_user_ll']:.0f})" if res["case"] == "nuts" else
        "  (iid guide draws)"))
    print(f"   min ESS/s          {res['ess_per_s']:.2f} end to end, {res['ess_per_s_excl_compile']:.2f} excl. compile")
    if res["case"] == "nuts":
        print(f"   max R-hat          {res['max_rhat']:.4f} (user_ll {res['max_rhat_user_ll']:.4f}), "
              f"divergences {res['divergences']}, mean tree size {res['mean_tree_size']:.1f}, "
              f"gradients per ESS {res['grads_per_ess_sampling']:.1f}")
    r = res["recovery"]
    print(f"   recovery           users assigned to true type {r['type_accuracy']:.3f}, "
          f"min corr(worth, truth) {r['worth_corr_min']:.3f}")
    print(f"   load average       before {res['loadavg_before']}, after {res['loadavg_after']}")


# ---------------------------------------------------------------- warm_start
WARM_START_DOC = """NUTS started from an SVI fit against NUTS from NumPyro's random initialisation (LatentTypes K = 3).

Data as in the ``nuts`` case above (1k users x 50 judgements, 100 options, three types). Each
variant runs in its own process with the on-disk compilation cache as the user has it::

    python benchmarks/bench_latent_types.py warm_start --warmup 500 --draws 500

Reports wall time of SVI, warm-up and sampling of NUTS, min bulk ESS over the relabelled type
parameters, max R-hat, for ``init=None`` and ``init=svi_fit``.
"""


def warm_start_worker(variant: str, warmup: int, draws: int) -> dict:
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


def warm_start_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_latent_types.py warm_start", description=WARM_START_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--json", type=pathlib.Path)
    a = p.parse_args(argv)
    if a.worker:
        print("RESULT " + json.dumps(warm_start_worker(a.worker, a.warmup, a.draws)))
        return 0
    rows = []
    for variant in ("random", "svi"):
        row, res = run_child([sys.executable, __file__, "warm_start", "--worker", variant, "--warmup", str(a.warmup),
                              "--draws", str(a.draws)], marker="RESULT ")
        rows.append(row if row is not None else {"variant": variant, "error": res.stderr[-2000:]})
        print(json.dumps(rows[-1]), flush=True)
    if a.json:
        write_json(a.json, rows)
    return 0


# ---------------------------------------------------------------- driver
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "warm_start":  # a study with its own options
        return warm_start_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog="NUTS from an SVI fit against a random start: bench_latent_types.py warm_start "
                                "--help.")
    p.add_argument("--case", choices=["nuts", "svi", "all"], default="all")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    p.add_argument("--warm-cache", action="store_true", help="use the user's JAX compilation cache")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(MARK + json.dumps(run_case(args)), flush=True)
        return 0
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print("machine:", _machine())
    cases = ["svi", "nuts"] if args.case == "all" else [args.case]
    results = []
    for case in cases:
        res = _child(args, case)
        _print(res)
        results.append(res)
    if args.json:
        write_json(args.json, {"machine": _machine(), "argv": sys.argv, "results": results})
    if len(results) == 2:
        import numpy as np

        s, n = (np.asarray(r["worth_mean"]) for r in results)
        print(f"\nmax |SVI - NUTS| posterior-mean worth: {np.max(np.abs(s - n)):.3f} (labels as relabelled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
