"""Result of grid mode: summaries, tipping point, robustness value, E-value and benchmarks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from bayespref.analyses.sensitivity.plots import plot_contour, plot_intervals
from bayespref.intervals import interval_bounds


def _plain(obj):
    """Nested dicts/lists with numpy scalars turned into Python numbers (JSON-ready)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _evalue_from_or(odds_ratio: float) -> float:
    """E-value of an odds ratio of a common outcome: RR = sqrt(OR), E = RR + sqrt(RR (RR - 1))."""
    rr = math.sqrt(max(odds_ratio, 1 / odds_ratio))
    return rr + math.sqrt(rr * (rr - 1))


class GridSensitivity:
    """The estimand over a grid of (γ, δ), with tipping point, robustness value, benchmarks and plots.

    Attributes
    ----------
    estimand : Estimand
    gamma, delta : numpy arrays, the grid
    draws : xarray.DataArray (gamma, delta, sample)
        Posterior draws of the estimand at every grid point.
    reference : numpy array
        Draws under the fitted model (γ = 0, no confounding).
    """

    def __init__(self, prob, est, gamma, delta, draws, ref, ci_prob, method, info, bench):
        self._prob = prob
        self.estimand = est
        self.gamma, self.delta = np.asarray(gamma), np.asarray(delta)
        self.draws = xr.DataArray(draws, dims=("gamma", "delta", "sample"),
                                  coords={"gamma": self.gamma, "delta": self.delta}, name="estimand")
        self.reference = np.asarray(ref)
        self.ci_prob = ci_prob
        self.method = method
        self.info = info
        self._bench = bench
        self.exposure = prob.exposure_name
        self.prevalence = prob.prevalence

    # -- tables --------------------------------------------------------------------------------------
    @property
    def summary(self) -> xr.Dataset:
        """Dataset (gamma, delta) with ``mean``, ``sd``, ``lower``, ``upper`` of the estimand."""
        d = self.draws.values
        lo, hi = interval_bounds(d, self.ci_prob)
        dims = ("gamma", "delta")
        return xr.Dataset({"mean": (dims, d.mean(-1)), "sd": (dims, d.std(-1, ddof=1)),
                           "lower": (dims, lo), "upper": (dims, hi)},
                          coords={"gamma": self.gamma, "delta": self.delta},
                          attrs={"estimand": self.estimand.label, "null": self.estimand.null,
                                 "ci_prob": self.ci_prob, "method": self.method, "exposure": self.exposure})

    def table(self) -> pd.DataFrame:
        """Tidy table: one row per grid point, with whether the interval includes the null."""
        t = self.summary.to_dataframe().reset_index()
        null = self.estimand.null
        t["includes_null"] = (t["lower"] <= null) & (t["upper"] >= null)
        return t

    def naive(self) -> dict:
        """The estimand under the fitted model (no confounding): mean, sd and interval."""
        lo, hi = interval_bounds(self.reference, self.ci_prob)
        return {"mean": float(self.reference.mean()), "sd": float(self.reference.std(ddof=1)),
                "lower": float(lo), "upper": float(hi)}

    # -- tipping -------------------------------------------------------------------------------------
    def _sign(self) -> float:
        return 1.0 if self.reference.mean() >= self.estimand.null else -1.0

    def _near_bound(self) -> xr.DataArray:
        s = self.summary
        return s["lower"] if self._sign() > 0 else s["upper"]

    def tipping_curve(self, what: str = "interval") -> xr.DataArray:
        """For each δ, the weakest γ (smallest |γ|, interpolated) that moves the interval's bound
        nearer the null onto the null (``what="interval"``) or the mean across it (``"mean"``);
        NaN where the grid holds none."""
        field = self._near_bound() if what == "interval" else self.summary["mean"]
        null, sign = self.estimand.null, self._sign()
        order = np.argsort(np.abs(self.gamma))
        g = self.gamma[order]
        out = np.full(len(self.delta), np.nan)
        for j in range(len(self.delta)):
            v = sign * (field.values[order, j] - null)
            hit = np.nonzero(v <= 0)[0]
            if not hit.size:
                continue
            k = hit[0]
            if k == 0:
                out[j] = g[0]
            else:
                out[j] = g[k - 1] + (g[k] - g[k - 1]) * v[k - 1] / (v[k - 1] - v[k])
        return xr.DataArray(out, dims="delta", coords={"delta": self.delta}, name=f"tipping_gamma_{what}")

    def tipping_point(self, what: str = "interval") -> dict:
        r"""The weakest confounding, equally strong with exposure and preference, that tips the result.

        Along the diagonal :math:`|\gamma| = |\delta| = t` (both log odds ratios) in the grid's
        direction, the smallest t at which the interval reaches the null (``what="interval"``) or
        the mean crosses it (``"mean"``), by linear interpolation on the grid. Returns ``t``, the
        odds ratio ``exp(t)`` and the points; ``t`` is inf when the grid holds no such point (widen
        it).
        """
        field = self._near_bound() if what == "interval" else self.summary["mean"]
        sg = np.sign(self.gamma[np.argmax(np.abs(self.gamma))]) or 1.0
        sd = np.sign(self.delta[np.argmax(np.abs(self.delta))]) or 1.0
        tmax = min(np.abs(self.gamma).max(), np.abs(self.delta).max())
        ts = np.linspace(0, tmax, 401)
        f = field.sortby("gamma").sortby("delta")
        vals = f.interp(gamma=xr.DataArray(sg * ts, dims="t"), delta=xr.DataArray(sd * ts, dims="t")).values
        v = self._sign() * (vals - self.estimand.null)
        hit = np.nonzero(np.isfinite(v) & (v <= 0))[0]
        if not hit.size:
            return {"t": math.inf, "odds_ratio": math.inf, "gamma": math.nan, "delta": math.nan}
        k = hit[0]
        t = ts[0] if k == 0 else ts[k - 1] + (ts[k] - ts[k - 1]) * v[k - 1] / (v[k - 1] - v[k])
        return {"t": float(t), "odds_ratio": float(math.exp(t)), "gamma": float(sg * t), "delta": float(sd * t)}

    # -- robustness value and E-value ----------------------------------------------------------------
    def robustness_value(self, q: float = 1.0, alpha: float | None = None) -> dict:
        r"""Cinelli-Hazlett robustness value, read on the latent-utility scale.

        The posterior mean over SD of the estimand (on the logit scale; a probability through the
        delta method) plays the role of the t statistic, with ``dof`` the residual degrees of
        freedom of the exposure's level (users minus user-level parameters for user-level exposures,
        comparisons minus features otherwise). With partial Cohen's :math:`f = t/\sqrt{dof}`,

        .. math::

            RV_q = \tfrac12\left(\sqrt{f_q^4 + 4 f_q^2} - f_q^2\right),\quad f_q = q |f|,

        the share of residual variance of both exposure and latent utility that a confounder must
        explain to reduce the estimate by 100q %; :math:`RV_{q,\alpha}` uses
        :math:`f_q - z_{1-\alpha/2}/\sqrt{dof - 1}` (interval reaches the reduced value). This is
        an approximation: the model is a logit, not OLS.
        """
        from scipy.stats import norm

        alpha = 1 - self.ci_prob if alpha is None else alpha
        r = self.reference
        null = self.estimand.null
        m, s = r.mean(), r.std(ddof=1)
        if self.estimand.kind == "preference":
            m_c = min(max(m, 1e-6), 1 - 1e-6)
            t = math.log(m_c / (1 - m_c)) / (s / (m_c * (1 - m_c)))
        else:
            t = (m - null) / s
        prob = self._prob
        user_level = self.estimand.kind == "group_contrast" or (self.estimand.kind == "preference"
                                                                and bool(self.estimand.group))
        dof = (len(prob.active) - len(prob.covariates) - 1) if user_level else (
            prob.data.n_comparisons - len(prob.features) - 1)
        dof = max(dof, 2)
        f = abs(t) / math.sqrt(dof)

        def rv(fq):
            return 0.0 if fq <= 0 else 0.5 * (math.sqrt(fq ** 4 + 4 * fq ** 2) - fq ** 2)
        fa = q * f - norm.ppf(1 - alpha / 2) / math.sqrt(dof - 1)
        return {"t": float(t), "dof": int(dof), "partial_f": float(f), "rv_q": float(rv(q * f)),
                "rv_q_alpha": float(rv(fa)),
                "q": q, "alpha": alpha}

    def evalue(self) -> dict:
        r"""E-value-style summary on the odds scale.

        The fitted estimate as an odds ratio (for a logit-scale effect :math:`OR = e^{|m|}`; for a
        preference probability :math:`OR = m / (1 - m)`), converted to a risk ratio for a common
        outcome (:math:`RR \approx \sqrt{OR}`) and to the E-value
        :math:`E = RR + \sqrt{RR (RR - 1)}` (VanderWeele & Ding 2017): the strength (risk ratio)
        that a confounder needs with both exposure and outcome to explain the estimate away; the
        same for the interval's bound nearer the null (1 when the interval includes it). Also the
        grid's equal-strength tipping point as an odds ratio.
        """
        nv = self.naive()
        null = self.estimand.null

        def to_or(x):
            if self.estimand.kind == "preference":
                x = min(max(x, 1e-9), 1 - 1e-9)
                return x / (1 - x)
            return math.exp(abs(x - null))
        bound = nv["lower"] if self._sign() > 0 else nv["upper"]
        crosses = self._sign() * (bound - null) <= 0
        return {"odds_ratio": to_or(nv["mean"]), "evalue": _evalue_from_or(to_or(nv["mean"])),
                "evalue_bound": 1.0 if crosses else _evalue_from_or(to_or(bound)),
                "tipping_odds_ratio": self.tipping_point()["odds_ratio"]}

    # -- benchmarks ----------------------------------------------------------------------------------
    def benchmarks(self, multiples=(1,)) -> pd.DataFrame:
        """Observed user covariates as yardsticks: the (γ, δ) of a confounder as strong as covariate
        k (times each multiple, with the signs of the grid's direction) and the estimand there
        (interpolated on the grid; NaN outside it). See :func:`_benchmarks` for how (γ_k, δ_k) are
        measured."""
        b = self._bench
        if b.empty:
            return pd.DataFrame(columns=["multiple", "gamma", "delta", "mean", "lower", "upper", "tips"])
        sg = np.sign(self.gamma[np.argmax(np.abs(self.gamma))]) or 1.0
        sd = np.sign(self.delta[np.argmax(np.abs(self.delta))]) or 1.0
        s = self.summary.sortby("gamma").sortby("delta")
        rows = []
        for name, r in b.iterrows():
            for k in multiples:
                g, d = sg * k * abs(r["gamma"]), sd * k * abs(r["delta"])
                at = s.interp(gamma=g, delta=d)
                lo, hi = float(at["lower"]), float(at["upper"])
                null = self.estimand.null
                tips = bool(lo <= null <= hi) if np.isfinite(lo) else None
                rows.append({"covariate": name, "multiple": k, "gamma": g, "delta": d, "mean": float(at["mean"]),
                             "lower": lo, "upper": hi, "tips": tips})
        return pd.DataFrame(rows).set_index("covariate")

    # -- plots ---------------------------------------------------------------------------------------
    def plot_contour(self, ax=None, benchmarks: bool = True, levels: int = 12, title: str | None = None):
        """Contour plot over (δ, γ) with the tipping curves and benchmarks: see
        :func:`bayespref.sensitivity.plots.plot_contour`."""

        return plot_contour(self, ax=ax, benchmarks=benchmarks, levels=levels, title=title)

    def plot_intervals(self, at_gamma=None, at_delta=None, title: str | None = None):
        """Interval against each parameter: see :func:`bayespref.sensitivity.plots.plot_intervals`."""

        return plot_intervals(self, at_gamma=at_gamma, at_delta=at_delta, title=title)

    def report(self) -> dict:
        """Every scalar summary in one JSON-ready dict."""
        return _plain({"estimand": self.estimand.to_dict(), "label": self.estimand.label, "null": self.estimand.null,
                "exposure": self.exposure, "prevalence": self.prevalence, "ci_prob": self.ci_prob,
                "method": self.method, "naive": self.naive(), "tipping_point": self.tipping_point(),
                "tipping_point_mean": self.tipping_point("mean"), "robustness_value": self.robustness_value(),
                "evalue": self.evalue(),
                "info": {k: (v.to_dict(orient="records") if isinstance(v, pd.DataFrame) else v)
                         for k, v in self.info.items() if not isinstance(v, np.ndarray)}})

    def __repr__(self):
        nv = self.naive()
        tp = self.tipping_point()
        return (f"<GridSensitivity of {self.estimand.label}: {len(self.gamma)} x {len(self.delta)} grid ({self.method}); "
                f"fitted {nv['mean']:.3g} [{nv['lower']:.3g}, {nv['upper']:.3g}]; tipping point t = {tp['t']:.3g} "
                f"(OR {tp['odds_ratio']:.3g})>")
