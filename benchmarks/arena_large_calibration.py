"""Calibration of a Laplace fit on the Arena-style large design, per block of global parameters.

For each block (population worths, region effects, judge SDs): the share of 90% intervals covering the
truth, and the mean and root mean square of the z-scores (posterior mean minus truth, over the posterior
SD; a calibrated fit has mean 0 and RMS 1). The design is ``bench_defaults.arena_large_data``.

Usage::

    python benchmarks/arena_large_calibration.py N_JUDGES SEED ['{"importance": 8, "widen": 1.0}'] [LOG_TIE]

(the JSON holds settings passed to ``bp.fit(..., method="laplace")``, ``{}`` or none: the defaults;
LOG_TIE, Davidson ties in the data and the model, ``Hierarchical(varying="worths", ties=True)``).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from bench_defaults import arena_large_data


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    import bayespref as bp

    n_judges, seed = int(argv[0]), int(argv[1])
    opts = json.loads(argv[2]) if len(argv) > 2 else {}
    log_tie = float(argv[3]) if len(argv) > 3 else -np.inf
    data, truth = arena_large_data(seed, n_judges=n_judges, log_tie=log_tie)
    t0 = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(varying="worths", ties=bool(np.isfinite(log_tie))), data, seed=seed, log_likelihood=False, method="laplace",
                 progress=False, **opts)
    print(f"fit {time.perf_counter() - t0:.1f} s, {fit.info['laplace_evaluations']} evaluations, "
          f"importance {fit.info['laplace_importance']}, {fit.info['laplace_message']}")
    post = fit.idata.posterior
    for name, value in truth.items():
        d = post[name].values.reshape((-1,) + post[name].shape[2:])
        lo, hi = np.quantile(d, 0.05, axis=0), np.quantile(d, 0.95, axis=0)
        z = np.atleast_1d((d.mean(0) - value) / d.std(0))
        print(f"{name}: coverage {np.mean((lo <= value) & (value <= hi)):.3f}, z mean {z.mean():.2f}, "
              f"z RMS {np.sqrt(np.mean(z ** 2)):.2f}, posterior SD {d.std(0).mean():.4f}")


if __name__ == "__main__":
    main()
