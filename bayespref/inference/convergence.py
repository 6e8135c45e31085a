r"""One-call convergence report for a fit: NUTS diagnostics or the SVI loss trace.

NUTS (ArviZ computes every number):

* split R-hat (rank-normalised) per parameter, flagged above ``rhat_max`` (1.01);
* bulk and tail effective sample sizes, flagged below ``ess_per_chain`` (100) x chains
  (:func:`bayespref.config.min_ess`: 400 for the default 4 chains);
* divergent transitions (any is a problem: the posterior geometry was not explored), with the
  parameters whose divergent draws lie furthest from the others (where to look: often a
  hierarchical SD near zero);
* tree-depth saturation: the share of iterations that hit ``max_tree_depth`` (flagged above 1%);
* E-BFMI per chain, :math:`\sum_t (E_t - E_{t-1})^2 / \sum_t (E_t - \bar E)^2`, flagged below 0.3.

SVI: the loss trace is split into windows; the fit is judged converged when the mean loss of the
last window is within ``tol`` (relative) or within two standard errors of the window before it (the
same rule as the stopping rule of :func:`bayespref.fit`), and the report says how much the loss still
fell over the last 10% of the steps.

Every NUTS verdict names the parameters concerned (:func:`flag_rows` is the one rule behind the
``flag`` column of :meth:`Fit.summary() <bayespref.Fit.summary>`, of this report's table and of the
warning after a fit) and the remedy the package can apply itself (:func:`remedy`: a refit with more
warm-up and draws, a higher ``target_accept``, a deeper tree, or chains started from an SVI fit).
"""

from __future__ import annotations

import dataclasses
import html
import math

import arviz as az
import numpy as np
import pandas as pd

from bayespref import config
from bayespref.errors import FitError
from bayespref.inference import rank_diagnostics

