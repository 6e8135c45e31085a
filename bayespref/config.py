"""One configuration place: the package's defaults and its JAX set-up.

Defaults
--------
``CI_PROB``
    Probability mass of every equal-tailed interval the package reports when ``ci_prob`` is not
    given (0.9). Change it for a session with ``bayespref.config.CI_PROB = 0.95``.
``RHAT_MAX``, ``ESS_PER_CHAIN``
    The convergence thresholds used by the warning after a NUTS fit, by the ``flag`` column of
    ``Fit.summary()`` and by :func:`bayespref.checks.convergence`: split R-hat above 1.01, bulk (or
    tail) ESS below 100 per chain, that is below 400 for the default 4 chains (:func:`min_ess`, the
    one place where the two are combined; Vehtari et al. 2021).
``AUTO_CHECK_USERS``
    Users whose effects the automatic check after a NUTS fit looks at (all population parameters are
    checked; ``fit.diagnostics()`` checks every user).
``MAX_JUDGEMENTS``
    The most judgements a count table may expand to (50 million): every judgement becomes one row
    (:func:`bayespref.data.readers.expand_counts`, about ``BYTES_PER_JUDGEMENT`` = 260 bytes each at
    the peak, so about 12 GiB at the budget), so larger counts are refused with their size instead
    of failing for memory. Raise it for a session
    with ``bayespref.config.MAX_JUDGEMENTS = ...`` on a machine with the memory.

JAX set-up
----------
:func:`setup_jax` asks XLA for ``host_devices`` virtual CPU devices (so that 4 NUTS chains run in
parallel on a CPU host; the benchmarks in ``benchmarks/RESULTS.md`` ran with 4) and turns on
JAX's on-disk compilation cache. Importing bayespref does not call it: :func:`bayespref.fit` (and
every other entry point that starts inference) calls it once, before it makes its first JAX array,
unless you called it yourself first. Its defaults come from the environment:
``BAYESPREF_HOST_DEVICES`` (default 4), ``BAYESPREF_CACHE_DIR`` (default
``~/.cache/bayespref/jax``) and ``BAYESPREF_NO_JAX_CACHE=1`` (no on-disk cache). Your own
``XLA_FLAGS`` device count and a cache directory you set in ``jax.config`` always win. The device
count only takes effect when JAX has not yet started its backends (a library cannot change it
afterwards); with one CPU device, chains run one after another.

Several processes (hosts)
-------------------------
:func:`setup_distributed` joins JAX's own distributed runtime (``jax.distributed.initialize``), so
that ``fit(..., devices=N)`` splits one model over the devices of every process
(``docs/scaling.md``). :func:`setup_jax` calls it when ``BAYESPREF_COORDINATOR`` (``host:port`` of
process 0), ``BAYESPREF_NUM_PROCESSES`` and ``BAYESPREF_PROCESS_ID`` are set, or with
``BAYESPREF_DISTRIBUTED=auto`` (JAX reads SLURM's or another cluster's variables itself). Every
process runs the same script; each returns the same :class:`~bayespref.Fit`, and process 0
(``jax.process_index() == 0``) is the one that should write files.
"""

from __future__ import annotations

import numbers
import os
import pathlib

from bayespref.errors import BayesprefError, ModelError

CI_PROB = 0.9
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
AUTO_CHECK_USERS = 500
MAX_JUDGEMENTS = 50_000_000
#: peak memory per judgement of Comparisons.from_counts (measured with tracemalloc on 2 million
#: judgements: about 260 bytes, 140 of them kept by the result); used in the budget's message
BYTES_PER_JUDGEMENT = 260

_DONE = False


def min_ess(chains: int, per_chain: float | None = None) -> int:
    """The smallest acceptable effective sample size (bulk or tail) of a NUTS run of ``chains``
    chains: ``per_chain`` (default :data:`ESS_PER_CHAIN`, 100) per chain, so 400 for 4 chains."""
    per_chain = ESS_PER_CHAIN if per_chain is None else per_chain
    return int(round(per_chain * max(int(chains), 1)))


def ci_prob(value=None) -> float:
    """``value`` checked (a probability strictly between 0 and 1), or :data:`CI_PROB` when None."""
    value = CI_PROB if value is None else value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ModelError(f"ci_prob={value!r} must be a probability strictly between 0 and 1 (e.g. 0.9).")
    return float(value)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise BayesprefError(f"{name}={raw!r} must be a whole number (unset it for the default {default}).") from None


