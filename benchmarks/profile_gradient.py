"""Where one gradient of a model's log density goes: XLA's kernels, timed by JAX's profiler.

Builds the potential of ``bp.Hierarchical(covariates=["region", "age_band"], ties=True, position=True)``
on the Arena-style medium design (``bench_defaults.arena_data``) as the NUTS sampler sees it (NumPyro's
sample checks off, as in ``bp.fit``), runs ``--n`` gradients in one compiled loop on one device, and
prints the milliseconds per gradient and the kernels that took longest (microseconds per gradient;
the profiler adds about 1 us per kernel). Used to find that XLA fused the users' effects into each
per-comparison gather (65 us each; 9 us behind an optimisation barrier)::

    python benchmarks/profile_gradient.py --n 200 --top 20
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import sys
import tempfile

os.environ.setdefault("BAYESPREF_HOST_DEVICES", "1")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="gradients per timed loop")
    p.add_argument("--top", type=int, default=20, help="kernels to list")
    a = p.parse_args(argv)
    from _common import median_time, use_checkout
    from bench_defaults import arena_data

    use_checkout()
    import jax
    import jax.numpy as jnp
    import numpyro

    import bayespref as bp
    from bayespref.inference.settings import NutsSettings

    fit_module = sys.modules["bayespref.inference.fit"]
    data = arena_data()
    spec = bp.Hierarchical(covariates=["region", "age_band"], ties=True, position=True)
    prepared = fit_module._prepare(spec, data, "nuts", NutsSettings())
    arrays = prepared.arrays if prepared.grouped is None else {**prepared.arrays, "by_user": prepared.grouped}
    with fit_module.sample_checks(spec):
        info = numpyro.infer.util.initialize_model(jax.random.PRNGKey(0), prepared.fn, model_args=(arrays,))
        value_and_grad = jax.value_and_grad(info.potential_fn)

        @jax.jit
        def loop(x0):
            def body(i, acc):  # each gradient at a slightly different point, so none is hoisted
                x = jax.tree.map(lambda v: v + 1e-7 * jnp.tanh(acc), x0)
                val, g = value_and_grad(x)
                return acc + 1e-9 * (val + sum(jnp.sum(t) for t in jax.tree.leaves(g)))
            return jax.lax.fori_loop(0, a.n, body, 0.0)

        x0 = info.param_info.z
        jax.block_until_ready(loop(x0))   # traced here, with the checks off as in a fit
    print(f"{1e3 * median_time(loop, x0, repeats=3) / a.n:.4f} ms per gradient (median of 3 loops of {a.n})")
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp, create_perfetto_trace=True)
        jax.block_until_ready(loop(x0))
        jax.profiler.stop_trace()
        trace = glob.glob(os.path.join(tmp, "**", "*.trace.json.gz"), recursive=True)[0]
        events = json.load(gzip.open(trace))
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, count = collections.defaultdict(float), collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            total[e["name"]] += e.get("dur", 0.0)
            count[e["name"]] += 1
    kernels = {k: v / a.n for k, v in total.items() if count[k] == a.n}
    print(f"{len(kernels)} kernels per gradient, {sum(kernels.values()):.1f} us in all (profiled)")
    for name, us in sorted(kernels.items(), key=lambda t: -t[1])[: a.top]:
        print(f"{us:8.2f} us  {name}")


if __name__ == "__main__":
    main()