BFMI_MIN = 0.3
TREE_DEPTH_SHARE = 0.01
#: parameters named in a message before "and N more"
SHOW = 10


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
        What is wrong, each naming the parameters concerned (what to do: ``remedy`` and ``advice``).
    table : pandas.DataFrame
        NUTS: one row per scalar parameter (``r_hat``, ``ess_bulk``, ``ess_tail``, ``flag``).
        SVI: the loss per window.
    stats : dict
        Headline numbers (max R-hat, min ESS, divergences, tree-depth share, E-BFMI per chain;
        or the SVI verdict numbers).
    remedy : dict
        NUTS: the settings of a refit that addresses the problems found (:func:`remedy`), e.g.
        ``{"warmup": 2000, "draws": 2000, "target_accept": 0.95}``: ``bp.fit(model, data, **report.remedy)``.
    advice : str
        NUTS: the remedy in words (:func:`remedy_text`), "" when there is nothing to do.
    """

    method: str
    ok: bool
    problems: list
    table: pd.DataFrame
    stats: dict
    remedy: dict = dataclasses.field(default_factory=dict)
    advice: str = ""

    @property
    def flagged(self) -> pd.DataFrame:
        """NUTS: the rows of :attr:`table` with a flag (empty otherwise)."""
        if "flag" not in self.table:
            return self.table.iloc[:0]
        return self.table[self.table["flag"] != ""]

    def __str__(self):
        lines = [f"Convergence report ({self.method.upper()}): " + ("OK" if self.ok else
                                                                   f"{len(self.problems)} problem(s)")]
        for k, v in self.stats.items():
            lines.append(f"  {k:<34} {_fmt(v)}")
        for p in self.problems:
            lines.append(f"  ! {p}")
        if self.advice:
            lines.append(f"  remedy: {self.advice}")
        if self.method == "nuts":
            flagged = self.flagged
            if len(flagged):
                lines.append(f"  flagged parameters ({len(flagged)}; first {min(len(flagged), SHOW)} by R-hat):")
                shown = flagged.sort_values("r_hat", ascending=False).head(SHOW)
            else:
                lines.append("  worst parameters by R-hat:")
                shown = self.table.sort_values("r_hat", ascending=False).head(5)
            lines += ["    " + ln for ln in shown.round(3).to_string().splitlines()]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        colour = "#2e7d32" if self.ok else "#c62828"
        head = (f"<p><b>Convergence report ({self.method.upper()}):</b> "
                f"<span style='color:{colour}'>{'OK' if self.ok else f'{len(self.problems)} problem(s)'}</span></p>")
        stats = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
                        for k, v in self.stats.items())
        probs = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        if self.advice:
            probs += f"<li>remedy: {html.escape(self.advice)}</li>"
        table = self.table
        if self.method == "nuts":
            table = (self.flagged if len(self.flagged) else table).sort_values("r_hat", ascending=False).head(SHOW)
        return (head + f"<table>{stats}</table>" + (f"<ul style='color:{colour}'>{probs}</ul>" if probs else "")
                + table.round(3).to_html())


def _fmt(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def convergence(fit, var_names=None, rhat_max: float | None = None, ess_per_chain: float | None = None,
                bfmi_min: float = BFMI_MIN, tree_depth_share: float = TREE_DEPTH_SHARE,
                tol: float = 1e-4) -> ConvergenceReport:
    """Convergence report of a fit (NUTS or SVI); see the module docstring for the rules.

    Parameters
    ----------
    fit : Fit
    var_names : list of str, optional
        Parameters checked (NUTS). Default: the model's main parameters plus user-level effects.
    rhat_max, ess_per_chain, bfmi_min, tree_depth_share : float
        Thresholds (NUTS); ``rhat_max`` and ``ess_per_chain`` default to ``bayespref.config.RHAT_MAX``
        and ``ESS_PER_CHAIN``.
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
    rhat_max = config.RHAT_MAX if rhat_max is None else rhat_max
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
    diag = xr_table(*rank_diagnostics.diagnostics(ds))
    chains = int(post.sizes["chain"])
    need = config.min_ess(chains, ess_per_chain)
    ss = fit.idata.sample_stats.dataset if "sample_stats" in fit.idata.children else None
    stats = {"chains x draws": f"{chains} x {int(post.sizes['draw'])}",
             "max R-hat": float(diag["r_hat"].max()),
             "min bulk ESS": float(diag["ess_bulk"].min()),
             "min tail ESS": float(diag["ess_tail"].min())}
    problems = []
    diag["flag"] = flag_rows(diag, chains, rhat_max=rhat_max, ess_per_chain=ess_per_chain)
    bad_r = diag["r_hat"] > rhat_max
    low_e = (diag["ess_bulk"] < need) | (diag["ess_tail"] < need)
    if bad_r.any():
        problems.append(f"{int(bad_r.sum())} parameter(s) with R-hat > {rhat_max} (max {stats['max R-hat']:.3f}): "
                        f"{name_list(_worst(diag, bad_r, 'r_hat'))}; the chains disagree.")
    if low_e.any():
        problems.append(f"{int(low_e.sum())} parameter(s) with bulk or tail ESS < {need} "
                        f"({need // chains} per chain x {chains} chains): {name_list(_worst(diag, low_e, 'ess'))}.")
    n_div = 0
    tree_hit = False
    if ss is not None:
        if "diverging" in ss:
            n_div = int(ss["diverging"].sum())
            stats["divergences"] = n_div
            if n_div:
                where = divergent_parameters(ds, ss["diverging"])
                problems.append(f"{n_div} divergent transition(s): the posterior is not explored where they occur"
                                + (f"; the divergent draws lie furthest from the others in {_where_text(where)}"
                                   if where else "") + ".")
        if "reached_max_tree_depth" in ss:
            share = float(ss["reached_max_tree_depth"].mean())
            stats["tree depth saturated"] = share
            stats["max tree depth seen"] = int(ss["tree_depth"].max()) if "tree_depth" in ss else None
            if share > tree_share:
                tree_hit = True
                problems.append(f"{share:.1%} of iterations hit the maximum tree depth: the sampler takes very "
                                "long trajectories.")
        if "energy" in ss:
            bfmi = np.atleast_1d(np.asarray(az.bfmi(fit.idata).dataset["energy"].values, float))
            stats["E-BFMI per chain"] = bfmi.round(3).tolist()
            if np.any(bfmi < bfmi_min):
                problems.append(f"E-BFMI below {bfmi_min} in chain(s) {list(np.where(bfmi < bfmi_min)[0])}: the "
                                "momentum resampling explores the energy poorly (heavy tails or funnels); "
                                "reparameterise or use stronger priors.")
    fix = remedy(fit.info, chains=chains, rhat_bad=bool(bad_r.any()), ess_bad=bool(low_e.any()),
                 min_ess_seen=stats["min bulk ESS"] if low_e.any() else None, need=need,
                 divergences=n_div, tree_depth=tree_hit)
    advice = remedy_text(fix, rhat_bad=bool(bad_r.any()), divergences=n_div) if problems else ""
    return ConvergenceReport("nuts", not problems, problems, diag, stats, fix, advice)


