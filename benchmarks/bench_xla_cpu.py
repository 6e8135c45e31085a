"""Where the large gradient's time goes on a CPU: XLA's code for the logistic terms, and a fused try.

The grouped log density at 1M judgements (20,000 users x 50 slots, 8 features) costs two passes
over ``dx`` (forward product, transposed product) plus the logistic terms on the (user, slot)
array. This script times, on synthetic data of that shape (one process, pin it to one core):

* ``bound_ms``: a jitted sum over as many bytes as the grouped data (the memory bound);
* ``pass_ms``: an add over one (user, slot) array (the cost of one elementwise pass);
* the logistic pieces written as a **reduction** (``sum(log1p(exp(-|d|)))``) and as an
  **array** (``log1p(exp(-|d|))``): the same arithmetic, but XLA-CPU emits the two differently;
* ``model_ms``: value and gradient of the likelihood as the model writes it (``einsum`` + NumPyro's
  Bernoulli) and ``fused_ms``: the same with a ``jax.custom_jvp`` that computes the value and the
  per-user gradient in one place, unchunked and over blocks of users (``lax.map``) so that each
  block of ``dx`` is read once while it is in cache.

    taskset -c 1 python benchmarks/bench_xla_cpu.py
    XLA_FLAGS=--xla_cpu_prefer_vector_width=512 taskset -c 1 python benchmarks/bench_xla_cpu.py
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def _median_ms(f, *args, repeats: int = 21) -> float:
    from bench_scale import _median_time  # same timing rule as the other scale benchmarks

    return 1e3 * _median_time(f, *args, repeats=repeats)


def _terms(d, y, mask):
    """Log sigmoid of the signed margin and its derivative in d, masked: one exp, one log1p, one divide."""
    import jax.numpy as jnp

    s = 2.0 * y.astype(d.dtype) - 1.0
    t = s * d
    e = jnp.exp(-jnp.abs(t))
    m = mask.astype(d.dtype)
    return (jnp.minimum(t, 0.0) - jnp.log1p(e)) * m, s * jnp.where(t >= 0, e, 1.0) / (1.0 + e) * m


def _fused(chunk: int):
    import jax
    import jax.numpy as jnp

    def block(w, dx, y, mask):
        ll, r = _terms(jnp.einsum("ufj,uf->uj", dx, w), y, mask)
        return ll.sum(-1), jnp.einsum("ufj,uj->uf", dx, r)

    @jax.custom_jvp
    def per_user(w, dx, y, mask):
        return _terms(jnp.einsum("ufj,uf->uj", dx, w), y, mask)[0].sum(-1)

    @per_user.defjvp
    def _jvp(primals, tangents):
        w, dx, y, mask = primals
        if chunk:
            n, f, j = w.shape[0] // chunk, dx.shape[1], dx.shape[2]
            ll, g = jax.lax.map(lambda a: block(*a), (w.reshape(n, chunk, f), dx.reshape(n, chunk, f, j),
                                                     y.reshape(n, chunk, j), mask.reshape(n, chunk, j)))
            ll, g = ll.reshape(-1), g.reshape(-1, f)
        else:
            ll, g = block(w, dx, y, mask)
        return ll, jnp.sum(g * tangents[0], -1)

    return lambda w, dx, y, mask: jnp.sum(per_user(w, dx, y, mask))


def main(users: int = 20_000, features: int = 8, slots: int = 50) -> dict:
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist

    rng = np.random.default_rng(0)
    dx = jnp.asarray(rng.normal(size=(users, features, slots)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 2, size=(users, slots)).astype(np.int32))
    mask = jnp.asarray(rng.random((users, slots)) < 0.98)
    w = jnp.asarray(0.3 * rng.normal(size=(users, features)).astype(np.float32))
    d = jnp.einsum("ufj,uf->uj", dx, w)
    nbytes = dx.nbytes + y.nbytes + mask.nbytes
    big = jnp.asarray(rng.normal(size=nbytes // 4).astype(np.float32))
    out = {"bound_ms": _median_ms(jax.jit(jnp.sum), big, repeats=31), "bytes_mb": nbytes / 1e6,
           "pass_ms": _median_ms(jax.jit(lambda a: a + 1.0), d)}
    pieces = {"exp": lambda a: jnp.exp(-jnp.abs(a)), "log1p_exp": lambda a: jnp.log1p(jnp.exp(-jnp.abs(a))),
              "divide": lambda a: 1.0 / (1.0 + jnp.abs(a))}
    for name, f in pieces.items():
        out[f"{name}_as_reduction_ms"] = _median_ms(jax.jit(lambda a, f=f: jnp.sum(f(a))), d)
        out[f"{name}_as_array_ms"] = _median_ms(jax.jit(f), d)
    out["terms_value_and_derivative_ms"] = _median_ms(jax.jit(_terms), d, y, mask)

    def model_ll(w, dx, y, mask):
        d = jnp.einsum("ufj,uf->uj", dx, w)
        return jnp.sum(jnp.where(mask, dist.Bernoulli(logits=d).log_prob(y), 0.0))

    ref = jax.jit(jax.value_and_grad(model_ll))
    out["model_ms"] = _median_ms(ref, w, dx, y, mask)
    v0, g0 = ref(w, dx, y, mask)
    for chunk in (0, 100, 250, 1000):
        f = jax.jit(jax.value_and_grad(_fused(chunk)))
        v, g = f(w, dx, y, mask)
        assert abs(float(v - v0)) < 1e-5 * abs(float(v0)) and float(jnp.max(jnp.abs(g - g0))) < 1e-4
        out[f"fused_chunk{chunk}_ms"] = _median_ms(f, w, dx, y, mask)
    return out


if __name__ == "__main__":
    import os

    res = main()
    res["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}, indent=1))
