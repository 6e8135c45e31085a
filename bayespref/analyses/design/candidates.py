r"""The candidate pool: validated, encoded against the fit's data, with who would judge each row.

A *candidate* is one judgement that could be collected: two options (``a`` shown first, ``b``), in
the training frame's column layout (the same column names; features as ``<name>_a``/``<name>_b``
columns or, for options the fit never saw, an option table), optionally a prompt and the user who
would judge it. Who judges a candidate:

* a user the fit knows (a training user id in the user column): that user's own effects;
* a user the fit does not know: a new member of the population, or of a group when the user's
  covariates are given (``user_covariates=`` table indexed by user id, or the covariate columns in
  the candidate frame). Every such candidate is a different new user (a fresh draw of the user's
  deviation per judgement);
* no user column: a new user of the population (``"__new"``), or, when the frame holds every user
  covariate column of the data (e.g. ``group``), a new user of that group (``"__new[group=B]"``).

:func:`prepare` checks the pool once (an empty pool, options the model cannot predict, new users
without covariates each raise a :class:`~bayespref.DataError` naming the rows and the fix) and
returns a :class:`Pool`. :func:`profile_comparisons` builds comparisons of new options from feature
profiles (synthetic, one-factor pairs).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError

#: id of a new user of the population, when a candidate names no user
NEW_USER = "__new"


@dataclasses.dataclass(frozen=True)
class Pool:
    """A validated candidate pool.

    Attributes
    ----------
    frame : DataFrame
        The candidates as given (index reset to 0..C-1; ``candidate`` keeps the given labels).
    data : Comparisons
        The candidates encoded against the fit's data (user -1: a new user).
    labels : pandas.Index
        The given row labels of the candidates.
    users : numpy.ndarray
        The id of the user who would judge each candidate (str).
    """

    frame: pd.DataFrame
    data: Comparisons
    labels: pd.Index
    users: np.ndarray

    @property
    def size(self) -> int:
        return len(self.frame)

    @property
    def new_user(self) -> np.ndarray:
        """True where a candidate's judge is a user the fit has not seen."""
        return np.asarray(self.data.user) < 0


def roles(data: Comparisons) -> dict:
    """Column of each role (a, b, outcome, user, prompt) of the data's long frame."""
    return dict(data._spec.roles)