# -- the one rule of the flags, names and remedies ---------------------------------------------------------
def flag_rows(table: pd.DataFrame, chains: int, rhat_max: float | None = None,
              ess_per_chain: float | None = None) -> pd.Series:
    """Per row of ``table`` (columns ``r_hat``, ``ess_bulk``, ``ess_tail``, as in ``az.summary``): which
    rules it breaks, e.g. ``"R-hat, bulk ESS"`` (R-hat above ``rhat_max``, bulk or tail ESS below
    :func:`bayespref.config.min_ess`), or ``""``. NaN (a constant parameter) breaks none."""
    rhat_max = config.RHAT_MAX if rhat_max is None else rhat_max
    need = config.min_ess(chains, ess_per_chain)
    parts = [(table["r_hat"] > rhat_max, "R-hat"), (table["ess_bulk"] < need, "bulk ESS")]
    if "ess_tail" in table:
        parts.append((table["ess_tail"] < need, "tail ESS"))
    flags = pd.Series("", index=table.index, dtype=object)
    for mask, label in parts:
        mask = mask.fillna(False).astype(bool)
        flags[mask] = flags[mask].where(flags[mask] == "", flags[mask] + ", ") + label
    return flags


def _worst(table: pd.DataFrame, mask, by: str) -> pd.Index:
    """The parameters of ``table`` at ``mask``, worst first: by R-hat (largest first), or by ESS
    (``"ess"``: the smaller of bulk and tail; ``"ess_bulk"``), smallest first."""
    rows = table[np.asarray(mask, dtype=bool)]
    if by == "r_hat":
        return rows.sort_values("r_hat", ascending=False, kind="stable").index
    key = rows[["ess_bulk", "ess_tail"]].min(axis=1) if by == "ess" else rows[by]
    return rows.index[np.argsort(key.to_numpy(), kind="stable")]


def name_list(names, k: int = SHOW) -> str:
    """``a, b, c and 4 more``: the first ``k`` parameter names."""
    names = [str(n) for n in names]
    more = f" and {len(names) - k} more" if len(names) > k else ""
    return ", ".join(names[:k]) + more


