r"""One-call convergence report for a fit: NUTS diagnostics or the SVI loss trace.

NUTS (ArviZ computes every number):

* split R-hat (rank-normalised) per parameter, flagged above ``rhat_max`` (1.01);
* bulk and tail effective sample sizes, flagged below ``ess_per_chain`` (100) x chains;
* divergent transitions (any is a problem: the posterior geometry was not explored);
* tree-depth saturation: the share of iterations that hit ``max_tree_depth`` (flagged above 1%);
* E-BFMI per chain, :math:`\sum_t (E_t - E_{t-1})^2 / \sum_t (E_t - \bar E)^2`, flagged below 0.3.

SVI: the loss trace is split into windows; the fit is judged converged when the mean loss of the
last window is within ``tol`` (relative) or within two standard errors of the window before it (the
same rule as the stopping rule of :func:`bayespref.fit`), and the report says how much the loss still
fell over the last 10% of the steps.
"""

from __future__ import annotations

import dataclasses
import html

import arviz as az
import numpy as np
import pandas as pd

from bayespref.config import ESS_PER_CHAIN, RHAT_MAX
from bayespref.errors import FitError

BFMI_MIN = 0.3
TREE_DEPTH_SHARE = 0.01


@dataclasses.dataclass
class ConvergenceReport:
    """The result of :func:`convergence`.

    Attributes
    ----------
    method : str
        ``"nuts"``, ``"svi"`` or ``"laplace"`` (the optimiser's verdict and counts).
    ok : bool
        True when no problem was found.
    problems : list of str
        What is wrong, each with what to do.
    table : pandas.DataFrame
        NUTS: one row per scalar parameter (``r_hat``, ``ess_bulk``, ``ess_tail``, ``flag``).
        SVI: the loss per window.
    stats : dict
        Headline numbers (max R-hat, min ESS, divergences, tree-depth share, E-BFMI per chain;
        or the SVI verdict numbers).
    """

    method: str
    ok: bool
    problems: list
    table: pd.DataFrame
    stats: dict

    def __str__(self):
        lines = [f"Convergence report ({self.method.upper()}): " + ("OK" if self.ok else
                                                                   f"{len(self.problems)} problem(s)")]
        for k, v in self.stats.items():
            lines.append(f"  {k:<34} {_fmt(v)}")
        for p in self.problems:
            lines.append(f"  ! {p}")
        if self.method == "nuts":
            worst = self.table.sort_values("r_hat", ascending=False).head(5)
            lines.append("  worst parameters by R-hat:")
            lines += ["    " + ln for ln in worst.round(3).to_string().splitlines()]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        colour = "#2e7d32" if self.ok else "#c62828"
        head = (f"<p><b>Convergence report ({self.method.upper()}):</b> "
                f"<span style='color:{colour}'>{'OK' if self.ok else f'{len(self.problems)} problem(s)'}</span></p>")
        stats = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
                        for k, v in self.stats.items())
        probs = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        table = self.table
        if self.method == "nuts":
            table = table.sort_values("r_hat", ascending=False).head(10)
        return (head + f"<table>{stats}</table>" + (f"<ul style='color:{colour}'>{probs}</ul>" if probs else "")
                + table.round(3).to_html())