def _as_frame(candidates, what: str) -> pd.DataFrame:
    if isinstance(candidates, Comparisons):
        return candidates.frame.reset_index(drop=True)
    if not isinstance(candidates, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame of comparisons (columns as in the training frame, "
                        f"e.g. a, b[, user]); got {type(candidates).__name__}.")
    if len(candidates) == 0:
        raise DataError(f"{what} is empty: the candidate pool needs at least one comparison (rows with the "
                        "option ids a and b in the training frame's columns).")
    return candidates


def prepare(fit, candidates, user_covariates=None, *, features: pd.DataFrame | None = None,
            what: str = "candidates") -> Pool:
    """Validate and encode a candidate pool against ``fit.data`` (see the module docstring).

    ``features``: an option table (indexed by option id) for options the fit never saw, when the
    data read option features from a table.

    Raises
    ------
    DataError
        An empty pool; a frame without the option columns; options the model cannot predict (it
        estimates a worth per option, or the options' features are missing); users the fit has not
        seen whose covariates are not given when the model needs them.
    """
    if not isinstance(fit.data, Comparisons):
        raise DataError(f"bayespref.design scores paired comparisons, but this fit's data are "
                        f"{type(fit.data).__name__}; fit the model to a Comparisons (pairs) to design judgements.")
    attrs = dict(getattr(candidates, "attrs", {}) or {})
    frame = _as_frame(candidates, what).copy()
    if features is None:  # synthetic pairs (one_factor_pairs) carry their options' table
        features = attrs.get("option_features")
    if user_covariates is None:
        user_covariates = attrs.get("user_covariates")
    data = fit.data
    r = roles(data)
    labels = frame.index
    frame = frame.reset_index(drop=True)
    missing = [r[k] for k in ("a", "b") if r[k] not in frame.columns]
    if missing and data._spec.to_long is None:
        raise DataError(f"{what}: the columns {missing} (the option ids, as in the training frame) are missing; "
                        f"columns given: {list(frame.columns)}.")
    cov = user_covariates
    if r["user"] is not None and r["user"] not in frame.columns and data._spec.to_long is None:
        frame, cov = _judges_from_covariates(frame, data, r["user"], user_covariates)
    if r["prompt"] is not None and r["prompt"] not in frame.columns and data._spec.to_long is None:
        frame[r["prompt"]] = "__new"
    if r["outcome"] is not None and r["outcome"] in frame.columns:
        frame = frame.drop(columns=r["outcome"])
    try:
        enc = data.encode(frame, user_covariates=cov, features=features)
    except DataError as exc:
        raise DataError(f"{what}: {exc}") from None
    if fit.model.uses_worths(data):
        bad = (np.asarray(enc.a) < 0) | (np.asarray(enc.b) < 0)
        if bad.any():
            opts = pd.unique(pd.concat([enc.frame[r["a"]][np.asarray(enc.a) < 0],
                                        enc.frame[r["b"]][np.asarray(enc.b) < 0]]).astype(str))
            raise DataError(
                f"{what}: rows {list(labels[np.flatnonzero(bad)][:5])} name options the fit never saw "
                f"({list(opts[:5])}); the model estimates a worth per option, so it cannot say what judging "
                "them would teach. Remove those rows, or fit a features-only model (worths=False) whose "
                "options are described by their features.")
    users = (enc.frame[r["user"]].astype(str).to_numpy() if r["user"] is not None and r["user"] in enc.frame
             else np.full(len(frame), NEW_USER, dtype=object))
    return Pool(frame, enc, labels, np.asarray(users, dtype=str))


def _judges_from_covariates(frame, data, user_col, user_covariates):
    """A user column for candidates that name no user: new users of the population, or of the group
    given by the frame's covariate columns (one new user id per combination of their values)."""
    table = data.user_table
    cols = [] if table is None else [c for c in table.columns]
    if cols and all(c in frame.columns for c in cols):
        keys = frame[cols].astype(str).apply(lambda row: ",".join(f"{c}={v}" for c, v in row.items()), axis=1)
        ids = (NEW_USER + "[" + keys + "]").to_numpy()
        frame[user_col] = ids
        if user_covariates is None:
            cov = frame[cols].set_axis(ids).loc[~pd.Index(ids).duplicated()]
            cov.index.name = table.index.name
            return frame, cov.astype({c: table[c].dtype for c in cols})
        return frame, user_covariates
    frame[user_col] = NEW_USER
    return frame, user_covariates


def judged(fit, pool: Pool) -> np.ndarray:
    """True for candidates whose two options (either order) the fit's data already hold, judged by
    the same user when the candidate names a training user (by anyone when it names a new user)."""
    data = fit.data
    a, b = np.asarray(data.a), np.asarray(data.b)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    ca, cb = np.asarray(pool.data.a), np.asarray(pool.data.b)
    clo, chi = np.minimum(ca, cb), np.maximum(ca, cb)
    known = (ca >= 0) & (cb >= 0)
    seen_any = pd.MultiIndex.from_arrays([lo, hi])
    by_user = pd.MultiIndex.from_arrays([lo, hi, np.asarray(data.user)])
    cu = np.asarray(pool.data.user)
    out = np.where(cu >= 0, pd.MultiIndex.from_arrays([clo, chi, cu]).isin(by_user),
                   pd.MultiIndex.from_arrays([clo, chi]).isin(seen_any))
    return out & known


def profile_comparisons(fit, fa: pd.DataFrame, fb: pd.DataFrame, *, prefix: str = "__profile",
                        extra: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Comparisons of new options with the feature rows ``fa`` (option ``a``) and ``fb`` (``b``).

    Returns ``(frame, option_table)`` in the fit's data layout: per-comparison ``<f>_a``/``<f>_b``
    columns (table None), or an option table indexed by the new ids when the data read features
    from a table. Features of the data that ``fa`` lacks are set equal (0) for both options.
    ``extra``: more columns of the frame (e.g. the user).
    """
    data = fit.data
    spec = data._spec
    r = roles(data)
    n = len(fa)
    ida = np.array([f"{prefix}{i}:a" for i in range(n)], dtype=object)
    idb = np.array([f"{prefix}{i}:b" for i in range(n)], dtype=object)
    frame = pd.DataFrame({r["a"]: ida, r["b"]: idb})
    for k, v in (extra or {}).items():
        frame[k] = v
    if spec.feature_mode == "columns":
        sa, sb = spec.suffixes
        for name, col in zip(data.feature_names, spec.feature_columns):
            frame[f"{col}{sa}"] = fa[name].to_numpy(float) if name in fa else 0.0
            frame[f"{col}{sb}"] = fb[name].to_numpy(float) if name in fb else 0.0
        return frame, None
    if spec.feature_mode == "table":
        cols = list(spec.feature_columns)
        full_a = pd.DataFrame(0.0, index=ida, columns=cols)
        full_b = pd.DataFrame(0.0, index=idb, columns=cols)
        for name, col in zip(data.feature_names, cols):
            if name in fa:
                full_a[col] = fa[name].to_numpy(float)
                full_b[col] = fb[name].to_numpy(float)
        return frame, pd.concat([full_a, full_b])
    raise DataError("Comparisons of new options need a model of option features; the fit's data have none.")


def option_profiles(fit) -> pd.DataFrame:
    """The observed feature profiles of the fit's options (one row per option seen, the model's
    features), from the option table or the per-comparison columns (both options of every row)."""
    data = fit.data
    feats = list(fit.model.feature_names(data))
    idx = [list(data.feature_names).index(f) for f in feats]
    x = np.vstack([np.asarray(data.xa)[:, idx], np.asarray(data.xb)[:, idx]])
    opt = np.concatenate([np.asarray(data.a), np.asarray(data.b)])
    frame = pd.DataFrame(x, columns=feats)
    frame["__option"] = opt
    return frame.drop_duplicates().drop(columns="__option").reset_index(drop=True)
