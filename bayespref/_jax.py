"""JAX start-up settings: virtual CPU devices for parallel chains and the compilation cache.

Imported by every module that imports JAX, before JAX is first used. Both settings only take effect
when JAX has not initialised its backends yet (a library cannot change them afterwards); the user's
own ``XLA_FLAGS`` and cache settings always win.
"""

from __future__ import annotations

import os
import pathlib


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        from .errors import BayesprefError

        raise BayesprefError(f"{name}={raw!r} must be a whole number (unset it for the default {default}).") from None


#: Number of virtual CPU devices requested, so that 4 NUTS chains run in parallel on a CPU host
#: (measured fastest on 2 cores; see benchmarks/RESULTS.md).
HOST_DEVICES = _int_env("BAYESPREF_HOST_DEVICES", 4)

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + f" --xla_force_host_platform_device_count={HOST_DEVICES}").strip()

import jax  # noqa: E402

if not os.environ.get("BAYESPREF_NO_JAX_CACHE") and jax.config.jax_compilation_cache_dir is None:
    _cache = pathlib.Path(os.environ.get("BAYESPREF_CACHE_DIR", pathlib.Path.home() / ".cache" / "bayespref" / "jax"))
    try:
        _cache.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(_cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except OSError:  # read-only home: run without the on-disk cache
        pass


def devices_for_chains(num_chains: int) -> tuple[str, int]:
    """Choose NumPyro's ``chain_method`` for ``num_chains`` chains on the devices JAX sees.

    Returns the method and the number of devices available. ``"parallel"`` when there is one device
    per chain (CPU virtual devices or several GPUs), ``"vectorized"`` on a single accelerator, and
    ``"sequential"`` on a CPU whose device count JAX fixed before bayespref was imported.
    """
    devices = jax.local_devices()
    n = len(devices)
    if num_chains <= 1:
        return "sequential", n
    if n >= num_chains:
        return "parallel", n
    if devices[0].platform != "cpu":
        return "vectorized", n
    return "sequential", n
