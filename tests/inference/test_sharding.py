"""One model's log density split over several devices (``fit(..., devices=N)``, issue 24).

JAX fixes its device count when it starts, so the comparisons of sharded and unsharded runs happen in
a fresh process with 8 virtual CPU devices (``sharding_worker.py``); the settings' rules and errors
are checked here.

Tolerances. Log density and gradient: 1e-5 relative (float32; the sharded sum adds the users' terms
in blocks, then the blocks: another order of the same float32 additions, measured 1e-7 to 3e-7).
NUTS draws: equal to 1e-9 over 10 + 10 iterations in float64 (measured 1e-16 after 3 iterations and
1e-5 after 40: each NUTS iteration multiplies a difference of reduction order by about 2.5, and in
float32 by 10 iterations draws differ by 5e-3), so longer runs agree in distribution, not draw by
draw; their summaries are compared within Monte Carlo error (slow test). SVI: equal draws within 1e-4
(the optimiser contracts differences instead of amplifying them; measured 7e-7).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import bayespref as bp
from bayespref.errors import ModelError
from bayespref.inference.settings import NutsSettings, SviSettings

WORKER = pathlib.Path(__file__).with_name("sharding_worker.py")


def _worker(mode: str, timeout=900) -> dict:
    import json

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(WORKER), mode], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=pathlib.Path(__file__).parents[2])
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _check_density(out):
    assert {"BradleyTerry", "Hierarchical"} <= set(out["families"])
    for name, case in out["cases"].items():
        assert case["n_devices"] == 8, name
        assert case["value_rel"] < 1e-5, (name, case)
        assert case["grad_rel"] < 1e-5, (name, case)


@pytest.mark.slow  # 22-25 s: 8-device worker processes for every shardable configuration
def test_sharded_log_density_and_gradient_equal_one_device():
    out = _worker("density_quick")
    assert {"Hierarchical(features, covariates)", "BradleyTerry(worths, position)"} <= set(out["cases"])
    _check_density(out)


@pytest.mark.slow
def test_sharded_log_density_every_configuration():
    _check_density(_worker("density"))


@pytest.mark.slow
def test_sharded_nuts_gives_the_same_draws():
    out = _worker("nuts")
    assert out["max_abs_diff"] < 1e-9, out["diffs"]
    assert out["summary_one"]["mean"] == out["summary_split"]["mean"]


@pytest.mark.slow
def test_sharded_nuts_long_run_same_posterior():
    out = _worker("nuts_long")
    one, split = out["summary_one"], out["summary_split"]
    for name, m in one["mean"].items():
        mcse = np.hypot(one["mcse_mean"][name], split["mcse_mean"][name])
        assert abs(m - split["mean"][name]) < 4 * mcse + 1e-3, (name, m, split["mean"][name], mcse)


@pytest.mark.slow
def test_sharded_svi_gives_the_same_fit():
    out = _worker("svi")
    assert out["max_abs_diff"] < 1e-4, out["diffs"]
    assert out["summary_one"]["mean"] == out["summary_split"]["mean"]


@pytest.mark.slow
def test_sharded_laplace_gives_the_same_fit():
    # float32 sums in another order move each L-BFGS evaluation by ~1e-7 relative; the search then
    # takes another path to the same optimum, stopping within its gradient tolerance (gtol=1e-3):
    # measured 26 and 20 evaluations, means within 8e-4 posterior SDs, SDs within 1e-4 relative, z
    # within 7e-4. Bounds: means within 2 % of a posterior SD, SDs within 1 %, users' z within 0.01
    # (their prior scale is 1).
    out = _worker("laplace")
    assert out["devices"] == 8 and out["converged"]
    assert out["rel"]["weight mean"] < 0.02 and out["rel"]["sd_weight mean"] < 0.02, out
    assert out["rel"]["weight std"] < 0.01 and out["rel"]["sd_weight std"] < 0.01, out
    assert out["z_abs"] < 0.01, out


def test_devices_setting_rules():
    assert NutsSettings(devices=2).devices == 2 and SviSettings().devices is None
    with pytest.raises(ModelError, match="devices"):
        NutsSettings(devices=0)
    with pytest.raises(ModelError, match="chain_method='sequential'"):
        NutsSettings(devices=2, chain_method="parallel")
    with pytest.raises(ModelError, match="user_batch_size"):
        SviSettings(devices=2, batch_size=10)


def test_devices_errors_name_the_fix():
    data = bp.simulate.hierarchical(n_users=6, comparisons_per_user=5, n_options=5, n_features=2, seed=0).comparisons()
    with pytest.raises(ModelError, match="BAYESPREF_HOST_DEVICES=512"):
        bp.fit(bp.Hierarchical(), data, method="svi", devices=512, steps=10, progress=False)
    with pytest.raises(ModelError, match="BAYESPREF_HOST_DEVICES=512"):
        bp.fit(bp.Hierarchical(), data, method="laplace", devices=512, progress=False)
    with pytest.raises(ModelError, match="families that can: BradleyTerry, .*Hierarchical"):
        bp.fit(bp.LatentTypes(n_types=2), data, method="svi", devices=2, steps=10, progress=False)
    rankings = bp.simulate.rankings(n_rankings=30, n_options=5, n_shown=3, n_users=6, seed=0).rankings()
    with pytest.raises(ModelError, match="grouped"):
        bp.fit(bp.Hierarchical(), rankings, method="svi", devices=2, steps=10, progress=False)
