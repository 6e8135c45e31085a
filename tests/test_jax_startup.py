"""bayespref's JAX start-up flags: what it adds to XLA_FLAGS, and that the user's own flags win."""

from __future__ import annotations

import os
import subprocess
import sys


def _flags_after_import(env_update: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "BAYESPREF_HOST_DEVICES")}
    env.update(env_update)
    code = "import os, bayespref._jax; print(os.environ['XLA_FLAGS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_device_count_is_added_and_a_bad_setting_is_named():
    assert "--xla_force_host_platform_device_count=4" in _flags_after_import({}).split()
    assert "--xla_force_host_platform_device_count=2" in _flags_after_import({"BAYESPREF_HOST_DEVICES": "2"}).split()
    env = {**os.environ, "BAYESPREF_HOST_DEVICES": "four"}
    out = subprocess.run([sys.executable, "-c", "import bayespref._jax"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "BAYESPREF_HOST_DEVICES='four' must be a whole number" in out.stderr


def test_users_own_xla_flags_win():
    flags = _flags_after_import({"XLA_FLAGS": "--xla_cpu_prefer_vector_width=512 "
                                              "--xla_force_host_platform_device_count=2"}).split()
    assert flags == ["--xla_cpu_prefer_vector_width=512", "--xla_force_host_platform_device_count=2"]
