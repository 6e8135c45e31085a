r"""Model comparison across families and K: ``compare(fits, by="loo" | "users" | "prompts")``.

Every fit is scored on the same units (the same folds for K-fold), so the pointwise elpds can be
differenced unit by unit. For models ``m`` and the best model ``*``,

.. math::

    \Delta_m = \sum_i (e_{*,i} - e_{m,i}), \qquad
    \mathrm{dse}_m = \sqrt{n}\, \mathrm{sd}_i(e_{*,i} - e_{m,i}),

the difference and its paired standard error (the SE of each elpd is dominated by the variation
between units that all models share; the paired SE is the one that says whether the difference is
real). Stacking weights come from ``arviz_stats.compare``.
"""

from __future__ import annotations

import dataclasses
import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayespref.checks import crossval
from bayespref.checks._draws import _require_fit
from bayespref.checks.plots import comparison
from bayespref.errors import DataError

BY = ("loo", "users", "prompts", "comparisons")


@dataclasses.dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model, best first: ``elpd``, ``se``, ``elpd_diff``, ``dse``, ``z``
        (``elpd_diff / dse``), ``weight`` (stacking), ``n_high_k`` (LOO units with Pareto k above
        the threshold after refits), ``n_refits``.
    by, unit : str
        The criterion and the held-out unit (``comparison``, ``user`` or ``prompt``).
    pointwise : xarray.DataArray
        (model, unit) elpds.
    elpds : dict
        ArviZ ELPData per model.
    """

    table: pd.DataFrame
    by: str
    unit: str
    pointwise: xr.DataArray
    elpds: dict = dataclasses.field(repr=False)

    @property
    def best(self) -> str:
        return str(self.table.index[0])

    def plot(self, ax=None):
        """elpd differences to the best model with their paired SEs; returns the Figure."""

        return comparison(self, ax=ax)

    def __repr__(self):
        return (f"<Comparison by {self.by} (unit: {self.unit}); best: {self.best}>\n"
                + self.table.round(2).to_string())


def _outcome(data) -> np.ndarray:
    """What was observed: the outcome codes of comparisons, the items and levels of rankings."""
    if data.obs_dim == "ranking":
        return np.concatenate([np.asarray(data.items), np.asarray(data.level)], axis=1)
    return np.asarray(data.y)


def compare(fits: dict, by: str = "loo", folds: int = 5, seed: int = 0, unit: str | None = None,
            **kwargs) -> Comparison:
    """Compare fitted models by PSIS-LOO, leave-users-out or leave-prompts-out cross-validation.

    Parameters
    ----------
    fits : dict
        ``{name: Fit}``, all fitted to the same data.
    by : {"loo", "users", "prompts", "comparisons"}
        ``"loo"``: PSIS-LOO (:func:`~bayespref.checks.crossval.loo`, exact refits for bad Pareto k),
        per comparison, or per user when any model's likelihood is per user (``LatentTypes``).
        ``"users"`` / ``"prompts"`` / ``"comparisons"``: K-fold with ``folds`` folds of those units
        (:func:`~bayespref.checks.crossval.kfold`), the same folds for every model.
    unit : str, optional
        Force the LOO unit (``"comparison"`` or ``"user"``).
    kwargs
        Passed to ``loo`` or ``kfold`` (e.g. ``max_refits``, NUTS settings of the refits).

    Returns
    -------
    Comparison
        ``.table`` (best first), ``.plot()``.

    Examples
    --------
    >>> cmp = bp.checks.compare({"pooled": f1, "hierarchical": f2}, by="users")   # doctest: +SKIP
    """
    if not isinstance(fits, dict) or len(fits) < 2:
        raise DataError("compare needs a dict of at least two fits: {'name': fit, ...}.")
    for f in fits.values():
        _require_fit(f)
    if by not in BY:
        raise DataError(f"by={by!r}: use one of {BY}.")
    first = next(iter(fits.values())).data
    for name, f in fits.items():
        d = f.data
        if (type(d) is not type(first) or d.n_obs != first.n_obs or list(d.options) != list(first.options)
                or list(d.users) != list(first.users) or not np.array_equal(_outcome(d), _outcome(first))):
            raise DataError(f"compare: fit {name!r} was fitted to different data; compare fits of the same data.")
    if by == "loo":
        if unit is None:
            unit = first.obs_dim if all(crossval._has_comparison_ll(f) for f in fits.values()) else "user"
        elpds = {name: crossval.loo(f, unit=unit, seed=seed, **kwargs) for name, f in fits.items()}
    else:
        unit = crossval.BY[by]
        elpds = {name: crossval.kfold(f, by=by, folds=folds, seed=seed, **kwargs) for name, f in fits.items()}
    names = list(elpds)
    e = np.stack([np.asarray(elpds[m].elpd_i.values, float).reshape(-1) for m in names])
    n = e.shape[1]
    total = e.sum(1)
    best = int(np.argmax(total))
    d = e[best] - e
    dse = np.sqrt(n) * d.std(1, ddof=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = az.compare(elpds, method="stacking", round_to="none")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(dse > 0, d.sum(1) / dse, 0.0)
    table = pd.DataFrame({
        "elpd": total, "se": [float(elpds[m].se) for m in names], "elpd_diff": d.sum(1), "dse": dse, "z": z,
        "weight": [float(cmp.loc[m, "weight"]) for m in names],
        "n_high_k": [_n_high(elpds[m]) for m in names],
        "n_refits": [int(getattr(elpds[m], "n_refits", 0)) for m in names],
    }, index=pd.Index(names, name="model")).sort_values("elpd", ascending=False)
    dim = next(iter(elpds.values())).elpd_i.dims[0]
    pointwise = xr.DataArray(e, dims=("model", unit), coords={"model": names,
                                                               unit: elpds[names[0]].elpd_i[dim].values})
    return Comparison(table=table, by=by, unit=unit, pointwise=pointwise, elpds=elpds)


def _n_high(elpd) -> int:
    k = getattr(elpd, "pareto_k", None)
    if k is None:
        return 0
    thr = getattr(elpd, "k_threshold", 0.7)
    return int(np.sum(np.asarray(k) > thr))