def _fmt(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def convergence(fit, var_names=None, rhat_max: float = RHAT_MAX, ess_per_chain: int = ESS_PER_CHAIN,
                bfmi_min: float = BFMI_MIN, tree_depth_share: float = TREE_DEPTH_SHARE,
                tol: float = 1e-4) -> ConvergenceReport:
    """Convergence report of a fit (NUTS or SVI); see the module docstring for the rules.

    Parameters
    ----------
    fit : Fit
    var_names : list of str, optional
        Parameters checked (NUTS). Default: the model's main parameters plus user-level effects.
    rhat_max, ess_per_chain, bfmi_min, tree_depth_share : float
        Thresholds (NUTS).
    tol : float
        Relative loss tolerance of the SVI verdict.

    Examples
    --------
    >>> report = bp.checks.convergence(fit)   # doctest: +SKIP
    >>> print(report)                          # doctest: +SKIP
    """
    if not all(hasattr(fit, a) for a in ("idata", "info", "model")):
        raise FitError(f"Expected a bayespref Fit (from bayespref.fit), got {type(fit).__name__}.")
    if fit.info.get("method") == "svi" or "svi" in fit.idata.children:
        return _svi(fit, tol)
    if fit.info.get("method") == "laplace":
        return _laplace(fit)
    return _nuts(fit, var_names, rhat_max, ess_per_chain, bfmi_min, tree_depth_share)


def _nuts(fit, var_names, rhat_max, ess_per_chain, bfmi_min, tree_share):
    post = fit.idata.posterior.dataset
    if var_names is None:
        var_names = [v for v in fit.model.summary_vars(fit.sizes) if v in post]
        var_names += [v for v in fit.model.user_effect_sites(fit.sizes).values() if v in post]
        if not var_names:
            var_names = [v for v in post.data_vars if set(post[v].dims) >= {"chain", "draw"}]
    missing = [v for v in var_names if v not in post]
    if missing:
        raise FitError(f"var_names {missing} are not in the posterior; it has {sorted(post.data_vars)}.")
    ds = post[var_names]
    diag = xr_table(az.rhat(ds), az.ess(ds, method="bulk"), az.ess(ds, method="tail"))
    chains = int(post.sizes["chain"])
    ss = fit.idata.sample_stats.dataset if "sample_stats" in fit.idata.children else None
    stats = {"chains x draws": f"{chains} x {int(post.sizes['draw'])}",
             "max R-hat": float(diag["r_hat"].max()),
             "min bulk ESS": float(diag["ess_bulk"].min()),
             "min tail ESS": float(diag["ess_tail"].min())}
    problems = []
    diag["flag"] = ""
    bad_r = diag["r_hat"] > rhat_max
    low_e = (diag["ess_bulk"] < ess_per_chain * chains) | (diag["ess_tail"] < ess_per_chain * chains)
    diag.loc[bad_r, "flag"] = "R-hat"
    diag.loc[low_e, "flag"] = diag.loc[low_e, "flag"].where(diag.loc[low_e, "flag"] == "", "R-hat, ") + "ESS"
    if bad_r.any():
        problems.append(f"{int(bad_r.sum())} parameter(s) with R-hat > {rhat_max} (max {stats['max R-hat']:.3f}): "
                        "chains disagree; run longer (warmup=2000, draws=2000) or reparameterise.")
    if low_e.any():
        problems.append(f"{int(low_e.sum())} parameter(s) with bulk or tail ESS < {ess_per_chain * chains}: "
                        "increase draws.")
    if ss is not None:
        if "diverging" in ss:
            n_div = int(ss["diverging"].sum())
            stats["divergences"] = n_div
            if n_div:
                problems.append(f"{n_div} divergent transition(s): raise target_accept (0.95) or use stronger "
                                "priors; the posterior is not explored where they occur.")
        if "reached_max_tree_depth" in ss:
            share = float(ss["reached_max_tree_depth"].mean())
            stats["tree depth saturated"] = share
            stats["max tree depth seen"] = int(ss["tree_depth"].max()) if "tree_depth" in ss else None
            if share > tree_share:
                problems.append(f"{share:.1%} of iterations hit the maximum tree depth: raise max_tree_depth or "
                                "reparameterise (the sampler takes very long trajectories).")
        if "energy" in ss:
            bfmi = np.atleast_1d(np.asarray(az.bfmi(fit.idata).dataset["energy"].values, float))
            stats["E-BFMI per chain"] = bfmi.round(3).tolist()
            if np.any(bfmi < bfmi_min):
                problems.append(f"E-BFMI below {bfmi_min} in chain(s) {list(np.where(bfmi < bfmi_min)[0])}: the "
                                "momentum resampling explores the energy poorly (heavy tails or funnels); "
                                "reparameterise or use stronger priors.")
    return ConvergenceReport("nuts", not problems, problems, diag, stats)


def quick_problems(d: dict, chains: int, rhat_max: float = RHAT_MAX, ess_per_chain: int = ESS_PER_CHAIN) -> list:
    """The rules of the automatic check after a NUTS fit, on :meth:`Fit.diagnostics`' numbers.

    The same R-hat, bulk ESS and divergence thresholds as :func:`convergence` (which adds tail ESS,
    tree depth and E-BFMI and names the parameters).
    """
    problems = []
    if d["max_rhat"] > rhat_max:
        problems.append(f"max R-hat {d['max_rhat']:.3f} > {rhat_max}")
    if d["min_ess_bulk"] < ess_per_chain * chains:
        problems.append(f"min bulk ESS {d['min_ess_bulk']:.0f} < {ess_per_chain * chains}")
    if d["divergences"]:
        problems.append(f"{d['divergences']} divergent transitions")
    return problems


def xr_table(rhat, bulk, tail) -> pd.DataFrame:
    """A (parameter, r_hat, ess_bulk, ess_tail) table from ArviZ results, one row per scalar."""
    rows = []
    for name, da in _ds(rhat).data_vars.items():
        b, t = _ds(bulk)[name], _ds(tail)[name]
        flat_r = da.values.reshape(-1)
        labels = _labels(name, da)
        for k in range(flat_r.size):
            rows.append((labels[k], float(flat_r[k]), float(b.values.reshape(-1)[k]),
                         float(t.values.reshape(-1)[k])))
    return pd.DataFrame(rows, columns=["parameter", "r_hat", "ess_bulk", "ess_tail"]).set_index("parameter")


def _ds(tree):
    return tree.dataset if hasattr(tree, "dataset") else tree


def _labels(name, da):
    if not da.dims:
        return [name]
    idx = pd.MultiIndex.from_product([da[d].values for d in da.dims]) if len(da.dims) > 1 else da[da.dims[0]].values
    return [f"{name}[{', '.join(map(str, k)) if isinstance(k, tuple) else k}]" for k in idx]


def _laplace(fit):
    info = fit.info
    keys = ("laplace_converged", "laplace_message", "laplace_max_gradient", "laplace_evaluations",
            "newton_iterations", "laplace_importance", "laplace_covariance")
    stats = {k: info.get(k) for k in keys}
    problems = []
    if not info.get("laplace_converged", False):
        problems.append(f"L-BFGS stopped without converging ({info.get('laplace_message')}): raise "
                        "max_iter=... or compare with method='nuts' on a subset of users.")
    table = pd.DataFrame({"value": [str(v) for v in stats.values()]}, index=list(stats))
    return ConvergenceReport("laplace", not problems, problems, table, stats)


def _svi(fit, tol):
    loss = np.asarray(fit.idata["svi"]["loss"].values, float)
    n = loss.size
    n_win = 20 if n >= 200 else max(2, n // 10)
    wins = np.array_split(loss, n_win)
    means = np.array([w.mean() for w in wins])
    table = pd.DataFrame({"first_step": np.cumsum([0] + [len(w) for w in wins[:-1]]), "mean_loss": means,
                          "sd_loss": [w.std() for w in wins]}).set_index("first_step")
    prev, last = wins[-2], wins[-1]
    drop = float(prev.mean() - last.mean())
    se = float(np.sqrt((prev.var() + last.var()) / max(len(last) / 10, 1)))
    scale = max(abs(float(last.mean())), 1.0)
    tail = loss[-max(2, n // 10):]
    slope_drop = float(tail[: len(tail) // 2].mean() - tail[len(tail) // 2:].mean())
    flat = drop <= max(tol * scale, 2 * se)
    stats = {"steps": n, "final loss (mean of last window)": float(last.mean()),
             "drop over the last window": drop, "noise (2 SE)": 2 * se,
             "drop over the last 10% of steps": slope_drop,
             "stopping rule met": bool(fit.idata["svi"].attrs.get("converged", fit.info.get("converged", False)))}
    problems = []
    if not flat:
        problems.append(f"The loss still falls ({drop:.4g} between the last two windows, above the noise "
                        f"{2 * se:.3g}): run more steps (steps=...) or raise lr.")
    if not stats["stopping rule met"]:
        problems.append("The SVI stopping rule was not met within the step budget.")
    return ConvergenceReport("svi", not problems, problems, table, stats)
