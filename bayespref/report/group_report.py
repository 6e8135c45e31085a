r"""One report of how groups of users differ: :func:`group_report` and :class:`GroupReport`.

``group_report(fit, by)`` runs the heterogeneity analyses and the model checks of a fit for the
groups of one user covariate and collects their tables and figures in sections:

1. **Data and model**: the fit (family, method, sizes) and the groups (users, judgements);
2. **Per-group rankings**: each group's option rewards (utilities when the options have features,
   else log-worths; feature weights for models with features only) with ``ci_prob`` intervals and
   ranks, beside the pooled population (:func:`~bayespref.heterogeneity.group_effects`);
3. **Contrasts**: every pair of groups, differences with intervals and P(> 0)
   (:func:`~bayespref.heterogeneity.contrast`);
4. **Rank reversals**: the probability that two groups order two options oppositely
   (:func:`~bayespref.heterogeneity.rank_reversal`);
5. **Pooled vs groups**: whether the population's favourite and ranking are any group's
   (:func:`~bayespref.heterogeneity.pooled_vs_groups`);
6. **Variance shares**: between groups, within groups (users) and residual
   (:func:`~bayespref.heterogeneity.variance_shares`);
7. **Convergence** (:meth:`Fit.convergence <bayespref.Fit.convergence>`);
8. **Posterior predictive checks** by group (:func:`bayespref.checks.check_all` and its summary).

A section a model cannot give (a pooled model has no groups; variance shares need group-level
effects in the model) says so, with the reason the analysis gave, instead of failing the report:
what a family supports is asked of the analyses, not of the family's name.

The report shows itself in Jupyter (``_repr_html_``, figures embedded), gives Markdown
(:meth:`GroupReport.to_markdown`) and HTML (:meth:`GroupReport.to_html`), and
:meth:`GroupReport.save` writes ``report.md`` or ``report.html``, one PNG per figure and one CSV per
table into a folder, atomically (a temporary folder renamed at the end).
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import pathlib

import numpy as np
import pandas as pd

from bayespref import config
from bayespref._io import atomic_folder
from bayespref.analyses import heterogeneity as het
from bayespref.checks import ppc
from bayespref.errors import DataError, FitError, ModelError
from bayespref.report.render import html_table, markdown_table, png_bytes, png_data_uri

__all__ = ["FORMATS", "GroupReport", "Section", "group_report"]

FORMATS = ("md", "html")
#: rows of the rank-reversal table shown in the text (the CSV holds them all)
TOP_REVERSALS = 15
#: the population average's label among the groups (as heterogeneity.pooled_vs_groups names it)
POOLED = "pooled"


@dataclasses.dataclass
class Section:
    """One section of a report: a title, a paragraph, tables and figures, or a note saying why the
    section is not available."""

    key: str
    title: str
    text: str = ""
    tables: dict = dataclasses.field(default_factory=dict)
    figures: dict = dataclasses.field(default_factory=dict)
    note: str | None = None
    #: tables shown in the text in part (name -> rows); the CSV files hold them whole
    shown: dict = dataclasses.field(default_factory=dict)


class GroupReport:
    """The report of :func:`group_report`.

    Attributes
    ----------
    title : str
    by : str
        The grouping covariate.
    sections : list of Section
    tables : dict of str -> pandas.DataFrame
        Every table, named ``<section>`` or ``<section>_<table>`` (e.g. ``"rankings"``,
        ``"reversals_matrix"``).
    figures : dict of str -> matplotlib.figure.Figure
        Every figure, named like the tables (e.g. ``"rankings"``, ``"calibration"``).
    notes : dict of str -> str
        Sections that are not available, and why.
    """

    def __init__(self, title: str, by: str, sections: list[Section], info: dict | None = None):
        self.title = title
        self.by = by
        self.sections = list(sections)
        self.info = dict(info or {})
        self._png: dict[str, bytes] = {}

    # -- contents ---------------------------------------------------------------------------------
    @staticmethod
    def _name(section, name):
        return section.key if name == section.key else f"{section.key}_{name}"

    @property
    def tables(self) -> dict:
        return {self._name(s, k): t for s in self.sections for k, t in s.tables.items()}

    @property
    def figures(self) -> dict:
        return {self._name(s, k): f for s in self.sections for k, f in s.figures.items()}

    @property
    def notes(self) -> dict:
        return {s.key: s.note for s in self.sections if s.note}

    def png(self, name: str) -> bytes:
        """The figure ``name`` as PNG bytes (rendered once)."""
        if name not in self._png:
            self._png[name] = png_bytes(self.figures[name])
        return self._png[name]

    # -- rendering ---------------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """The report as Markdown; figures are linked as ``<name>.png`` (the files :meth:`save` writes)."""
        lines = [f"# {self.title}", ""]
        for s in self.sections:
            lines += [f"## {s.title}", ""]
            if s.note:
                lines += [f"*{s.note}*", ""]
                continue
            if s.text:
                lines += [s.text, ""]
            for k, t in s.tables.items():
                name = self._name(s, k)
                shown = t.head(s.shown[k]) if k in s.shown else t
                if k != s.key:
                    lines += [f"**{k.replace('_', ' ')}**", ""]
                lines += [markdown_table(shown), ""]
                if len(shown) < len(t):
                    lines += [f"({len(shown)} of {len(t)} rows; all in `{name}.csv`)", ""]
            for k in s.figures:
                name = self._name(s, k)
                lines += [f"![{s.title}: {k.replace('_', ' ')}]({name}.png)", ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self, embed: bool = True) -> str:
        """The report as an HTML document; ``embed``: figures inline (base64), else linked as ``<name>.png``."""
        return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
                f"<body>{self._body(embed)}</body></html>\n")

    def _body(self, embed: bool) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for s in self.sections:
            parts.append(f"<h2>{html.escape(s.title)}</h2>")
            if s.note:
                parts.append(f"<p><em>{html.escape(s.note)}</em></p>")
                continue
            if s.text:
                parts += [f"<p>{_inline(p)}</p>" for p in s.text.split("\n\n")]
            for k, t in s.tables.items():
                shown = t.head(s.shown[k]) if k in s.shown else t
                if k != s.key:
                    parts.append(f"<p><b>{html.escape(k.replace('_', ' '))}</b></p>")
                parts.append(html_table(shown))
                if len(shown) < len(t):
                    parts.append(f"<p>({len(shown)} of {len(t)} rows; all in the table "
                                 f"<code>{html.escape(self._name(s, k))}</code>)</p>")
            for k in s.figures:
                name = self._name(s, k)
                src = png_data_uri(self.png(name)) if embed else f"{name}.png"
                parts.append(f"<p><img src='{src}' alt='{html.escape(name)}' style='max-width:100%'></p>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return f"<div class='bayespref-report'><style>{_CSS}</style>{self._body(embed=True)}</div>"

    def __repr__(self) -> str:
        lines = [f"<GroupReport: {self.title}>"]
        for s in self.sections:
            what = s.note or ", ".join([f"{len(s.tables)} table(s)", f"{len(s.figures)} figure(s)"])
            lines.append(f"  {s.title}: {what}")
        return "\n".join(lines)

    # -- files ---------------------------------------------------------------------------------------
    def save(self, folder, format: str = "md") -> pathlib.Path:
        """Write the report into ``folder``, atomically: ``report.md`` (or ``report.html``), one PNG per
        figure and one CSV per table. An existing folder is replaced; on failure it is left as it was.

        Returns the folder's path.
        """
        if format not in FORMATS:
            raise DataError(f"format={format!r}: use one of {FORMATS}.")
        folder = pathlib.Path(folder)
        with atomic_folder(folder) as tmp:
            for name in self.figures:
                (tmp / f"{name}.png").write_bytes(self.png(name))
            for name, t in self.tables.items():
                t.to_csv(tmp / f"{name}.csv")
            text = self.to_markdown() if format == "md" else self.to_html(embed=False)
            (tmp / f"report.{format}").write_text(text, encoding="utf-8")
        return folder


_CSS = ("table.bayespref{border-collapse:collapse;font-size:0.85em;margin:0.4em 0 1em}"
        "table.bayespref td,table.bayespref th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "table.bayespref th{background:#f3f3f3}")


def _inline(text: str) -> str:
    """Paragraph text to HTML: escaped, with ``code`` spans and **bold** kept."""
    out = html.escape(text)
    for mark, tag in (("**", "b"), ("`", "code")):
        pieces = out.split(mark)
        out = "".join(p if i % 2 == 0 else f"<{tag}>{p}</{tag}>" for i, p in enumerate(pieces)) \
            if len(pieces) % 2 == 1 else out
    return out


# ------------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------------
def group_report(fit, by: str, reference=None, ci_prob: float | None = None, seed: int = 0, *,
                 levels=None, bins=None, method: str = "auto") -> GroupReport:
    """How the groups of the user covariate ``by`` differ, in one report (module docstring).

    Parameters
    ----------
    fit : Fit
        A fitted model; the group sections need user-level or type-level effects (``Hierarchical``
        with the covariate, ``LatentTypes``), the convergence and predictive sections apply to any.
    by : str
        A user covariate of the fit's data (``"region"``).
    reference : option label, optional
        Give rewards relative to this option instead of centred over the options.
    ci_prob : float, optional
        Interval mass (default :data:`bayespref.config.CI_PROB`).
    seed : int
        Seed of the posterior predictive replicates.
    levels, bins, method
        Passed to :func:`~bayespref.heterogeneity.group_effects` (``bins``/``levels`` for a numeric
        covariate).

    Returns
    -------
    GroupReport

    Examples
    --------
    >>> report = bp.report.group_report(fit, "region")   # doctest: +SKIP
    >>> report                                           # doctest: +SKIP
    >>> report.save("report/")                           # doctest: +SKIP
    """
    if not all(hasattr(fit, a) for a in ("idata", "model", "data", "convergence")):
        raise FitError(f"group_report() needs a bayespref.Fit (from bayespref.fit), got {type(fit).__name__}.")
    table = fit.data.user_table
    if table is None or by not in table.columns:
        avail = [] if table is None else [str(c) for c in table.columns]
        raise DataError(f"by={by!r} is not a user covariate of the fit's data; available: {avail or 'none'}. "
                        "Pass user covariates when building the data (user_covariates=...).")
    ci_prob = config.ci_prob(ci_prob)
    import matplotlib.pyplot as plt

    sections = [_overview(fit, by, table)]
    effects, why = None, None
    try:
        effects = het.group_effects(fit, by, levels, bins=bins, method=method, reference=reference, ci_prob=ci_prob)
    except ModelError as exc:
        why = _unavailable(exc)
    for key, title, build in (("rankings", "Per-group rankings", _rankings),
                              ("contrasts", "Contrasts between groups", _contrasts),
                              ("reversals", "Rank reversals", _reversals),
                              ("pooled", "Pooled vs groups", _pooled)):
        sections.append(_section(key, title, lambda b=build: b(effects, ci_prob), why))
    sections.append(_section("variance_shares", "Variance shares", lambda: _variance(fit, ci_prob)))
    sections.append(_section("convergence", "Convergence", lambda: _convergence(fit)))
    sections.append(_section("ppc", "Posterior predictive checks", lambda: _checks(fit, by, seed, ci_prob),
                             catch=(ModelError, DataError)))
    for s in sections:
        for fig in s.figures.values():
            plt.close(fig)  # kept for saving and embedding, not shown twice in Jupyter
    title = f"Preferences by {by}: {fit.model.family} fit ({fit.info.get('method', '?')})"
    info = {"by": by, "reference": reference, "ci_prob": ci_prob, "seed": seed, "family": fit.model.family}
    return GroupReport(title, by, sections, info)


def _unavailable(exc) -> str:
    return f"Not available for this model: {exc}"


def _section(key, title, build, why=None, catch=(ModelError,)) -> Section:
    if why is not None:
        return Section(key, title, note=why)
    try:
        return Section(key, title, **build())
    except catch as exc:
        if isinstance(exc, ModelError):
            return Section(key, title, note=_unavailable(exc))
        return Section(key, title, note=f"Not available for these data: {exc}")


def _overview(fit, by, table) -> Section:
    data = fit.data
    u = np.asarray(data.user)
    active = np.unique(u[u >= 0])
    labels = table[by].to_numpy()
    per_user = pd.Series(labels[active]).astype(str)
    per_judgement = pd.Series(labels[u[u >= 0]]).astype(str)
    groups = pd.DataFrame({"users": per_user.value_counts(sort=False),
                           "judgements": per_judgement.value_counts(sort=False)}).fillna(0).astype(int)
    groups.index.name = str(by)
    sizes = fit.sizes
    text = (f"{fit.model.family} model fitted by {fit.info.get('method', '?')} to {data.n_obs} judgements "
            f"of {sizes.get('n_options', data.n_options)} options by {data.n_users} users; groups: the levels of "
            f"`{by}`. Intervals are equal-tailed posterior intervals.")
    return Section("overview", "Data and model", text, {"groups": groups})


def _reward_var(effects) -> str:
    return next(v for v in ("utility", "worth", "weight") if v in effects)


def _rankings(effects, ci_prob) -> dict:
    var = _reward_var(effects)
    rows = []
    draws = {str(g): effects[var].sel(group=g).drop_vars(["group", "n_users"], errors="ignore")
             for g in effects["group"].values}
    draws[POOLED] = het.pooled(effects)[var]
    for g, da in draws.items():
        t = het.summary(da, ci_prob)
        t.index.name = "term"
        t = t.reset_index()
        t.insert(0, "group", g)
        t["rank"] = t["mean"].rank(ascending=False, method="min").astype(int)
        rows.append(t.sort_values("rank", kind="stable"))
    ranks = pd.concat(rows, ignore_index=True).set_index(["group", "term"])
    fig = het.plot_group_effects(effects, var=var, ci_prob=ci_prob)
    scale = {"utility": "utilities", "worth": "log-worths", "weight": "feature weights"}[var]
    text = (f"Each group's {scale} ({effects.attrs.get('gauge', '')}) with {ci_prob:.0%} intervals; "
            f"rank 1 is the group's favourite. `{POOLED}` is the population average, weighted by the "
            f"number of users per group ({effects.attrs.get('method', '')} method).")
    return {"text": text, "tables": {"rankings": ranks}, "figures": {"rankings": fig}}


def _contrasts(effects, ci_prob) -> dict:
    var = _reward_var(effects)
    groups = [str(g) for g in effects["group"].values]
    if len(groups) < 2:
        raise ModelError(f"only one group ({groups[0]}) has users in the data; contrasts need two.")
    parts = []
    for g, h in itertools.combinations(groups, 2):
        t = het.contrast(effects[var], g, h, ci_prob=ci_prob)
        t.index.name = "term"
        t = t.reset_index()
        t.insert(0, "contrast", f"{g} - {h}")
        parts.append(t)
    table = pd.concat(parts, ignore_index=True).set_index(["contrast", "term"])
    clear = int(((table["lower"] > 0) | (table["upper"] < 0)).sum())
    text = (f"Differences between the groups' {var} per option (or feature), with {ci_prob:.0%} intervals and "
            f"the posterior probability that the difference is positive; {clear} of {len(table)} intervals "
            "exclude zero.")
    return {"text": text, "tables": {"contrasts": table}}


def _reversals(effects, ci_prob) -> dict:
    rr = het.rank_reversal(effects)
    table = het.reversal_table(rr)
    matrix = het.reversal_matrix(rr)
    fig = het.plot_rank_reversal(rr)
    sure = int((table["p_reversal"] > 0.9).sum())
    text = ("For two groups and two options, the posterior probability that the groups order the options "
            "oppositely (near 0.5 when a group is undecided about the pair: read it with `p_a_prefers` and "
            f"`p_b_prefers`); {sure} pair(s) of options are reversed with probability above 0.9. The matrix "
            "gives the largest probability per pair of groups.")
    return {"text": text, "tables": {"reversals": table, "matrix": matrix}, "figures": {"reversals": fig},
            "shown": {"reversals": TOP_REVERSALS}}


def _pooled(effects, ci_prob) -> dict:
    pv = het.pooled_vs_groups(effects)
    groups = [str(g) for g in pv["group"].values]
    options = [str(o) for o in pv["option"].values]
    p_top = np.asarray(pv["p_top"].values)
    fav = p_top.argmax(1)
    table = pd.DataFrame({
        "users": np.asarray(pv["n_users"].values),
        "favourite": [options[k] for k in fav],
        "p_favourite": p_top[np.arange(len(groups)), fav],
        "p_same_top": np.asarray(pv["p_same_top"].values),
        "p_same_ranking": np.asarray(pv["p_same_ranking"].values),
        "kendall_tau": np.asarray(pv["kendall_tau"].mean(("chain", "draw")).values),
    }, index=pd.Index(groups, name="group"))
    no_top, no_rank = float(pv["p_top_serves_no_group"]), float(pv["p_ranking_serves_no_group"])
    text = (f"The pooled (population-average) preference beside each group's: the favourite, the probability "
            "that the group's favourite and full ranking equal the pooled ones, and the rank correlation "
            f"(Kendall's tau) with the pooled ranking. P(the pooled favourite is no group's favourite) = "
            f"{no_top:.3f}; P(the pooled ranking is no group's ranking) = {no_rank:.3f}.")
    summary = pd.DataFrame({"probability": [no_top, no_rank]},
                           index=pd.Index(["top_serves_no_group", "ranking_serves_no_group"], name="event"))
    return {"text": text, "tables": {"pooled": table, "serves_no_group": summary}}


def _variance(fit, ci_prob) -> dict:
    vs = het.variance_shares(fit)
    share = het.summary(vs["share"].sel(effect="overall").drop_vars("effect"), ci_prob)
    per = het.summary(vs["share"].sel(source="between_groups").drop_vars("source"), ci_prob)
    text = ("How the variation of preferences splits between groups (all of the model's covariates), within "
            "groups (between users) and the residual noise of a single judgement, on the scale of the reward "
            "differences of the data's comparisons (`overall`), and the between-groups share per effect.")
    return {"text": text, "tables": {"variance_shares": share, "between_groups_by_effect": per}}


#: rows of the convergence section's table of flagged parameters
FLAGGED_ROWS = 50


def _convergence(fit) -> dict:
    rep = fit.convergence()
    stats = pd.DataFrame({"value": [_cell(v) for v in rep.stats.values()]},
                         index=pd.Index([str(k) for k in rep.stats], name="statistic"))
    verdict = "no problems found" if rep.ok else f"{len(rep.problems)} problem(s): " + " ".join(rep.problems)
    text = f"{rep.method.upper()}: {verdict}"
    if rep.advice:
        text += f" Remedy: {rep.advice}."
    flagged = rep.flagged
    if len(flagged):
        shown = f"the {FLAGGED_ROWS} with the largest R-hat of the " if len(flagged) > FLAGGED_ROWS else ""
        text += f" The table `flagged` lists {shown}{len(flagged)} parameter(s) over a threshold (column `flag`)."
    tables = {"convergence": stats}
    if rep.method == "nuts" and len(rep.table):
        if len(flagged):
            tables["flagged"] = flagged.sort_values("r_hat", ascending=False).head(FLAGGED_ROWS)
        tables["worst"] = rep.table.sort_values("r_hat", ascending=False).head(10)
    return {"text": text if text.endswith(".") else text + ".", "tables": tables}


def _cell(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(f"{x:.3g}" if isinstance(x, (float, np.floating)) else str(x) for x in v)
    return v


def _checks(fit, by, seed, ci_prob) -> dict:
    checks = ppc.check_all(fit, by=by, seed=seed)
    table = ppc.summary(checks)
    table.index.name = "check"
    flagged = [str(k) for k, v in table["p_value"].items() if v < 0.05]
    text = (f"Posterior predictive checks per group of `{by}` (the smallest p-value over groups or pairs; "
            "small: the data depart from what the model predicts). "
            + (f"Flagged at 0.05: {', '.join(flagged)}." if flagged else "None is flagged at 0.05."))
    figures = {"calibration": checks["calibration"].plot(ci_prob=ci_prob)}
    calib = checks["calibration"].to_frame(ci_prob)
    return {"text": text, "tables": {"ppc": table, "calibration": calib}, "figures": figures}