def setup_jax(host_devices: int | None = None, cache_dir=None, cache: bool | None = None) -> None:
    """Configure JAX for bayespref: virtual CPU devices for parallel chains and the compilation cache.

    Parameters
    ----------
    host_devices : int, optional
        Virtual CPU devices to request (default ``BAYESPREF_HOST_DEVICES`` or 4). Ignored when
        ``XLA_FLAGS`` already sets ``xla_force_host_platform_device_count``.
    cache_dir : path, optional
        On-disk compilation cache (default ``BAYESPREF_CACHE_DIR`` or ``~/.cache/bayespref/jax``).
        Ignored when ``jax.config.jax_compilation_cache_dir`` is already set.
    cache : bool, optional
        False: no on-disk cache (default: on unless ``BAYESPREF_NO_JAX_CACHE`` is set; off in a run
        of several processes, :func:`setup_distributed`).
    """
    global _DONE
    _DONE = True
    n = _int_env("BAYESPREF_HOST_DEVICES", 4) if host_devices is None else host_devices
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BayesprefError(f"host_devices={n!r} must be a whole number >= 1.")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (flags + f" --xla_force_host_platform_device_count={n}").strip()
    import jax  # JAX start-up cost: importing bayespref stays JAX-free until inference starts

    if not jax.distributed.is_initialized():
        setup_distributed()
    use_cache = not os.environ.get("BAYESPREF_NO_JAX_CACHE") if cache is None else bool(cache)
    # not in a run of several processes, as a precaution: with the SVI program the same in every
    # process (inference.elbo), the two-process SVI test still hung in 1 of 12 runs without the cache
    # and in 1 of 2 runs that shared a cache directory (the second, on the used directory);
    # docs/scaling.md
    use_cache = use_cache and not jax.distributed.is_initialized()
    if use_cache and jax.config.jax_compilation_cache_dir is None:
        path = pathlib.Path(cache_dir or os.environ.get("BAYESPREF_CACHE_DIR",
                                                         pathlib.Path.home() / ".cache" / "bayespref" / "jax"))
        try:
            path.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(path))
            # every program, however quick to compile: NumPyro compiles SVI's start (svi.init) one
            # small operation at a time, hundreds of ~30 ms programs; kept on disk, a new process's
            # first SVI fit of the Arena medium model took 8.3 s instead of 19.1 s (0.5 s threshold),
            # for 3 MB of cache (benchmarks/RESULTS.md)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        except OSError:  # read-only home: run without the on-disk cache
            pass


def setup_distributed(coordinator: str | None = None, num_processes: int | None = None,
                      process_id: int | None = None) -> bool:
    """Join a multi-process JAX run (``jax.distributed.initialize``) before JAX starts its backends.

    Parameters
    ----------
    coordinator : str, optional
        ``host:port`` of process 0 (default ``BAYESPREF_COORDINATOR``).
    num_processes, process_id : int, optional
        Number of processes and this one's index from 0 (default ``BAYESPREF_NUM_PROCESSES`` and
        ``BAYESPREF_PROCESS_ID``).

    With none of them given or set and ``BAYESPREF_DISTRIBUTED=auto``, JAX finds them itself
    (SLURM, Open MPI, Kubernetes). On CPUs, processes exchange data with gloo. Returns True when this
    process joined a run of several processes, False when nothing was asked.
    """
    coordinator = coordinator or os.environ.get("BAYESPREF_COORDINATOR")
    if num_processes is None and "BAYESPREF_NUM_PROCESSES" in os.environ:
        num_processes = _int_env("BAYESPREF_NUM_PROCESSES", 1)
    if process_id is None and "BAYESPREF_PROCESS_ID" in os.environ:
        process_id = _int_env("BAYESPREF_PROCESS_ID", 0)
    auto = os.environ.get("BAYESPREF_DISTRIBUTED", "").lower() == "auto"
    if coordinator is None and not auto:
        return False
    if coordinator is not None and (num_processes is None or process_id is None):
        raise BayesprefError("BAYESPREF_COORDINATOR is set: set BAYESPREF_NUM_PROCESSES (how many processes) and "
                             "BAYESPREF_PROCESS_ID (this one's index from 0) too, or use BAYESPREF_DISTRIBUTED=auto "
                             "under SLURM.")
    import jax  # the distributed runtime must start before JAX's backends

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator is None:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    return True


def ensure_jax() -> None:
    """Call :func:`setup_jax` with its defaults once, unless it was called already."""
    if not _DONE:
        setup_jax()


def devices_for_chains(num_chains: int) -> tuple[str, int]:
    """Choose NumPyro's ``chain_method`` for ``num_chains`` chains on the devices JAX sees.

    Returns the method and the number of devices available. ``"parallel"`` when there is one device
    per chain (CPU virtual devices or several GPUs), ``"vectorized"`` on a single accelerator, and
    ``"sequential"`` on a CPU whose device count JAX fixed before bayespref set it up.
    """
    ensure_jax()
    import jax

    devices = jax.local_devices()
    n = len(devices)
    if num_chains <= 1:
        return "sequential", n
    if n >= num_chains:
        return "parallel", n
    if devices[0].platform != "cpu":
        return "vectorized", n
    return "sequential", n
