"""Worker of tests/inference/test_multihost.py: one process of a multi-process fit on CPU
(``python multihost_worker.py svi``, ``laplace``, ``laplace_opg`` or ``nuts``, the last in float64).

Started with ``BAYESPREF_COORDINATOR``, ``BAYESPREF_NUM_PROCESSES``, ``BAYESPREF_PROCESS_ID`` and
``BAYESPREF_HOST_DEVICES`` (each process's CPU devices); prints ``RESULT {json}``: the process index,
the global device count and the fit's population means and SDs (and, for NUTS, the draws). Without
the variables it fits in one process on one device (the reference).
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
if METHOD == "nuts":  # float64, so that the draws of the two layouts can be compared to 1e-9
    jax.config.update("jax_enable_x64", True)


def main():
    sim = bp.simulate.hierarchical(n_users=64, comparisons_per_user=20, n_options=20, n_features=3, seed=3)
    data = sim.comparisons()
    n = jax.device_count()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"svi": dict(method="svi", steps=3000, check_every=500, num_samples=500),
              "laplace": dict(method="laplace", log_likelihood=False, num_samples=500),
              "laplace_opg": dict(method="laplace", covariance="opg", log_likelihood=False, num_samples=500),
              # short and shallow: every leapfrog step waits for one all-reduce between the processes
              "nuts": dict(method="nuts", chains=2, warmup=10, draws=10, max_tree_depth=4,
                           log_likelihood=False)}[METHOD]
        f = bp.fit(bp.Hierarchical(), data, seed=2, devices=n if jax.process_count() > 1 else None,
                   progress=False, **kw)
    post = f.idata.posterior
    out = {"process": jax.process_index(), "processes": jax.process_count(), "devices": n}
    for k in ("weight", "sd_weight"):
        out[k] = {"mean": post[k].mean(("chain", "draw")).values.tolist(),
                  "sd": post[k].std(("chain", "draw")).values.tolist()}
        if METHOD == "nuts":  # 2 chains x 10 draws
            out[k]["draws"] = post[k].values.ravel().tolist()
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
