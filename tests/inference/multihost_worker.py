"""Worker of tests/inference/test_multihost.py: one process of a multi-process fit on CPU
(``python multihost_worker.py svi`` or ``laplace``).

Started with ``BAYESPREF_COORDINATOR``, ``BAYESPREF_NUM_PROCESSES``, ``BAYESPREF_PROCESS_ID`` and
``BAYESPREF_HOST_DEVICES`` (each process's CPU devices); prints ``RESULT {json}``: the process index,
the global device count and the fit's population means and SDs. Without the variables it fits in one
process on one device (the reference).
"""

from __future__ import annotations

import json
import sys
import warnings

import bayespref as bp
from bayespref import config

config.setup_jax()

import jax  # noqa: E402

METHOD = sys.argv[1] if len(sys.argv) > 1 else "svi"


def main():
    sim = bp.simulate.hierarchical(n_users=64, comparisons_per_user=20, n_options=20, n_features=3, seed=3)
    data = sim.comparisons()
    n = jax.device_count()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = (dict(method="svi", steps=3000, check_every=500) if METHOD == "svi" else
              dict(method="laplace", log_likelihood=False))
        f = bp.fit(bp.Hierarchical(), data, seed=2, num_samples=500, devices=n if jax.process_count() > 1 else None,
                   progress=False, **kw)
    post = f.idata.posterior
    out = {"process": jax.process_index(), "processes": jax.process_count(), "devices": n}
    for k in ("weight", "sd_weight"):
        out[k] = {"mean": post[k].mean(("chain", "draw")).values.tolist(),
                  "sd": post[k].std(("chain", "draw")).values.tolist()}
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
