r"""Labels for reward-model training: P(chosen preferred to rejected) per comparison, TRL-ready.

:func:`reward_labels` turns a fit and judgements (the training data or held-out ones) into one row
per judgement with the posterior probability that the annotator's choice beats the other response,
for the population, a group of users or the annotator; :func:`write_labels` writes them as
TRL-compatible JSON lines or Parquet, which :meth:`bayespref.Comparisons.from_trl` reads back as
they are; :func:`label_calibration` measures their expected calibration error (ECE) on held-out
judgements.

Schema
------
One row per decided judgement (ties and judgements without an outcome are left out: TRL has no
tie, and neither response was chosen; their number is in ``labels.attrs["n_dropped"]``), in the
order of the data:

===========================  ================================================================================
column                       meaning
===========================  ================================================================================
``comparison``               the judgement's id (``Comparisons.comparison_ids``), to join back
``prompt``                   the prompt, as text (``""`` when the data have no prompts)
``chosen``, ``rejected``     the response (option) the annotator preferred, and the other one, as text:
                             outcome 1 -> ``chosen`` = ``a``; outcome 0 -> ``chosen`` = ``b``
``margin``                   posterior mean of :math:`\operatorname{logit} p^{(s)}` (below): the reward
                             difference :math:`r(\text{chosen}) - r(\text{rejected})` on the logit scale
                             when the model has no order effect and the annotator is known; TRL's
                             ``margin`` column
``p_chosen``                 posterior mean of :math:`p^{(s)}`, P(chosen preferred to rejected)
``p_sd``                     posterior SD of :math:`p^{(s)}`
``p_lower``, ``p_upper``     equal-tailed ``ci_prob`` interval of :math:`p^{(s)}`
``uncertain``                the pair is uncertain (rule ``uncertain=``, below)
``level``                    ``"population"``, ``"group"`` or ``"user"``
``user``                     the annotator (when the data have a user column)
``<by>``                     the group (level ``"group"``: the column is named by the covariate ``by``)
``annotator_judgements``     the annotator's decided judgements in these data
``annotator_agreement``      share of them that agree with the population posterior's majority
``low_agreement``            ``annotator_agreement < agreement_threshold`` with at least
                             ``min_judgements`` judgements
===========================  ================================================================================

TRL's ``DPOTrainer``/``RewardTrainer`` read ``prompt``, ``chosen``, ``rejected`` (and ``margin``, for the
reward trainer's margin loss) and ignore the other columns.

The probability
---------------
For posterior draw s, with :math:`P^{(s)}_{xy}(i)` the model's probability that option i wins when x is
shown first and y second (:meth:`Fit.predict_draws <bayespref.Fit.predict_draws>`), the probability
among decided outcomes, averaged over the two presentation orders (the label is free of the order
effect), is

.. math::

    p^{(s)} = \frac12 \left[ \frac{P^{(s)}_{cr}(c)}{P^{(s)}_{cr}(c) + P^{(s)}_{cr}(r)}
            + \frac{P^{(s)}_{rc}(c)}{P^{(s)}_{rc}(c) + P^{(s)}_{rc}(r)} \right]

(c chosen, r rejected; for a Bradley-Terry model without order effect :math:`p^{(s)} = \sigma(r_c - r_r)`
with or without Davidson ties). Whose probability:

* ``level="user"``: the annotator's own, with their posterior effects; an annotator the fit has
  no judgements of is a new user of their covariates (as :meth:`Fit.predict` does);
* ``level="group"``: a new annotator of the group, :math:`p = \sum_k w_k p_k`, mixed over the
  covariate profiles k of the fit's training users in the group (weights :math:`w_k`: their shares
  of those users). Each judgement gets its annotator's group (column ``by`` of the user
  covariates), or the group ``group=`` for every judgement. A covariate the model does not use
  gives every group the population's label;
* ``level="population"`` (default): the same mixture over all of the fit's training users.

A new annotator's effects are drawn afresh from the population in every posterior draw, so for
models with user-level effects the ``group``/``population`` SD and interval describe a new
annotator (posterior uncertainty plus the spread between annotators); the posterior mean is the
probability that a new annotator chooses ``chosen``, the one to compare with held-out judgements.

Flags
-----
* ``uncertain``: ``uncertain=(lo, hi)`` flags ``lo <= p_chosen <= hi`` (default (0.4, 0.6));
  ``uncertain="interval"`` flags pairs whose interval contains 1/2; a number ``w`` flags pairs whose
  interval is wider than ``w``.
* ``low_agreement``: an annotator whose judgements agree with the population's majority (the
  response with population ``p_chosen > 1/2``; exactly 1/2 counts half) less often than
  ``agreement_threshold`` (default 1/2: less often than a coin), among annotators with at least
  ``min_judgements`` (default 5) decided judgements. A low share marks noisy annotators, or a
  minority whose preferences the population label does not describe (compare ``level="group"``).

Examples
--------
>>> train, test = data.split_by_user(0.2, seed=1)                          # doctest: +SKIP
>>> fit = bp.fit(bp.Hierarchical(covariates=["region"]), train)            # doctest: +SKIP
>>> labels = bp.reward_labels(fit, test, level="group", by="region")       # doctest: +SKIP
>>> bp.labels.label_calibration(labels).ece                                # doctest: +SKIP
>>> bp.write_labels(labels, "labels.jsonl")                                # doctest: +SKIP
>>> bp.Comparisons.from_trl("labels.jsonl")                                # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import pathlib
import tempfile
import warnings

import numpy as np
import pandas as pd

from bayespref import config
from bayespref._io import usual_mode
from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError, DataWarning, FitError
from bayespref.intervals import interval_bounds

__all__ = ["LEVELS", "SCHEMA", "LabelCalibration", "label_calibration", "reward_labels", "write_labels"]

LEVELS = ("population", "group", "user")
#: the columns of :func:`reward_labels` (``<by>`` stands for the grouping covariate's name)
SCHEMA = {
    "comparison": "the judgement's id (Comparisons.comparison_ids)",
    "prompt": "the prompt as text ('' when the data have no prompts)",
    "chosen": "the response the annotator preferred (outcome 1: a; outcome 0: b), as text",
    "rejected": "the other response, as text",
    "margin": "posterior mean of logit P(chosen preferred to rejected)",
    "p_chosen": "posterior mean of P(chosen preferred to rejected), averaged over presentation orders",
    "p_sd": "posterior SD of that probability",
    "p_lower": "lower end of its equal-tailed ci_prob interval",
    "p_upper": "upper end of its equal-tailed ci_prob interval",
    "uncertain": "the pair is uncertain (rule uncertain=)",
    "level": "whose probability: population, group or user",
    "user": "the annotator (when the data have users)",
    "<by>": "the annotator's group (level='group')",
    "annotator_judgements": "the annotator's decided judgements in the data",
    "annotator_agreement": "share of them agreeing with the population posterior's majority",
    "low_agreement": "annotator_agreement below agreement_threshold (with at least min_judgements)",
}
#: queries x posterior draws predicted at once (memory: a few arrays of this many floats)
_BUDGET = 20_000_000


# ------------------------------------------------------------------------------------------------
# the labels
# ------------------------------------------------------------------------------------------------
def reward_labels(fit, data=None, level: str = "population", *, by: str | None = None, group=None,
                  ci_prob: float | None = None, uncertain=(0.4, 0.6), agreement_threshold: float = 0.5,
                  min_judgements: int = 5, max_draws: int | None = 1000, seed: int = 0) -> pd.DataFrame:
    """P(chosen preferred to rejected) per judgement, with intervals, margin and flags (module docstring).

    Parameters
    ----------
    fit : Fit
        Any fitted model (:func:`bayespref.fit`).
    data : Comparisons or DataFrame, optional
        The judgements to label (default: the fit's training data). Held-out judgements from
        ``split_by_user`` / ``split_by_prompt`` of the same data, a ``Comparisons`` encoded with
        ``fit.data.encode(frame)`` or read separately (its options and users are matched by label), or
        a frame in the training layout (encoded with ``fit.data.encode``).
    level : {"population", "group", "user"}
        Whose probability.
    by : str, optional
        The user covariate whose levels are the groups (``level="group"``; with another level it only
        adds the group column).
    group : optional
        One level of ``by``: label every judgement for this group instead of its annotator's.
    ci_prob : float, optional
        Interval mass (default :data:`bayespref.config.CI_PROB`).
    uncertain : (float, float), "interval" or float
        The rule of the ``uncertain`` flag.
    agreement_threshold : float
        Annotators agreeing with the population's majority less often than this are flagged.
    min_judgements : int
        Annotators with fewer decided judgements are never flagged.
    max_draws : int or None
        Posterior draws used (evenly thinned; None: all of them). The mean's Monte Carlo error with
        1,000 draws is below 0.5 percentage points for any probability.
    seed : int
        Seed of the predictive draws (new annotators' effects).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`SCHEMA`; ``attrs``: ``level``, ``by``, ``group``, ``ci_prob``,
        ``uncertain``, ``agreement_threshold``, ``min_judgements``, ``n_dropped`` (ties and
        judgements without an outcome).

    Raises
    ------
    DataError
        Unknown ``level``/``by``/``group``, judgements without a group at ``level="group"``, or no
        decided judgement.
    """
    if not all(hasattr(fit, a) for a in ("idata", "model", "data", "predict_draws")):
        raise FitError(f"reward_labels() needs a bayespref.Fit (from bayespref.fit), got {type(fit).__name__}.")
    if level not in LEVELS:
        raise DataError(f"level={level!r}: use one of {LEVELS}.")
    ci_prob = config.ci_prob(ci_prob)
    rule = _uncertain_rule(uncertain)
    if not 0 <= float(agreement_threshold) <= 1:
        raise DataError(f"agreement_threshold={agreement_threshold!r} must be a share between 0 and 1.")
    if level == "group" and by is None:
        raise DataError("level='group' needs by=<user covariate> (e.g. by='region').")
    if group is not None and by is None:
        raise DataError("group= is a level of a user covariate; name the covariate with by=.")
    data = _aligned(fit, data)
    decided = np.isin(np.asarray(data.y), (0, 1))
    if not decided.any():
        raise DataError("reward_labels: the data have no decided judgement (outcome 1 or 0); ties and "
                        "judgements without an outcome have no chosen response.")
    n_dropped = int((~decided).sum())
    data = data.subset(decided)
    frame = data.frame
    has_users = "user" in frame
    users = frame["user"].to_numpy() if has_users else None
    groups = None
    if by is not None:
        groups = _comparison_groups(fit, data, by, group)
    every = np.arange(data.n_comparisons)
    population = [(every, _mixture(fit, None))]
    if level == "user":
        plan = [(every, [(None, 1.0)])]
    elif level == "group":
        if not fit.model.covariate_effects or not any(c == by or c.startswith(f"{by}[")
                                                      for c in fit.model.covariate_names(fit.data)):
            warnings.warn(f"The {fit.model.family} model does not use the covariate {by!r}, so every group gets "
                          "the population's label; fit a model with covariates including it to tell the groups "
                          "apart.", DataWarning, stacklevel=2)
        plan = [(np.flatnonzero(groups == g), _mixture(fit, (by, g))) for g in pd.unique(groups)]
    else:
        plan = population
    plans = [plan] if level == "population" or not has_users else [plan, population]
    draws = _probability(fit, data, plans, seed, max_draws)
    p = draws[0]
    lo, hi = interval_bounds(p, ci_prob, axis=0)
    with np.errstate(divide="ignore"):
        logit = np.log(p) - np.log1p(-p)
    mean = p.mean(0)
    chosen_is_a = np.asarray(data.y) == 1
    a_lab, b_lab = frame["a"].to_numpy(), frame["b"].to_numpy()
    out = pd.DataFrame({
        "comparison": np.asarray(data.comparison_ids),
        "prompt": _text(frame["prompt"]) if "prompt" in frame else np.full(len(frame), "", dtype=object),
        "chosen": _text(pd.Series(np.where(chosen_is_a, a_lab, b_lab))),
        "rejected": _text(pd.Series(np.where(chosen_is_a, b_lab, a_lab))),
        "margin": np.clip(logit, -_LOGIT_MAX, _LOGIT_MAX).mean(0),
        "p_chosen": mean,
        "p_sd": p.std(0, ddof=1) if p.shape[0] > 1 else np.zeros(p.shape[1]),
        "p_lower": lo,
        "p_upper": hi,
        "uncertain": rule(mean, lo, hi),
        "level": level,
    })
    if has_users:
        out["user"] = users
    if groups is not None:
        out[str(by)] = groups
    if has_users:
        p_pop = draws[-1].mean(0)
        agrees = np.where(p_pop > 0.5, 1.0, np.where(p_pop < 0.5, 0.0, 0.5))
        stats = pd.DataFrame({"user": users, "agrees": agrees}).groupby("user", sort=False)["agrees"]
        n = stats.transform("size").to_numpy()
        share = stats.transform("mean").to_numpy()
        out["annotator_judgements"] = n
        out["annotator_agreement"] = share
        out["low_agreement"] = (n >= min_judgements) & (share < agreement_threshold)
    out.attrs = {"level": level, "by": by, "group": group, "ci_prob": ci_prob, "uncertain": uncertain,
                 "agreement_threshold": float(agreement_threshold), "min_judgements": int(min_judgements),
                 "n_dropped": n_dropped}
    return out


_LOGIT_MAX = 30.0  # logit of a probability that rounds to 0 or 1 in double precision


def _uncertain_rule(rule):
    if isinstance(rule, str):
        if rule != "interval":
            raise DataError(f"uncertain={rule!r}: use (low, high), 'interval' or an interval width.")
        return lambda m, lo, hi: (lo <= 0.5) & (hi >= 0.5)
    if isinstance(rule, (tuple, list)) and len(rule) == 2:
        low, high = (float(v) for v in rule)
        if not 0 <= low <= high <= 1:
            raise DataError(f"uncertain={tuple(rule)!r}: use 0 <= low <= high <= 1, e.g. (0.4, 0.6).")
        return lambda m, lo, hi: (m >= low) & (m <= high)
    if isinstance(rule, (int, float)) and not isinstance(rule, bool) and 0 < rule <= 1:
        return lambda m, lo, hi: (hi - lo) > rule
    raise DataError(f"uncertain={rule!r}: use (low, high) for a band of p_chosen, 'interval' for intervals "
                    "containing 1/2, or a width in (0, 1].")


def _text(values: pd.Series) -> np.ndarray:
    return np.asarray([v if isinstance(v, str) else str(v) for v in values], dtype=object)


def _aligned(fit, data) -> Comparisons:
    """``data`` indexed like the fit's training data (options, users, covariates)."""
    train = fit.data
    if train.obs_dim != "comparison":
        if not isinstance(data, Comparisons):
            raise DataError("Reward labels are per pairwise judgement; for a fit of rankings pass the pairs to label, "
                            "e.g. data=fit.data.explode() (the implied pairs of the training rankings).")
        if not (data.options.equals(train.options) and data.users.equals(train.users)):
            raise DataError("The pairs must share the rankings' options and users: build them with "
                            "fit.data.explode() or fit.data.subset(rows).explode().")
        return data
    if data is None:
        return train
    if isinstance(data, pd.DataFrame):
        return train.encode(data)
    if not isinstance(data, Comparisons):
        raise DataError(f"data must be a Comparisons or a DataFrame in the training layout, got {type(data).__name__}.")
    for what in ("feature_names", "covariate_names"):
        if tuple(getattr(data, what)) != tuple(getattr(train, what)):
            raise DataError(f"The data's {what.split('_')[0]}s {list(getattr(data, what))} differ from the fit's "
                            f"{list(getattr(train, what))}; encode the judgements with fit.data.encode(frame).")
    if data.options.equals(train.options) and data.users.equals(train.users):
        return data

    def index(codes, labels, known):
        codes = np.asarray(codes)
        pos = known.get_indexer(labels[np.maximum(codes, 0)])
        return np.where(codes >= 0, pos, -1).astype(np.int32)

    return dataclasses.replace(
        data, a=index(data.a, data.options, train.options), b=index(data.b, data.options, train.options),
        user=index(data.user, data.users, train.users), options=train.options, users=train.users,
        covariates=train.covariates, user_table=train.user_table)


def _comparison_groups(fit, data, by, group) -> np.ndarray:
    """The group (level of ``by``) of each judgement: its annotator's, or ``group`` for all."""
    table = fit.data.user_table
    if table is None or by not in table.columns:
        avail = [] if table is None else [str(c) for c in table.columns]
        raise DataError(f"by={by!r} is not a user covariate of the fit's data; available: {avail or 'none'}.")
    levels = pd.unique(table[by].to_numpy())
    if group is not None:
        match = [v for v in levels if v == group or str(v) == str(group)]
        if not match:
            raise DataError(f"group={group!r} is not a level of {by!r}; levels: {[str(v) for v in levels]}.")
        return np.full(data.n_comparisons, match[0], dtype=object)
    if "user" not in data.frame:
        raise DataError(f"by={by!r}: the judgements have no user column, so they have no group; pass group=.")
    lookup = table[by]
    if data.user_table is not None and by in data.user_table.columns:
        lookup = pd.concat([data.user_table[by], lookup[~lookup.index.isin(data.user_table.index)]])
    values = lookup.reindex(pd.Index(data.frame["user"].to_numpy())).to_numpy()
    missing = pd.isna(values)
    if missing.any():
        who = pd.unique(data.frame["user"].to_numpy()[missing])
        raise DataError(f"by={by!r}: no group for users {[str(u) for u in who[:5]]}"
                        f"{' and more' if len(who) > 5 else ''}; give them covariates (encode the judgements "
                        "with fit.data.encode(frame, user_covariates=...)) or pass group=.")
    return values


def _mixture(fit, where) -> list:
    """Covariate profiles of the fit's training users (all, or those with ``by == level``) and their
    weights: ``[(design row, weight), ...]``."""
    train = fit.data
    active = np.unique(np.asarray(train.user))
    active = active[active >= 0]
    if where is not None:
        by, level = where
        values = train.user_table[by].to_numpy()[active]
        active = active[np.asarray([v == level or str(v) == str(level) for v in values], dtype=bool)]
        if not len(active):
            raise DataError(f"Group {level!r} of {where[0]!r} has no users in the fit's training data, so the "
                            "fit cannot tell what its annotators prefer; label it at level='population'.")
    rows = np.asarray(train.covariates, dtype=float).reshape(train.n_users, -1)[active]
    if not fit.model.covariate_effects or rows.shape[1] == 0:
        return [(rows[0] if len(rows) else None, 1.0)]
    cols = [list(train.covariate_names).index(c) for c in fit.model.covariate_names(train)]
    _, first, counts = np.unique(rows[:, cols], axis=0, return_index=True, return_counts=True)
    return [(rows[i], c / counts.sum()) for i, c in zip(first, counts)]


def _probability(fit, data, plans, seed, max_draws) -> list[np.ndarray]:
    """Draws (S, N) of P(chosen preferred | decided), order-averaged and mixed, one array per plan.

    A plan is ``[(rows, [(profile or None, weight), ...]), ...]``: the judgements at ``rows`` are
    predicted for each covariate profile (a new user with those covariates; None: the judgements'
    own users) and mixed with the weights. All queries (plans x rows x profiles x two orders) go
    through one batched prediction.
    """
    n = data.n_comparisons
    pos, profile_of, sign, slot, weight = [], [], [], [], []
    profiles = []
    for j, plan in enumerate(plans):
        for rows, mixture in plan:
            rows = np.asarray(rows, dtype=int)
            for profile, w in mixture:
                k = -1
                if profile is not None:
                    k = len(profiles)
                    profiles.append(np.asarray(profile, dtype=float))
                for order in (1, -1):  # chosen shown first, then second
                    pos.append(rows)
                    profile_of.append(np.full(len(rows), k))
                    sign.append(np.full(len(rows), order))
                    slot.append(j * n + rows)
                    weight.append(np.full(len(rows), 0.5 * w))
    pos, profile_of, sign = np.concatenate(pos), np.concatenate(profile_of), np.concatenate(sign)
    slot, weight = np.concatenate(slot), np.concatenate(weight)
    draws = _query(fit, data, pos, profile_of, sign, profiles, seed, max_draws)  # (S, Q): P(chosen wins | decided)
    total = np.zeros((draws.shape[0], len(plans) * n))
    np.add.at(total.T, slot, (draws * weight).T)
    return [total[:, j * n:(j + 1) * n] for j in range(len(plans))]


def _query(fit, data, pos, profile_of, sign, profiles, seed, max_draws) -> np.ndarray:
    """P(chosen wins | decided) per draw for the queries: judgement ``pos``, user profile
    ``profile_of`` (-1: the judgement's own user), chosen shown first (``sign`` 1) or second (-1)."""
    chosen_first = (np.asarray(data.y)[pos] == 1) == (sign == 1)  # the query's a is the judgement's a
    a, b = np.asarray(data.a)[pos], np.asarray(data.b)[pos]
    xa, xb = np.asarray(data.xa)[pos], np.asarray(data.xb)[pos]
    user = np.where(profile_of >= 0, -1, np.asarray(data.user)[pos]).astype(np.int32)
    cov = np.asarray(data.comparison_covariates, dtype=float).reshape(data.n_comparisons, -1)[pos]
    if profiles:
        cov = np.where((profile_of >= 0)[:, None], np.stack(profiles)[np.maximum(profile_of, 0)], cov)
    q = dataclasses.replace(
        data.subset(pos), a=np.where(chosen_first, a, b).astype(np.int32),
        b=np.where(chosen_first, b, a).astype(np.int32), xa=np.where(chosen_first[:, None], xa, xb),
        xb=np.where(chosen_first[:, None], xb, xa), user=user, comparison_covariates=cov)
    S = int(fit.idata.posterior.sizes["chain"] * fit.idata.posterior.sizes["draw"])
    S = S if max_draws is None else min(S, int(max_draws) + int(fit.idata.posterior.sizes["chain"]))
    size = max(256, _BUDGET // max(S, 1))
    parts = []
    for k, start in enumerate(range(0, len(pos), size)):
        chunk = q.subset(np.arange(start, min(start + size, len(pos))))
        parts.append(_first_wins(fit.predict_draws(chunk, seed=seed + k, max_draws=max_draws)))
    p_first = np.concatenate(parts, axis=1)
    return np.where(sign == 1, p_first, 1.0 - p_first)


def _first_wins(ds) -> np.ndarray:
    """P(first-shown wins | not a tie) per draw, flattened to (S, N)."""
    p_a = np.asarray(ds["p_a"].values, dtype=float)
    p_b = 1.0 - p_a - (np.asarray(ds["p_tie"].values, dtype=float) if "p_tie" in ds else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(p_a + p_b > 0, p_a / (p_a + p_b), 0.5)
    return p.reshape(-1, p.shape[-1])


# ------------------------------------------------------------------------------------------------
# calibration on held-out judgements
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class LabelCalibration:
    """Expected calibration error of labels and their reliability table (:func:`label_calibration`)."""

    ece: float
    table: pd.DataFrame
    n: int

    def __repr__(self):
        return f"<LabelCalibration: ECE {self.ece:.4f} over {self.n} judgements>\n{self.table.round(3).to_string()}"


def label_calibration(labels: pd.DataFrame, bins: int = 10) -> LabelCalibration:
    r"""Expected calibration error (ECE) of ``p_chosen`` against the annotators' choices.

    Every judgement enters twice, as :math:`(p, 1)` (the chosen response, which won) and
    :math:`(1 - p, 0)` (the rejected one, which lost), so the result does not depend on which
    response a row lists first. With ``bins`` equal-width bins of [0, 1], :math:`n_b` entries in bin b,
    mean probability :math:`\bar p_b` and share won :math:`\bar s_b`,

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{2N} \, |\bar s_b - \bar p_b|,

    the ECE of the model's confidence in its favoured response (the same definition as
    :func:`bayespref.checks.calibration`, on labels instead of a fit's training data). Use it on
    judgements the fit did not see (``split_by_user`` / ``split_by_prompt``).

    Returns
    -------
    LabelCalibration
        ``ece``, ``table`` (per bin: ``predicted``, ``observed``, ``count``) and ``n`` (judgements).
    """
    if "p_chosen" not in labels:
        raise DataError("label_calibration() needs the labels of reward_labels() (a p_chosen column).")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise DataError(f"bins={bins!r}: use an integer >= 2.")
    p = np.asarray(labels["p_chosen"], dtype=float)
    if not len(p):
        raise DataError("label_calibration(): no labels.")
    prob = np.concatenate([p, 1.0 - p])
    won = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    b = np.minimum((prob * bins).astype(int), bins - 1)
    count = np.bincount(b, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(b, weights=prob, minlength=bins) / count
        observed = np.bincount(b, weights=won, minlength=bins) / count
    ece = float(np.nansum(count / count.sum() * np.abs(observed - predicted)))
    edges = np.linspace(0, 1, bins + 1)
    table = pd.DataFrame({"predicted": predicted, "observed": observed, "count": count},
                         index=pd.Index(np.round((edges[:-1] + edges[1:]) / 2, 6), name="bin"))
    return LabelCalibration(ece, table, len(p))


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------
def write_labels(labels: pd.DataFrame, path) -> pathlib.Path:
    """Write labels as TRL preference data: ``.jsonl`` (or ``.jsonl.gz``) or ``.parquet``, atomically.

    JSON lines hold one object per row with the columns of ``labels`` in their order (floats written
    exactly, shortest round-trip form; booleans as ``true``/``false``); Parquet needs ``pyarrow``
    (``pip install pyarrow``). The file is written to a temporary file in the same folder and renamed
    into place, so a failure leaves no partial file. :meth:`bayespref.Comparisons.from_trl` reads it
    back: ``a`` = ``chosen``, ``b`` = ``rejected``, ``prompt`` and ``margin`` as written.

    Returns the path.
    """
    if not isinstance(labels, pd.DataFrame) or not {"prompt", "chosen", "rejected"} <= set(labels.columns):
        raise DataError("write_labels() needs the labels of reward_labels() (prompt, chosen, rejected columns).")
    path = pathlib.Path(path)
    name = path.name.lower()
    if name.endswith(".parquet"):
        if importlib.util.find_spec("pyarrow") is None:
            raise DataError(f"Writing {str(path)!r} as Parquet needs pyarrow, which is not installed: pip install "
                            "pyarrow (or write JSON lines: a path ending in .jsonl).")
        writer = lambda tmp: labels.to_parquet(tmp, index=False)  # noqa: E731
    elif name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
        writer = lambda tmp: _write_jsonl(labels, tmp, gz=name.endswith(".gz"))  # noqa: E731
    else:
        raise DataError(f"write_labels: cannot tell the format of {str(path)!r}; use a name ending in .jsonl, "
                        ".jsonl.gz or .parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    usual_mode(tmp)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_jsonl(labels, path, gz=False):
    import gzip

    cols = [str(c) for c in labels.columns]
    columns = [labels[c].tolist() for c in labels.columns]
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for row in zip(*columns):
            fh.write(json.dumps(dict(zip(cols, row)), ensure_ascii=False, allow_nan=False, default=_plain) + "\n")


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        raise DataError("write_labels: a value is not finite; labels hold finite numbers only.")
    return str(o)

