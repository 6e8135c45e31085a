"""Worker of tests/inference/test_sharding.py, run in a fresh process with 8 virtual CPU devices.

``python sharding_worker.py density``: log density and gradient of every shardable family's
configurations, on one device and split over 8 (JSON of the largest relative differences).
``python sharding_worker.py nuts`` / ``nuts_long``: the same NUTS fit unsharded and split over 4
devices (JSON: the largest absolute difference of the draws, and both summaries).
``python sharding_worker.py svi``: the same for SVI.
"""

from __future__ import annotations

import json
import sys
import warnings

import bayespref as bp
from bayespref import config

config.setup_jax(host_devices=8)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.infer.util import initialize_model, potential_energy  # noqa: E402

from bayespref.inference import sharding  # noqa: E402
from bayespref.models import FAMILIES  # noqa: E402


def hier_data(users=37, per=11, seed=0):
    # 37 users, 8 devices: the user axis is padded (37 -> 40) and its blocks are uneven
    sim = bp.simulate.hierarchical(n_users=users, comparisons_per_user=per, n_options=20, n_features=3,
                                   group_effect=[0.5, 0.0, 0.0], seed=seed)
    return sim.comparisons()


def configurations():
    data = hier_data()
    baseball = bp.load_dataset("baseball").comparisons()
    return [
        ("Hierarchical(features, covariates)", bp.Hierarchical(), data),
        ("Hierarchical(uncorrelated, no covariates)", bp.Hierarchical(correlated=False, covariates=False), data),
        ("BradleyTerry(features)", bp.BradleyTerry(), data),
        ("BradleyTerry(worths, position)", bp.BradleyTerry(position=True), baseball),
        ("BradleyTerry(worths, ties)", bp.BradleyTerry(ties=True), bp.simulate.bradley_terry(
            n_options=9, n_comparisons=501, log_tie=-1.0, seed=3).comparisons()),
    ]


def density(quick=False):
    out = {"families": sorted(n for n, c in FAMILIES.items() if c.shardable), "cases": {}}
    cases = configurations()
    for name, spec, data in (cases[::3] if quick else cases):
        fn = spec.bind(data)
        arrays = spec.arrays(data)
        grouped = spec.by_user_arrays(data)
        if grouped is not None:
            arrays = {**arrays, "by_user": grouped}
        split = sharding.shard(spec, data, arrays, 8)
        z = initialize_model(jax.random.PRNGKey(1), fn, model_args=(arrays,)).param_info.z
        z = jax.tree.map(lambda v: v + 0.3 * jax.random.normal(jax.random.PRNGKey(2), v.shape), z)
        g = jax.jit(jax.value_and_grad(lambda z_, d, f=fn: potential_energy(f, (d,), {}, z_)))
        v1, g1 = g(z, arrays)
        v8, g8 = g(z, split)
        flat1 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g1)])
        flat8 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g8)])
        key = next(iter(k for k in split if k in ("by_user", "sharded")))
        leaf = jax.tree.leaves(split[key])[0]
        out["cases"][name] = {
            "value_rel": float(abs(v8 - v1) / abs(v1)),
            "grad_rel": float(np.max(np.abs(flat8 - flat1)) / np.max(np.abs(flat1))),
            "n_devices": len(leaf.sharding.device_set),
            "shard_rows": sorted({s.data.shape[0] for s in leaf.addressable_shards}),
        }
    return out


def nuts(short=True):
    """Short: float64, 10 + 10 iterations (the draws agree to about 1e-12; every NUTS iteration
    multiplies a difference of reduction order by about 2.5, so a long run's draws part ways);
    long: float32, 1000 + 1000 iterations for summaries."""
    if short:
        jax.config.update("jax_enable_x64", True)
    data = hier_data(users=30, per=12, seed=4)
    spec = bp.Hierarchical(correlated=False, covariates=False)
    kw = dict(chains=2, warmup=10, draws=10, progress=False) if short else dict(chains=4, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = bp.fit(spec, data, seed=7, **kw)
        four = bp.fit(spec, data, seed=7, devices=4, **kw)
    return _compare(one, four)


def laplace():
    """The Laplace method on one device and with its 37 users split over 8 (padded to 40): the largest
    difference of the globals' posterior means (in posterior SDs) and SDs (relative), and of the
    users' draws of z (standard-normal scale)."""
    data = hier_data()
    kw = dict(method="laplace", num_samples=200, progress=False, seed=3, log_likelihood=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = bp.fit(bp.Hierarchical(), data, **kw)
        split = bp.fit(bp.Hierarchical(), data, devices=8, **kw)
    p1, p8 = one.idata.posterior, split.idata.posterior
    rel = {}
    for site in ("weight", "sd_weight"):
        for stat in ("mean", "std"):
            a = getattr(p1[site], stat)(("chain", "draw")).values
            b = getattr(p8[site], stat)(("chain", "draw")).values
            scale = p1[site].std(("chain", "draw")).values if stat == "mean" else np.abs(a)
            rel[f"{site} {stat}"] = float(np.max(np.abs(a - b) / scale))
    return {"rel": rel, "z_abs": float(np.max(np.abs(p1["z"].values - p8["z"].values))),
            "evaluations": [one.info["laplace_evaluations"], split.info["laplace_evaluations"]],
            "devices": split.info.get("devices"), "converged": bool(split.info["laplace_converged"])}


def svi():
    data = hier_data(users=30, per=12, seed=4)
    spec = bp.Hierarchical()
    kw = dict(steps=1000, check_every=250, num_samples=200, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = bp.fit(spec, data, method="svi", seed=7, **kw)
        four = bp.fit(spec, data, method="svi", seed=7, devices=4, **kw)
    return _compare(one, four)


def _compare(one, four):
    p1, p4 = one.idata.posterior, four.idata.posterior
    diffs = {k: float(np.max(np.abs(p1[k].values - p4[k].values))) for k in p1.data_vars}
    s1, s4 = one.summary(), four.summary()
    cols = ["mean", "sd", "mcse_mean"] if "mcse_mean" in s1 else ["mean", "sd"]
    return {"max_abs_diff": max(diffs.values()), "diffs": diffs,
            "summary_one": s1[cols].round(4).to_dict(), "summary_split": s4[cols].round(4).to_dict(),
            "info": {k: four.info.get(k) for k in ("devices", "chain_method")}}


if __name__ == "__main__":
    result = {"density": density, "density_quick": lambda: density(quick=True), "laplace": laplace, "nuts": nuts,
              "nuts_long": lambda: nuts(short=False), "svi": svi}[sys.argv[1]]()
    print("RESULT " + json.dumps(result))
