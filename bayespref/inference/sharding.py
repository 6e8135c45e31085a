"""One model's log density split over several devices (``fit(..., devices=N)``).

The comparisons are laid out by the family (:meth:`bayespref.models.base.ModelSpec.shard_arrays`,
families with ``shardable``): a padded array whose leading axis (users for
:class:`~bayespref.Hierarchical`'s grouped layout, comparisons ordered by user for
:class:`~bayespref.BradleyTerry`) is split over a one-axis device mesh (``jax.sharding.Mesh`` with
the axis ``"data"``, ``NamedSharding(mesh, PartitionSpec("data"))``), so a user's comparisons stay on
one device; every other array (the per-comparison arrays used for the pointwise log-likelihood, the
user covariates) is replicated. The sampler's program is then compiled once for the mesh: XLA's SPMD
partitioner runs the likelihood on each device's block and sums the blocks with one all-reduce per
log-density evaluation (a scalar and, in the gradient, the global parameters' partial sums), while
the small global parameters stay replicated. No ``shard_map``: the partitioner's split of a sum over
a sharded axis is already the data-parallel one.

Across hosts (``jax.distributed``, :func:`bayespref.config.setup_distributed`) the mesh spans every
process's devices (``jax.devices()``) and each process places only its own blocks
(``jax.make_array_from_callback``).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bayespref.errors import ModelError

#: name of the mesh axis the data are split over
AXIS = "data"


def wanted(devices) -> bool:
    """Whether the setting ``devices`` asks for a sharded fit (more than one device)."""
    return devices is not None and int(devices) > 1


def make_mesh(devices: int) -> Mesh:
    """A one-axis mesh (``"data"``) over the first ``devices`` of ``jax.devices()`` (all processes).

    Raises a :class:`ModelError` when JAX sees fewer devices, naming how to get more.
    """
    avail = jax.devices()
    if devices > len(avail):
        raise ModelError(
            f"devices={devices}, but JAX sees {len(avail)} {avail[0].platform.upper()} device(s) "
            f"({jax.process_count()} process(es)). On a CPU, set BAYESPREF_HOST_DEVICES={devices} (or "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={devices}) before JAX starts; across hosts, "
            "start every process with bayespref.config.setup_distributed (docs/scaling.md); or ask for "
            f"devices<={len(avail)}.")
    return Mesh(np.asarray(avail[:devices]), (AXIS,))


def place(x, sharding):
    """``x`` (on the host) as a global array laid out by ``sharding``; each process places only its
    own blocks."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def shard(spec, data, arrays: dict, devices: int) -> dict:
    """The model arrays for ``spec``'s log density split over ``devices`` devices.

    ``spec.shard_arrays`` gives the layout and the keys to split; those arrays are split along
    their leading axis, everything else is replicated on the mesh.
    """
    laid, split = spec.shard_arrays(data, arrays, int(devices))  # the family first: can it be split at all?
    mesh = make_mesh(int(devices))
    rows, whole = NamedSharding(mesh, PartitionSpec(AXIS)), NamedSharding(mesh, PartitionSpec())
    out = {}
    for key, value in laid.items():
        sharding = rows if key in split else whole
        out[key] = jax.tree.map(lambda x, s=sharding: place(x, s), value)
    return out


def gather(tree):
    """Every array of ``tree`` as a numpy array on this host (gathered from all processes when an
    array is split across hosts)."""
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)
    return jax.tree.map(one, tree)


__all__ = ["AXIS", "gather", "make_mesh", "place", "shard", "wanted"]
