"""The posterior predictive check object shared by the pairwise and the ranking checks.

:class:`PPCheck` holds a statistic's observed value, its replicated distribution and the mid-p
posterior predictive p-value of :func:`ppp`; :func:`make_check` wraps numpy arrays into one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import xarray as xr

from bayespref import config
from bayespref.checks import plots
from bayespref.intervals import interval_levels

TAILS = ("two-sided", "upper", "lower")


def ppp(observed, predicted, tail: str = "two-sided", sample_dim: str = "sample"):
    """Posterior predictive p-value of ``observed`` against ``predicted`` draws (mid-p).

    ``observed`` may itself carry ``sample_dim`` (a realised discrepancy, computed per draw).
    NaN replicates (a statistic undefined in that replicate) are left out.
    """
    if tail not in TAILS:
        raise ValueError(f"tail={tail!r}: use one of {TAILS}")
    valid = predicted.notnull()
    n = valid.sum(sample_dim)
    gt = ((predicted > observed) & valid).sum(sample_dim) / n
    eq = ((predicted == observed) & valid).sum(sample_dim) / n
    upper = gt + 0.5 * eq
    lower = 1 - upper
    if tail == "upper":
        return upper
    if tail == "lower":
        return lower
    return np.minimum(1.0, 2 * np.minimum(upper, lower))


@dataclasses.dataclass
class PPCheck:
    """A posterior predictive check: statistic, observed value, predictive distribution, p-value.

    Attributes
    ----------
    name : str
        Which check (``"win_rates"``, ``"calibration"``, ...).
    statistic : str
        What is measured, in words.
    observed : xarray.DataArray
        The observed statistic (dims: the check's index, e.g. ``pair`` or ``group``; plus
        ``sample`` for realised discrepancies that depend on the parameters).
    predicted : xarray.DataArray
        The statistic on replicated data, dims ``sample`` (posterior draws) plus the index.
    p_value : xarray.DataArray
        Posterior predictive p-value per index entry (``tail`` says which).
    tail : str
        ``"two-sided"``, ``"upper"`` (small p: observed larger than predicted) or ``"lower"``.
    count : xarray.DataArray or None
        Number of judgements behind each entry.
    extra : dict
        Check-specific results (e.g. ``reliability`` table, ``per_user`` check).
    """

    name: str
    statistic: str
    observed: xr.DataArray
    predicted: xr.DataArray
    p_value: xr.DataArray
    tail: str
    count: xr.DataArray | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def index_dims(self):
        return [d for d in self.predicted.dims if d != "sample"]

    def to_frame(self, ci_prob: float | None = None) -> pd.DataFrame:
        """One row per entry: ``observed``, ``predicted`` (mean), ``sd``, ``lower``/``upper``
        (equal-tailed ``ci_prob`` interval of the predictive distribution), ``p_value``, ``count``."""
        ci_prob = config.ci_prob(ci_prob)
        lo, hi = interval_levels(ci_prob)
        obs = self.observed.mean("sample") if "sample" in self.observed.dims else self.observed
        cols = {
            "observed": obs,
            "predicted": self.predicted.mean("sample"),
            "sd": self.predicted.std("sample", ddof=1),
            "lower": self.predicted.quantile(lo, "sample").drop_vars("quantile"),
            "upper": self.predicted.quantile(hi, "sample").drop_vars("quantile"),
            "p_value": self.p_value,
        }
        if self.count is not None:
            cols["count"] = self.count
        ds = xr.Dataset(cols)
        if not self.index_dims:
            return pd.DataFrame({k: [float(v)] for k, v in ds.data_vars.items()}, index=pd.Index([self.name]))
        return ds.to_dataframe()[list(cols)]

    def flagged(self, alpha: float = 0.05) -> pd.DataFrame:
        """Entries whose p-value is below ``alpha``."""
        t = self.to_frame()
        return t[t["p_value"] < alpha]

    def plot(self, ax=None, top: int = 30, ci_prob: float | None = None):
        """Observed statistic against its predictive distribution; returns the matplotlib Figure.

        A scalar statistic is shown as a histogram of the replicates with the observed value;
        an indexed one as predictive intervals with the observed values (the ``top`` entries with
        the smallest p-values); calibration as a reliability diagram.
        """
        ci_prob = config.ci_prob(ci_prob)

        if self.name == "calibration" and "reliability" in self.extra:
            return plots.reliability(self, ax=ax, ci_prob=ci_prob)
        if not self.index_dims:
            return plots.statistic_histogram(self, ax=ax)
        return plots.intervals(self, ax=ax, top=top, ci_prob=ci_prob)

    def __repr__(self):
        t = self.to_frame()
        head = f"<PPCheck {self.name}: {self.statistic}; p-value {self.tail}>"
        if len(t) > 12:
            small = int((t["p_value"] < 0.05).sum())
            return f"{head}\n{len(t)} entries, {small} with p < 0.05; smallest p-values:\n" + \
                t.nsmallest(8, "p_value").round(3).to_string()
        return f"{head}\n{t.round(3).to_string()}"


def make_check(name, statistic, obs, rep, tail, index=None, count=None, extra=None, realised=False):
    """Wrap numpy arrays into a PPCheck: rep (S, *index), obs (*index) or (S, *index) if realised."""
    dims = [] if index is None else list(index)
    coords = {} if index is None else {k: v for k, v in index.items()}
    predicted = xr.DataArray(rep, dims=["sample"] + dims, coords=coords)
    observed = xr.DataArray(obs, dims=(["sample"] if realised else []) + dims, coords=coords)
    p = ppp(observed, predicted, tail)
    cnt = None if count is None else xr.DataArray(count, dims=dims, coords=coords)
    return PPCheck(name, statistic, observed, predicted, p, tail, cnt, extra or {})
