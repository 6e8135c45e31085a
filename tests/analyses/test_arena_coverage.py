"""Coverage of planted per-region shifts on simulated Arena data (slow: five NUTS fits).

From the raw tables (``bp.simulate.arena``: 90 judges in three regions, 20 battles each, Davidson
ties) to ``heterogeneity.group_effects`` and ``contrast``: for each non-reference region and each
model, the 90% interval of the region's worth minus the reference region's worth should cover the
planted difference (null shifts included). A calibrated 90% interval covers 90% of the cells; the
check asks for at least 85% of the 5 x 2 x 6 = 60 cells.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayespref as bp
from bayespref import heterogeneity as het

pytestmark = pytest.mark.slow

SEEDS = range(5)


def _covered(seed):
    sim = bp.simulate.arena(n_judges=90, battles_per_judge=20, seed=seed)
    data = bp.Comparisons.from_arena(sim.battles, user_covariates=sim.judges)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        fit = bp.fit(bp.Hierarchical(varying=["worths"], covariates=["region"], ties=True), data, seed=seed,
                     chains=4, warmup=500, draws=500, progress=False)
    eff = het.group_effects(fit, "region")
    truth = sim.truth["group_worth"]
    hits = []
    for region in ("asia", "europe"):
        table = het.contrast(eff["worth"], region, "americas", ci_prob=0.9)
        models = [str(m) for m in table.index.get_level_values(-1)]
        true = (truth.loc[region] - truth.loc["americas"]).loc[models].to_numpy()
        hits.append((table["lower"].to_numpy() <= true) & (true <= table["upper"].to_numpy()))
    return np.concatenate(hits)


def test_region_shift_intervals_cover_the_truth():
    covered = np.concatenate([_covered(s) for s in SEEDS])
    assert covered.size == 60
    assert covered.mean() >= 0.85, f"coverage {covered.mean():.2f} of {covered.size} cells"