def divergent_parameters(ds, diverging, k: int = 3, min_shift: float = 0.5) -> list[tuple[str, float]]:
    """The ``k`` scalar parameters of ``ds`` (chain, draw, ...) whose divergent draws lie furthest
    from all draws: ``(name, shift)`` with the shift of their mean in posterior SDs (at least
    ``min_shift``), largest first. A pointer to where the sampler struggles (a funnel shows as a
    hierarchical SD whose divergent draws are near zero), not a proof."""
    div = np.asarray(diverging, dtype=bool).reshape(-1)
    if not div.any() or div.all():
        return []
    found = []
    for name, da in ds.data_vars.items():
        if "chain" not in da.dims or "draw" not in da.dims:
            continue
        da = da.transpose("chain", "draw", ...)
        x = np.asarray(da.values, dtype=float).reshape(div.size, -1)
        sd = x.std(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = (x[div].mean(axis=0) - x.mean(axis=0)) / sd
        shift[~np.isfinite(shift)] = 0.0
        labels = _labels(name, da.isel(chain=0, draw=0, drop=True))
        found += [(labels[i], float(shift[i])) for i in np.flatnonzero(np.abs(shift) >= min_shift)]
    found.sort(key=lambda t: -abs(t[1]))
    return found[:k]


def _where_text(where) -> str:
    return ", ".join(f"{n} ({'+' if s > 0 else ''}{s:.1f} SD)" for n, s in where)


def _round_up(x: float, step: int = 500) -> int:
    return int(math.ceil(x / step) * step)


def remedy(info: dict, *, chains: int, rhat_bad: bool = False, ess_bad: bool = False, min_ess_seen=None,
           need: int | None = None, divergences: int = 0, tree_depth: bool = False) -> dict:
    """The NUTS settings of a refit that addresses the problems found, from the run's settings
    (``fit.info``): more warm-up and draws for R-hat or ESS (draws scaled up to reach the ESS needed,
    at most 20-fold, in steps of 500), ``target_accept`` 0.95 (then 0.99) for divergences,
    ``max_tree_depth`` + 2 for a saturated tree. Empty when there is nothing the package can change
    (e.g. divergences at ``target_accept=0.99``: reparameterise or use stronger priors)."""
    out = {}
    if rhat_bad or ess_bad:
        warmup, draws = int(info.get("warmup", 1000)), int(info.get("draws", 1000))
        scale = 2.0
        if ess_bad and min_ess_seen is not None and need:
            seen = min_ess_seen if np.isfinite(min_ess_seen) and min_ess_seen > 0 else 1.0
            scale = min(max(2.0, need / seen), 20.0)
        out["warmup"] = _round_up(max(2 * warmup, 1000))
        out["draws"] = _round_up(max(scale * draws, 1000))
    if divergences:
        accept = float(info.get("target_accept", 0.8))
        if accept < 0.95:
            out["target_accept"] = 0.95
        elif accept < 0.99:
            out["target_accept"] = 0.99
    if tree_depth:
        out["max_tree_depth"] = int(info.get("max_tree_depth", 10)) + 2
    return out


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in settings.items())


def remedy_text(settings: dict, *, rhat_bad: bool = False, divergences: int = 0) -> str:
    """The sentence of the warning and the reports that names the remedy."""
    parts = []
    if settings:
        parts.append(f"refit with {_settings_text(settings)} (bp.fit(model, data, ..., {_settings_text(settings)}), "
                     "or those keys in a run spec's [inference] table)")
    if rhat_bad:
        parts.append("if R-hat stays high, start the chains from a quick SVI fit: "
                     "bp.fit(model, data, init=bp.fit(model, data, method='svi'))")
    if divergences and "target_accept" not in settings:
        parts.append("the divergences persist at target_accept=0.99: reparameterise or use stronger priors")
    return "; ".join(parts)


