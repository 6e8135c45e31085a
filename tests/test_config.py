"""bayespref.config: importing sets nothing; setup_jax (run by the first fit) adds the device flags,
the user's own flags win, a bad setting is named; the one CI_PROB default is used and validated."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import bayespref as bp
from bayespref import config


def _run(code: str, env_update: dict[str, str]):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "BAYESPREF_HOST_DEVICES")}
    env.update(env_update)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def _flags_after_setup(env_update: dict[str, str]) -> str:
    out = _run("import os, bayespref.config as c; c.setup_jax(); print(os.environ['XLA_FLAGS'])", env_update)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_is_free_of_side_effects():
    out = _run("import os, sys, bayespref as bp, bayespref.config, bayespref.inference; "
               "print(os.environ.get('XLA_FLAGS', '<unset>'))", {})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "<unset>"


def test_first_fit_sets_up_devices_for_parallel_chains():
    code = ("import bayespref as bp, jax; d = bp.simulate.bradley_terry(n_options=3, n_comparisons=30, seed=0)"
            ".comparisons(); bp.fit(bp.BradleyTerry(), d, chains=2, warmup=20, draws=20, progress=False); "
            "print(len(jax.local_devices()))")
    out = _run(code, {"BAYESPREF_HOST_DEVICES": "3", "BAYESPREF_NO_JAX_CACHE": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "3"


def test_device_count_is_added_and_a_bad_setting_is_named():
    assert "--xla_force_host_platform_device_count=4" in _flags_after_setup({}).split()
    assert "--xla_force_host_platform_device_count=2" in _flags_after_setup({"BAYESPREF_HOST_DEVICES": "2"}).split()
    out = _run("import bayespref.config as c; c.setup_jax()", {"BAYESPREF_HOST_DEVICES": "four"})
    assert out.returncode != 0 and "BAYESPREF_HOST_DEVICES='four' must be a whole number" in out.stderr


def test_users_own_xla_flags_win():
    flags = _flags_after_setup({"XLA_FLAGS": "--xla_cpu_prefer_vector_width=512 "
                                             "--xla_force_host_platform_device_count=2"}).split()
    assert flags == ["--xla_cpu_prefer_vector_width=512", "--xla_force_host_platform_device_count=2"]


def test_ci_prob_default_comes_from_config(monkeypatch):
    draws = xr.DataArray(np.random.default_rng(0).normal(size=(2, 2000, 1)), dims=("chain", "draw", "x"),
                         coords={"x": ["a"]})
    wide = bp.heterogeneity.summary(draws)
    monkeypatch.setattr(config, "CI_PROB", 0.5)
    narrow = bp.heterogeneity.summary(draws)
    # N(0, 1): the 90% interval is +-1.64, the 50% one +-0.67 (Monte Carlo error ~0.05 at 4000 draws)
    assert abs(float(wide["upper"].iloc[0]) - 1.645) < 0.1 and abs(float(narrow["upper"].iloc[0]) - 0.674) < 0.1
    for bad in (0, 1, 1.5, "0.9", True):
        with pytest.raises(bp.ModelError, match="ci_prob"):
            bp.heterogeneity.summary(draws, ci_prob=bad)
