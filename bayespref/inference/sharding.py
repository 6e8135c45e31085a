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

A 2-D mesh (``devices=(G, N)`` for NUTS) adds an axis ``"chains"``: the data are split over
``"data"`` and repeated over ``"chains"``; the chains are vectorised with their axis split over
``"chains"`` (:func:`bayespref.inference.nuts._grouped`), so each row of N devices runs its chains'
log densities and the rows run at the same time, in lock-step.

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
#: name of the mesh axis the chain groups are split over (2-D meshes only)
CHAINS = "chains"


def mesh_shape(devices) -> tuple[int, int]:
    """(chain groups, data shards) asked for by the setting ``devices``: None -> (1, 1), N -> (1, N),
    a pair (G, N) -> (G, N)."""
    if devices is None:
        return 1, 1
    if isinstance(devices, (tuple, list)):
        return int(devices[0]), int(devices[1])
    return 1, int(devices)


def wanted(devices) -> bool:
    """Whether the setting ``devices`` asks for a sharded fit (more than one device)."""
    groups, shards = mesh_shape(devices)
    return groups * shards > 1


def make_mesh(devices) -> Mesh:
    """The mesh asked for by ``devices`` over the first devices of ``jax.devices()`` (all processes):
    one axis ``"data"`` for N, two axes ``("chains", "data")`` shaped (G, N) for a pair.

    Raises a :class:`ModelError` when JAX sees fewer devices, naming how to get more.
    """
    groups, shards = mesh_shape(devices)
    n = groups * shards
    avail = jax.devices()
    if n > len(avail):
        raise ModelError(
            f"devices={devices} needs {n} devices, but JAX sees {len(avail)} {avail[0].platform.upper()} device(s) "
            f"({jax.process_count()} process(es)). On a CPU, set BAYESPREF_HOST_DEVICES={n} (or "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n}) before JAX starts; across hosts, "
            "start every process with bayespref.config.setup_distributed (docs/scaling.md); or ask for "
            f"at most {len(avail)} devices.")
    if isinstance(devices, (tuple, list)):
        return Mesh(np.asarray(avail[:n]).reshape(groups, shards), (CHAINS, AXIS))
    return Mesh(np.asarray(avail[:n]), (AXIS,))


def chain_mesh(tree) -> Mesh | None:
    """The 2-D mesh (with a ``"chains"`` axis) that ``tree``'s arrays are laid out on, or None."""
    for x in jax.tree.leaves(tree):
        s = getattr(x, "sharding", None)
        if isinstance(s, NamedSharding) and CHAINS in s.mesh.axis_names:
            return s.mesh
    return None


def place(x, sharding):
    """``x`` (on the host) as a global array laid out by ``sharding``; each process places only its
    own blocks."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def shard(spec, data, arrays: dict, devices: int) -> dict:
    """The model arrays for ``spec``'s log density split over the data axis of the mesh ``devices``
    asks for (:func:`make_mesh`).

    ``spec.shard_arrays`` gives the layout and the keys to split; those arrays are split along
    their leading axis over ``"data"``, everything else is replicated on the mesh (a 2-D mesh
    repeats the split arrays over ``"chains"``).
    """
    laid, split = spec.shard_arrays(data, arrays, mesh_shape(devices)[1])  # the family first: can it be split?
    mesh = make_mesh(devices)
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


__all__ = ["AXIS", "CHAINS", "chain_mesh", "gather", "make_mesh", "mesh_shape", "place", "shard", "wanted"]