def quick_check(fit, max_users: int | None = None) -> dict:
    """The automatic check after a NUTS fit: R-hat, bulk ESS and divergences (as :func:`convergence`,
    which adds tail ESS, tree depth and E-BFMI) over the model's main parameters and the effects of at
    most ``max_users`` users (evenly spaced). Returns the numbers (``max_rhat``, ``min_ess_bulk``,
    ``min_ess_tail``, ``divergences``), ``problems`` (each naming its parameters), ``flagged`` (the
    parameters over a threshold), ``remedy`` (:func:`remedy`) and ``message`` (the warning's text, ""
    when there is no problem)."""
    model, post = fit.model, fit.idata.posterior.dataset
    sizes = fit.sizes
    names = [v for v in model.summary_vars(sizes) if v in post]
    names += [v for v in model.user_effect_sites(sizes).values() if v in post]
    out = {"max_rhat": float("nan"), "min_ess_bulk": float("nan"), "min_ess_tail": float("nan"),
           "divergences": 0, "problems": [], "flagged": [], "remedy": {}, "message": ""}
    if fit.info.get("method") != "nuts" or not names:
        return out
    ds = post[names]
    n_users = ds.sizes.get("user", 0)
    if max_users is not None and n_users > max_users:
        ds = ds.isel(user=np.linspace(0, n_users - 1, max_users).round().astype(int))
    table = xr_table(*rank_diagnostics.diagnostics(ds))
    chains = int(post.sizes["chain"])
    need = config.min_ess(chains)
    out.update(max_rhat=float(table["r_hat"].max()), min_ess_bulk=float(table["ess_bulk"].min()),
               min_ess_tail=float(table["ess_tail"].min()))
    ss = fit.idata.sample_stats.dataset if "sample_stats" in fit.idata.children else None
    diverging = ss["diverging"] if ss is not None and "diverging" in ss else None
    if diverging is not None:
        out["divergences"] = int(diverging.sum())
    bad_r = (table["r_hat"] > config.RHAT_MAX).to_numpy()
    low_e = (table["ess_bulk"] < need).to_numpy()
    problems = []
    if bad_r.any():
        problems.append(f"R-hat > {config.RHAT_MAX} (max {out['max_rhat']:.3f}) for {int(bad_r.sum())} parameter(s): "
                        f"{name_list(_worst(table, bad_r, 'r_hat'))}")
    if low_e.any():
        problems.append(f"bulk ESS < {need} ({need // chains} per chain x {chains} chains; min "
                        f"{out['min_ess_bulk']:.0f}) for {int(low_e.sum())} parameter(s): "
                        f"{name_list(_worst(table, low_e, 'ess_bulk'))}")
    if out["divergences"]:
        where = divergent_parameters(ds, diverging)
        problems.append(f"{out['divergences']} divergent transition(s)"
                        + (f" (the divergent draws lie furthest from the others in {_where_text(where)})"
                           if where else ""))
    out["problems"] = problems
    out["flagged"] = [str(n) for n in table.index[bad_r | low_e]]
    out["remedy"] = remedy(fit.info, chains=chains, rhat_bad=bool(bad_r.any()), ess_bad=bool(low_e.any()),
                           min_ess_seen=out["min_ess_bulk"], need=need, divergences=out["divergences"])
    if problems:
        text = remedy_text(out["remedy"], rhat_bad=bool(bad_r.any()), divergences=out["divergences"])
        out["message"] = ("Convergence problems: " + "; ".join(problems) + ". "
                          + (f"Remedy: {text}. " if text else "")
                          + "fit.summary() flags these parameters (column 'flag'); fit.convergence() gives the "
                          "full report.")
    return out


#: above this R-hat more draws of the same chains are not tried: the chains disagree (modes, stuck chains)
DRAW_ON_RHAT_MAX = 1.05


def draw_on_reason(check: dict, chains: int, draws: int, more: int) -> str:
    """Why ``more`` draws per chain, continued from where the chains stopped, should mend what
    :func:`quick_check` found after ``draws`` per chain; "" when they would not.

    They are drawn when R-hat is above ``config.RHAT_MAX`` but at most :data:`DRAW_ON_RHAT_MAX` (the
    chains agree roughly and mix slowly; higher values mean chains in different places, which more of
    the same draws rarely fix), or when the bulk ESS is below ``config.min_ess(chains)`` and, growing
    in proportion to the draws, would reach it; and not when there are divergences (more draws
    do not explore where the sampler cannot go).
    """
    if check["divergences"] or not np.isfinite(check["max_rhat"]) or check["max_rhat"] > DRAW_ON_RHAT_MAX:
        return ""
    need = config.min_ess(chains)
    low_ess = check["min_ess_bulk"] < need
    if low_ess and check["min_ess_bulk"] * (draws + more) / draws < need:
        return ""
    parts = []
    if check["max_rhat"] > config.RHAT_MAX:
        parts.append(f"max R-hat {check['max_rhat']:.3f} > {config.RHAT_MAX}")
    if low_ess:
        parts.append(f"min bulk ESS {check['min_ess_bulk']:.0f} < {need}")
    return " and ".join(parts)


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
