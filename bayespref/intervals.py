r"""One posterior-interval table for every summary the package prints.

For draws :math:`x^{(s)}` over the (chain, draw) samples: ``mean``, ``sd`` (ddof 1), the
equal-tailed ``ci_prob`` interval ``lower``/``upper`` (the :math:`(1-p)/2` and :math:`(1+p)/2`
quantiles) and, when asked, :math:`P(x > 0) \approx \frac1S \sum_s 1[x^{(s)} > 0]`.
``ci_prob`` defaults to :data:`bayespref.config.CI_PROB` (0.9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayespref import config
from bayespref.errors import DataError

SAMPLE = ("chain", "draw")
COLUMNS = ("mean", "sd", "lower", "upper")


def interval_levels(ci_prob: float | None = None) -> tuple[float, float]:
    """The quantile levels ``((1 - p) / 2, (1 + p) / 2)`` of the equal-tailed ``ci_prob`` interval."""
    p = config.ci_prob(ci_prob)
    return (1 - p) / 2, (1 + p) / 2


def interval_bounds(draws, ci_prob: float | None = None, axis=-1):
    """The equal-tailed ``ci_prob`` interval of numpy draws along ``axis``: ``(lower, upper)``."""
    lo, hi = np.quantile(np.asarray(draws, dtype=float), interval_levels(ci_prob), axis=axis)
    return lo, hi


def summary(obj, ci_prob: float | None = None, p_positive: bool = False) -> pd.DataFrame:
    """Tidy posterior summary of draws: one row per combination of the non-sample dims.

    Parameters
    ----------
    obj : xarray.DataArray or Dataset
        Draws with dims (chain, draw, ...). A Dataset gives one table with a ``variable`` index
        level; its ``option``/``feature`` dims are renamed ``term`` so they stack.
    ci_prob : float, optional
        Default: ``obj.attrs["ci_prob"]``, else :data:`bayespref.config.CI_PROB`.
    p_positive : bool
        Add the column ``p_positive``.

    Returns
    -------
    pandas.DataFrame indexed by the remaining dims (e.g. ``group``, ``option``); columns ``mean``,
    ``sd``, ``lower``, ``upper`` (and ``p_positive``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.random.default_rng(0).normal(1, 1, (2, 500, 2)), dims=("chain", "draw", "group"),
    ...                   coords={"group": ["A", "B"]})
    >>> t = summary(da, 0.9, p_positive=True)
    >>> list(t.columns), list(t.index)
    (['mean', 'sd', 'lower', 'upper', 'p_positive'], ['A', 'B'])
    """
    if ci_prob is None:
        ci_prob = getattr(obj, "attrs", {}).get("ci_prob")
    ci_prob = config.ci_prob(ci_prob)
    if isinstance(obj, xr.Dataset):
        tables = []
        for name, da in obj.data_vars.items():
            if not set(SAMPLE) <= set(da.dims):
                continue
            t = summary(da, ci_prob, p_positive).reset_index()
            t = t.rename(columns={"option": "term", "feature": "term"})
            t.insert(0, "variable", name)
            tables.append(t)
        if not tables:
            raise DataError("summary(): the Dataset has no variables with (chain, draw) draws.")
        t = pd.concat(tables, ignore_index=True)
        keys = [c for c in t.columns if c not in (*COLUMNS, "p_positive")]
        return t.set_index(keys)
    if not isinstance(obj, xr.DataArray) or not set(SAMPLE) <= set(obj.dims):
        raise DataError("summary() needs posterior draws with dims chain and draw (first), e.g. from "
                        f"group_effects(); got {type(obj).__name__}"
                        + (f" with dims {obj.dims}" if hasattr(obj, "dims") else "") + ".")
    other = [d for d in obj.dims if d not in SAMPLE]
    x = np.asarray(obj.transpose(*SAMPLE, *other).values, dtype=float)
    x = x.reshape(x.shape[0] * x.shape[1], -1)
    lo, hi = interval_bounds(x, ci_prob, axis=0)
    cols = {"mean": x.mean(0), "sd": x.std(0, ddof=1), "lower": lo, "upper": hi}
    if p_positive:
        cols["p_positive"] = (x > 0).mean(0)
    if len(other) == 1:
        index = pd.Index(obj[other[0]].values, name=other[0])
    elif other:
        index = pd.MultiIndex.from_product([obj[d].values for d in other], names=other)
    else:
        index = pd.Index([obj.name if obj.name is not None else "value"])
    return pd.DataFrame(cols, index=index)


def interval_table(da: xr.DataArray, dim: str, ci_prob: float | None = None) -> pd.DataFrame:
    """:func:`summary` of draws with one non-sample dim ``dim`` (its labels the index)."""
    rest = [d for d in da.dims if d not in SAMPLE]
    if rest != [dim]:
        raise DataError(f"interval_table: expected draws (chain, draw, {dim}), got dims {da.dims}.")
    return summary(da, ci_prob)
