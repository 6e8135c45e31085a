"""The SVI objective (:class:`bayespref.inference.elbo.OrderedELBO`): the same estimate as NumPyro's
``Trace_ELBO``, and a compiled program that does not change with the interpreter's hash seed.

The second property is what lets the processes of a multi-process fit meet in their collectives
(with ``Trace_ELBO`` the two-process SVI fit hung after compiling: its processes, each with its own
hash seed, traced the per-site terms in different orders). It is checked here in two fresh
interpreters with different ``PYTHONHASHSEED`` values, which lower the SVI start and loss of the same
model and data; with ``Trace_ELBO`` in their place the two texts differ (checked by hand).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.optim import Adam

import bayespref as bp
from bayespref.inference.elbo import OrderedELBO

#: run in a fresh interpreter (this folder on its path): the SVI start and first step, lowered
LOWER = """
import hashlib, jax
from numpyro.infer import SVI
from numpyro.infer.autoguide import AutoNormal
from numpyro.optim import Adam
from bayespref import config
from bayespref.inference.elbo import OrderedELBO
from test_elbo import _problem
config.setup_jax(1)
fn, arrays = _problem()
svi = SVI(fn, AutoNormal(fn), Adam(0.01), OrderedELBO())
def start(k, d):
    st = svi.init(k, d)
    return svi.update(st, d)
text = jax.jit(start).lower(jax.random.PRNGKey(0), arrays).as_text(debug_info=False)
print("HLO", hashlib.sha256(text.encode()).hexdigest(), len(text))
"""


def _problem():
    """``Hierarchical()``'s model and arrays (grouped layout) on a small simulated design."""
    spec = bp.Hierarchical()
    data = bp.simulate.hierarchical(n_users=12, comparisons_per_user=8, n_options=6, n_features=3, seed=0).comparisons()
    fn = spec.bind(data)
    return fn, {**spec.arrays(data), "by_user": spec.by_user_arrays(data)}


def test_ordered_elbo_is_numpyros_estimate_summed_in_another_order():
    import jax

    fn, arrays = _problem()
    guide = AutoNormal(fn)
    svi = SVI(fn, guide, Adam(0.01), Trace_ELBO())
    params = svi.get_params(jax.jit(svi.init)(jax.random.PRNGKey(1), arrays))
    # compiled (op by op, each small operation would compile on its own); the same draw z ~ q in both
    # (same keys), so the same value up to the order of the float sums
    keys = jax.random.split(jax.random.PRNGKey(10), 3)
    ours = np.asarray(jax.jit(jax.vmap(lambda k: OrderedELBO().loss(k, params, fn, guide, arrays)))(keys))
    theirs = np.asarray(jax.jit(jax.vmap(lambda k: Trace_ELBO().loss(k, params, fn, guide, arrays)))(keys))
    assert np.all(np.isfinite(ours)) and len(np.unique(ours)) == 3  # three different draws
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_svi_program_is_the_same_under_any_hash_seed():
    def lowered(hash_seed):
        env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "BAYESPREF_NO_JAX_CACHE": "1"}
        return subprocess.Popen([sys.executable, "-c", LOWER], env=env, cwd=pathlib.Path(__file__).parent,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [lowered(s) for s in (1, 2)]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-3000:]
        outs.append([ln for ln in stdout.splitlines() if ln.startswith("HLO ")][-1])
    assert outs[0] == outs[1]
