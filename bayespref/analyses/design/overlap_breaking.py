r"""Overlap-breaking designs: comparisons that vary one feature while holding the other.

When two features move together in the compared pairs (their differences correlate, ``rho``
near 1), their separate weights are learned only from the few pairs where they disagree
(a share :math:`1/2 - \arcsin(\rho)/\pi`, ``docs/paper-notes.md``; :mod:`bayespref.overlap`
diagnoses it) and the posterior of each weight stays wide, whatever the number of such pairs. The
remedy of the paper notes is an intervention on one factor: pairs that differ in ``vary`` and
agree in ``hold``. This module proposes them and says what they would buy:

* :func:`feature_overlap` -- the correlation of the feature differences of a set of comparisons and
  the share of pairs that separate each pair of features (computed here from the data);
* :func:`one_factor_pairs` -- synthetic comparisons of new options built from observed option
  profiles: the two options agree in every feature but ``vary``, which differs by ``delta``
  (features-only models, whose new options are described by their features);
* :func:`pool_one_factor` -- the rows of a candidate pool whose ``hold`` differences are small;
* :func:`overlap_breaking` -- the proposal: from those candidates, the batch of n that most
  reduces the posterior SD of the weight of ``vary`` (greedy ensemble EIG,
  :mod:`~bayespref.analyses.design.batch`), with the expected SD after it and after n random
  pool judgements (the same linearised update), as an :class:`OverlapBreaking`.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd

from bayespref.analyses.design import batch as _batch
from bayespref.analyses.design import candidates as _cand
from bayespref.analyses.design import targets as _targets
from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError, ModelError
from bayespref.models import sites


def _differences(data: Comparisons, features) -> tuple[list, np.ndarray]:
    names = list(data.feature_names)
    feats = names if features is None else [str(f) for f in features]
    unknown = [f for f in feats if f not in names]
    if unknown:
        raise DataError(f"Features {unknown} are not in the data (features: {names}).")
    idx = [names.index(f) for f in feats]
    return feats, np.asarray(data.xa, float)[:, idx] - np.asarray(data.xb, float)[:, idx]


def feature_overlap(data, features=None) -> pd.DataFrame:
    r"""For each pair of features of ``data`` (a Comparisons or a Fit's data): the correlation of
    their differences ``rho`` and the share of comparisons whose two differences have opposite
    signs (``share_informative``, among those where both differ), sorted by ``|rho|``."""
    if hasattr(data, "data") and hasattr(data, "model"):
        data = data.data
    feats, d = _differences(data, features)
    if len(feats) < 2:
        raise DataError("feature_overlap needs at least two option features.")
    sd = d.std(0)
    rows = []
    for i, j in itertools.combinations(range(len(feats)), 2):
        rho = float(np.corrcoef(d[:, i], d[:, j])[0, 1]) if sd[i] > 0 and sd[j] > 0 else np.nan
        both = (d[:, i] != 0) & (d[:, j] != 0)
        share = float(np.mean(np.sign(d[both, i]) != np.sign(d[both, j]))) if both.any() else np.nan
        rows.append({"feature": feats[i], "feature_bis": feats[j], "rho": rho, "share_informative": share,
                     "n": int(both.sum())})
    out = pd.DataFrame(rows)
    return out.reindex(out["rho"].abs().sort_values(ascending=False).index).set_index(["feature", "feature_bis"])


def _check_features(fit, vary, hold):
    feats = [str(f) for f in fit.model.feature_names(fit.data)]
    if str(vary) not in feats:
        raise ModelError(f"vary={vary!r} is not a feature of the model ({feats or 'none'}).")
    hold = [f for f in feats if f != str(vary)] if hold is None else [str(h) for h in np.atleast_1d(hold)]
    bad = [h for h in hold if h not in feats or h == str(vary)]
    if bad:
        raise ModelError(f"hold={bad} must be features of the model other than vary ({feats}).")
    return str(vary), hold


def one_factor_pairs(fit, vary: str, *, hold=None, n: int = 200, delta: float | None = None, judge=None,
                     seed: int = 0) -> pd.DataFrame:
    r"""Synthetic comparisons that vary one feature and hold the others.

    Each row compares two new options made from one observed option profile :math:`z` (drawn with
    replacement): option ``a`` has :math:`z_{vary} + s\,\delta/2`, option ``b`` has
    :math:`z_{vary} - s\,\delta/2` (:math:`s = \pm 1` at random, so ``a`` is not always the larger)
    and both keep :math:`z` in every other feature (``hold`` and the rest). ``delta`` defaults to
    the 90 % quantile of :math:`|x_a - x_b|` of ``vary`` in the data. ``judge``: a dict of the
    judges' covariates (new users of that group); default new users of the population.

    Returns a DataFrame in the fit's data layout; when the data read features from an option
    table, the new options' table is in ``attrs["option_features"]`` (used by
    :func:`~bayespref.analyses.design.score` and :func:`~bayespref.analyses.design.select`).
    """
    vary, hold = _check_features(fit, vary, hold)
    if fit.model.uses_worths(fit.data):
        raise ModelError("one_factor_pairs: the model estimates a worth per option, so new options cannot be "
                         "judged by it; pass pool=... (pairs of existing options that hold the other features) "
                         "or fit a features-only model (worths=False).")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"n={n!r} must be a whole number of at least 1.")
    rng = np.random.default_rng(seed)
    prof = _cand.option_profiles(fit)
    if delta is None:
        _, d = _differences(fit.data, [vary])
        delta = float(np.quantile(np.abs(d[:, 0]), 0.9))
    if not np.isfinite(delta) or delta <= 0:
        raise DataError(f"delta={delta!r} must be a positive number (the difference in {vary!r} between the options).")
    base = prof.iloc[rng.integers(0, len(prof), int(n))].reset_index(drop=True)
    s = rng.choice([-1.0, 1.0], size=int(n))
    fa = base.assign(**{vary: base[vary].to_numpy() + s * delta / 2})
    fb = base.assign(**{vary: base[vary].to_numpy() - s * delta / 2})
    extra, cov = _targets.judge_rows(fit, judge, int(n))
    frame, table = _cand.profile_comparisons(fit, fa, fb, prefix="__of", extra=extra)
    frame.attrs = {"vary": vary, "hold": hold, "delta": delta, "option_features": table,
                   "user_covariates": cov}
    return frame


def pool_one_factor(fit, pool: pd.DataFrame, vary: str, *, hold=None, tol: float = 0.25, user_covariates=None,
                    features=None) -> pd.DataFrame:
    r"""The rows of ``pool`` that hold the ``hold`` features: :math:`|x_a - x_b| \le` ``tol`` SDs of
    that feature's differences in the data, for every held feature, with ``vary`` differing.
    Columns added: ``diff_<vary>`` and ``max_diff_held`` (in SDs)."""
    vary, hold = _check_features(fit, vary, hold)
    p = _cand.prepare(fit, pool, user_covariates, features=features, what="pool")
    names = list(p.data.feature_names)
    dx = np.asarray(p.data.xa, float) - np.asarray(p.data.xb, float)
    _, dd = _differences(fit.data, hold)
    scale = np.where(dd.std(0) > 0, dd.std(0), 1.0)
    held = np.abs(dx[:, [names.index(h) for h in hold]]) / scale
    dv = dx[:, names.index(vary)]
    keep = (held.max(1) <= tol) & (dv != 0)
    out = p.frame[keep].copy()
    out.index = p.labels[keep]
    out[f"diff_{vary}"] = dv[keep]
    out["max_diff_held"] = held.max(1)[keep]
    return out


@dataclasses.dataclass
class OverlapBreaking:
    """Result of :func:`overlap_breaking`.

    Attributes
    ----------
    batch : DataFrame
        The proposed judgements in the order chosen (``step``, ``eig``, ``target_sd``: expected SD
        of the weight after each step).
    vary, hold : the feature varied and those held.
    sd_before : float
        Posterior SD of the weight of ``vary`` now.
    sd_after : float
        Expected SD after the batch (linearised update).
    sd_after_random : float or None
        Expected SD after as many random pool judgements (same update), when a pool was given.
    random_curve : DataFrame or None
        Expected SD after each random pool judgement (``n_judgements``, ``target_sd``).
    correlation : DataFrame
        ``rho`` of the feature differences of (vary, held) in the data and in the batch.
    """

    batch: pd.DataFrame
    vary: str
    hold: list
    sd_before: float
    sd_after: float
    sd_after_random: float | None
    random_curve: pd.DataFrame | None
    correlation: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """One row per design: expected SD after, SD reduction and the ratio of reductions."""
        rows = [{"design": "overlap-breaking", "n": len(self.batch), "sd_before": self.sd_before,
                 "sd_after": self.sd_after, "reduction": self.sd_before - self.sd_after}]
        if self.sd_after_random is not None:
            rows.append({"design": "random pool", "n": len(self.batch), "sd_before": self.sd_before,
                         "sd_after": self.sd_after_random, "reduction": self.sd_before - self.sd_after_random})
        out = pd.DataFrame(rows).set_index("design")
        out["reduction_ratio_vs_random"] = (out["reduction"] / out["reduction"].iloc[-1]
                                            if self.sd_after_random is not None else np.nan)
        return out

    def plot(self, ax=None):
        """Expected posterior SD of the weight against the number of judgements; returns the Figure."""
        import matplotlib.pyplot as plt

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.6))
        steps = np.r_[0, self.batch["step"].to_numpy()]
        ax.plot(steps, np.r_[self.sd_before, self.batch["target_sd"].to_numpy()], label="overlap-breaking")
        if self.random_curve is not None:
            ax.plot(self.random_curve["n_judgements"], self.random_curve["target_sd"], label="random pool")
        ax.set_xlabel("judgements added")
        ax.set_ylabel(f"expected posterior SD of weight[{self.vary}]")
        ax.legend(frameon=False)
        fig.tight_layout()
        return fig


def most_entangled(fit, min_rho: float = 0.5) -> tuple[str, str]:
    """The feature pair of the model whose differences correlate most in the fit's data, ordered
    (the one whose weight has the larger posterior SD first): ``(vary, hold)``. A DataError when no
    pair correlates at ``min_rho`` or more."""
    feats = [str(f) for f in fit.model.feature_names(fit.data)]
    if len(feats) < 2:
        raise DataError("overlap_breaking needs a model with at least two option features.")
    table = feature_overlap(fit.data, feats)
    (f, h), row = next(iter(table.iterrows()))
    if not np.isfinite(row["rho"]) or abs(row["rho"]) < min_rho:
        raise DataError(f"No pair of features moves together (largest |rho| {abs(row['rho']):.2f} < {min_rho}); "
                        "name the feature to vary: overlap_breaking(fit, vary=...).")
    sd = _targets.population(fit, sites.WEIGHT).std(("chain", "draw"))
    if "type" in sd.dims:
        sd = sd.max("type")
    return (f, h) if float(sd.sel(feature=f)) >= float(sd.sel(feature=h)) else (h, f)


def overlap_breaking(fit, vary: str | None = None, *, hold=None, n: int = 200, pool: pd.DataFrame | None = None,
                     synthetic: bool | None = None, candidates_per_judgement: int = 4, delta: float | None = None,
                     tol: float = 0.25, judge=None, user_covariates=None, features=None, max_draws: int = 1000,
                     seed: int = 0) -> OverlapBreaking:
    r"""Propose n judgements that separate the weight of ``vary`` from the features it moves with.

    Candidates: synthetic one-factor pairs (:func:`one_factor_pairs`, ``candidates_per_judgement *
    n`` of them; the default when the model is features-only) and/or the rows of ``pool`` that hold
    the other features (:func:`pool_one_factor`). From them the batch of ``n`` is chosen greedily by
    the expected information gain about the weight of ``vary`` (:func:`~bayespref.analyses.design.select`,
    ensemble method), and its expected effect on the weight's posterior SD is compared with ``n``
    random rows of ``pool``.

    ``vary=None``: the pair of features whose differences correlate most (:func:`most_entangled`),
    varying the one whose weight is less certain and holding the other.

    Raises
    ------
    ModelError
        ``vary``/``hold`` not features of the model; synthetic pairs for a model with worths and no pool.
    DataError
        No candidate holds the other features (``tol`` too small for the pool).
    """
    if vary is None:
        vary, other = most_entangled(fit)
        hold = [other] if hold is None else hold
    vary, hold = _check_features(fit, vary, hold)
    if synthetic is None:
        synthetic = not fit.model.uses_worths(fit.data)
    parts, opt_tables, covs = [], [], []
    if synthetic:
        syn = one_factor_pairs(fit, vary, hold=hold, n=int(candidates_per_judgement) * int(n), delta=delta,
                               judge=judge, seed=seed)
        opt_tables.append(syn.attrs.get("option_features"))
        covs.append(syn.attrs.get("user_covariates"))
        syn.index = [f"synthetic{i}" for i in range(len(syn))]
        parts.append(syn)
    if pool is not None:
        held = pool_one_factor(fit, pool, vary, hold=hold, tol=tol, user_covariates=user_covariates,
                               features=features)
        parts.append(held.drop(columns=[f"diff_{vary}", "max_diff_held"]))
    elif not synthetic:
        raise ModelError("overlap_breaking: give pool=... (candidate comparisons to choose from) or synthetic=True.")
    cands = pd.concat(parts) if len(parts) > 1 else parts[0]
    if not len(cands):
        raise DataError(f"No candidate varies {vary!r} while holding {hold} (tol={tol} SDs); raise tol or add "
                        "synthetic pairs.")
    feats_table = _concat_tables([t for t in opt_tables if t is not None] + ([features] if features is not None else []))
    cov = _concat_tables([c for c in covs if c is not None] + ([user_covariates] if user_covariates is not None else []))
    target = _targets.weight(vary)
    chosen = _batch.select(fit, cands, target, n=int(n), user_covariates=cov, features=feats_table,
                           method="ensemble", max_draws=max_draws, seed=seed)
    sd_random = curve = None
    if pool is not None:
        rnd = pool.sample(min(int(n), len(pool)), random_state=seed)
        curve = _batch.expected_target_sd(fit, rnd, target, user_covariates=user_covariates, features=features,
                                          max_draws=max_draws, seed=seed)
        sd_random = float(curve["target_sd"].iloc[-1])
    corr = _batch_correlation(fit, chosen, vary, hold, cov, feats_table)
    return OverlapBreaking(chosen, vary, hold, float(chosen.attrs["target_sd_before"]),
                           float(chosen.attrs["target_sd_after"]), sd_random, curve, corr)


def _concat_tables(tables):
    tables = [t for t in tables if t is not None]
    if not tables:
        return None
    out = pd.concat(tables)
    return out[~out.index.duplicated()]


def _batch_correlation(fit, chosen, vary, hold, cov, feats_table) -> pd.DataFrame:
    enc = _cand.prepare(fit, chosen, cov, features=feats_table, what="the batch").data
    rows = []
    for h in hold:
        pair = [vary, h]
        r_data = feature_overlap(fit.data, pair)["rho"].iloc[0]
        _, d = _differences(enc, pair)
        r_batch = (float(np.corrcoef(d[:, 0], d[:, 1])[0, 1]) if d[:, 0].std() > 0 and d[:, 1].std() > 0
                   else 0.0)
        rows.append({"feature": vary, "held": h, "rho_data": r_data, "rho_batch": r_batch,
                     "max_abs_diff_held_batch": float(np.abs(d[:, 1]).max())})
    return pd.DataFrame(rows).set_index(["feature", "held"])
