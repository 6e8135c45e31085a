"""Rankings: three layouts read into the shown items of each ranking (:class:`Items`).

:class:`~bayespref.data.rankings.Rankings` validates and encodes what these readers return; they
only shape a layout and check what belongs to it:

* :func:`long_items`: one row per (ranking, shown item), a numeric ``rank`` (1 = best, smaller is
  better, equal = tied, gaps allowed); NaN = shown but not ranked, only with ``partial=True``.
* :func:`wide_items`: one row per ranking, the ``positions`` columns in rank order (first = best)
  holding option ids; missing cells only at the end; ``tie_sep`` joins the ids of a tie group in one
  cell; ``shown`` a column of lists of every shown id (those not ranked are shown but not ranked).
* :func:`score_items`: one row per rated response (k-wise ratings), one ranking per (user, group),
  ordered by score (higher is better by default), equal scores tied. Scores are checked as in
  :mod:`bayespref.data.readers.kwise`.

An item's ``key`` orders the ranking: smaller is better, equal keys are tied, NaN is "not ranked";
items appear in order of first appearance (the order of the arrays), which breaks ties in the
encoded ``items``. Columns that describe a whole ranking (user, prompt, ``keep=``) must be constant
within it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref.data.readers.kwise import _scores
from bayespref.data.readers.source import as_frame
from bayespref.data.validation import (
    _check_finite,
    _check_flat,
    _check_frame,
    _check_hashable,
    _check_ids,
    _features_from_columns,
    _fmt,
    _names_argument,
    _py,
    _require_columns,
    _rows,
)
from bayespref.errors import DataError


class Items(NamedTuple):
    """The shown items of R rankings, n in all, in order of first appearance."""

    ids: pd.Index                  # (R,) ranking ids
    ranking: np.ndarray            # (n,) int64: the ranking (position in ids) of each item
    option: pd.Series              # (n,) option labels
    key: np.ndarray                # (n,) float64: smaller = better, equal = tied, NaN = not ranked
    rows: pd.Index | None          # (n,) source row of each item (named in errors); None: rows are rankings
    user: pd.Series | None         # (R,) user labels
    prompt: pd.Series | None       # (R,) prompt labels
    kept: dict                     # column -> (R,) values copied into Rankings.frame
    x: np.ndarray | None           # (n, D) per-item features (features=[names]), None otherwise
    source: pd.DataFrame           # the rows that hold user covariate columns
    source_ranking: np.ndarray     # (len(source),) the ranking of each of those rows


# ---------------------------------------------------------------------------------------------
# one row per (ranking, item)
# ---------------------------------------------------------------------------------------------
def long_items(df: Any, *, ranking: Any, option: Any, rank: Any, user: Any, prompt: Any,
               features: tuple | None, partial: bool, keep: tuple, where: str) -> Items:
    _check_frame(df, where, "rankings", "errors name the rows by them")
    _check_flat(df, where)
    _check_flag(partial, "partial", where)
    names = features or ()
    _require_columns(df, {"ranking": ranking, "option": option, "rank": rank, "user": user, "prompt": prompt,
                          **_listed("features", names), **_listed("keep", keep)}, where,
                     required=("ranking", "option", "rank"))
    rid = _check_ids(df, ranking, "ranking", where)
    labels = _check_ids(df, option, "option", where)
    key = _ranks(df, rank, partial, where)
    codes, first = _groups(rid)
    ids = pd.Index(rid.iloc[first], name=ranking)
    per = {}
    for role, col in (("user", user), ("prompt", prompt)):
        if col is not None:
            _check_ids(df, col, role, where)
            per[role] = _per_ranking(df, col, role, codes, first, ids, where)
    kept = {c: _per_ranking(df, c, "keep=", codes, first, ids, where).to_numpy() for c in keep}
    x = _item_features(df, names, where) if features is not None else None  # features=[]: none (D = 0)
    return Items(ids=ids, ranking=codes, option=labels, key=key, rows=df.index, user=per.get("user"),
                 prompt=per.get("prompt"), kept=kept, x=x, source=df, source_ranking=codes)


def _ranks(df: pd.DataFrame, col: Any, partial: bool, where: str) -> np.ndarray:
    s = df[col]
    if ptypes.is_bool_dtype(s.dtype) or not ptypes.is_numeric_dtype(s.dtype):
        raise DataError(f"{where}: rank column {col!r} must hold numbers (1 = best, smaller is better, equal = "
                        f"tied), not dtype {s.dtype}; convert it with pd.to_numeric (strings and booleans are "
                        "not converted for you).")
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    na = np.isnan(v)
    if na.any() and not partial:
        raise DataError(f"{where}: rank column {col!r} has missing values (NaN) in {_rows(df.index, na)}. If "
                        "those items were shown but not ranked (the rest of a top-k ranking, the unchosen "
                        "items of a choice), pass partial=True; otherwise fill or remove them.")
    _check_finite(v[~na], f"rank column {col!r}", df.index[~na], where)
    return _exact_key(s, v)


def _exact_key(s: pd.Series, v: np.ndarray) -> np.ndarray:
    """Keys that order (and tie) like the values of column ``s`` (``v``: them as float64): ``v``
    itself, or for an integer column with values float64 cannot tell apart (beyond 2**53, e.g. 2**53
    and 2**53 + 1) their dense ranks, so that distinct integers are never tied."""
    if ptypes.is_integer_dtype(s.dtype) and (np.abs(v[~np.isnan(v)]) >= 2**53).any():
        return s.rank(method="dense").to_numpy(dtype=np.float64, na_value=np.nan)
    return v


# ---------------------------------------------------------------------------------------------
# one row per ranking, one column per position
# ---------------------------------------------------------------------------------------------
def wide_items(df: Any, *, positions: Any, user: Any, prompt: Any, shown: Any, tie_sep: Any,
               keep: tuple, where: str) -> Items:
    _check_frame(df, where, "rankings", "they become the ranking ids")
    _check_flat(df, where)
    positions = _names_argument(positions, "positions", where)
    if positions is None or not positions:
        raise DataError(f"{where}: positions={positions!r} names no columns; list the columns that hold the "
                        "option ids in rank order, best first (e.g. ['rank1', 'rank2', 'rank3']).")
    if tie_sep is not None and (not isinstance(tie_sep, str) or not tie_sep):
        raise DataError(f"{where}: tie_sep={tie_sep!r} must be a non-empty string (the text joining the ids "
                        "of a tie group in one cell, e.g. '=') or None.")
    _require_columns(df, {**_listed("positions", positions), "user": user, "prompt": prompt, "shown": shown,
                          **_listed("keep", keep)}, where)
    ids = df.index
    per = {role: _check_ids(df, col, role, where) for role, col in (("user", user), ("prompt", prompt))
           if col is not None}
    cells = df[list(positions)].to_numpy(dtype=object)
    na = pd.isna(cells)
    gap = na[:, :-1] & ~na[:, 1:]
    if gap.any():
        bad = gap.any(axis=1)
        r, p = np.argwhere(gap)[0]
        raise DataError(f"{where}: {int(bad.sum())} ranking(s) {_fmt(ids[bad])} have a missing position "
                        f"before a filled one (e.g. ranking {_py(ids[r])!r}: {positions[p]!r} is empty, "
                        f"{positions[p + 1]!r} is not). Missing cells may only end a shorter ranking: move "
                        "the ids up, or join tied ids in one cell with tie_sep=.")
    row, col = np.nonzero(~na)  # row-major: by ranking, then position
    values = pd.Series(cells[row, col], dtype=object)
    _check_hashable(values, f"the position columns {_fmt(positions, 8)}", where, labels=ids[row])
    if tie_sep is not None:
        parts = [v.split(tie_sep) if isinstance(v, str) and tie_sep in v else [v] for v in values]
        empty = np.fromiter((any(isinstance(q, str) and not q for q in pt) for pt in parts), bool, len(parts))
        if empty.any():
            raise DataError(f"{where}: cell(s) with an empty id around tie_sep={tie_sep!r} (e.g. "
                            f"{values[empty].iloc[0]!r}) in ranking(s) {_fmt(pd.unique(ids[row[empty]]))}. "
                            f"Join tied ids as 'A{tie_sep}B'.")
        sizes = np.fromiter((len(pt) for pt in parts), np.int64, len(parts))
        values = pd.Series([q for pt in parts for q in pt], dtype=object)
        row, col = np.repeat(row, sizes), np.repeat(col, sizes)
    key = col.astype(np.float64)
    if shown is not None:
        extra = _unranked(df[shown], shown, row, values, ids, where)
        row = np.concatenate([row, extra.index.to_numpy(dtype=np.int64)])
        key = np.concatenate([key, np.full(len(extra), np.nan)])
        values = pd.concat([values, pd.Series(extra.to_numpy(), dtype=object)], ignore_index=True)
    values = values.infer_objects()  # ids of one type keep it (int ids stay ints), as in a long frame
    for c in keep:  # values of a ranking, labels as in the other layouts (hashable)
        _check_hashable(df[c], f"column {c!r} (keep=)", where)
    kept = {c: df[c].to_numpy() for c in keep}
    return Items(ids=ids, ranking=row.astype(np.int64), option=values, key=key, rows=None, user=per.get("user"),
                 prompt=per.get("prompt"), kept=kept, x=None, source=df, source_ranking=np.arange(len(df)))


def _is_list(v: Any) -> bool:
    """A list of ids: a list, a tuple or a 1-d array (its items are checked as labels later; np.ndim
    would fail on a list holding a list)."""
    return isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim == 1)


def _unranked(cells: pd.Series, col: Any, row: np.ndarray, ranked: pd.Series, ids: pd.Index,
              where: str) -> pd.Series:
    """The shown ids of each ranking that are not ranked, in the order of its ``shown`` list; the
    Series is indexed by ranking position."""
    not_list = ~cells.map(_is_list).to_numpy(dtype=bool)
    if not_list.any():
        example = cells[not_list].iloc[0]
        raise DataError(f"{where}: column {col!r} (shown) must hold a list of the ids shown in each ranking; "
                        f"{int(not_list.sum())} ranking(s) {_fmt(ids[not_list])} hold something else (e.g. "
                        f"{example!r} of type {type(example).__name__}). Give every ranking its list, or leave "
                        "shown=None when every shown item is ranked.")
    sizes = cells.map(len).to_numpy(dtype=np.int64)
    flat = pd.Series([v for lst in cells for v in lst], dtype=object)
    at = np.repeat(np.arange(len(cells)), sizes)
    na = flat.isna().to_numpy()
    if na.any():
        raise DataError(f"{where}: column {col!r} (shown) has missing ids (NaN or None) in the lists of "
                        f"ranking(s) {_fmt(pd.unique(ids[at[na]]))}; list only the ids of shown options.")
    _check_hashable(flat, f"the lists of column {col!r} (shown)", where, labels=ids[at])
    shown_pairs = pd.MultiIndex.from_arrays([at, flat])
    twice = shown_pairs.duplicated()
    if twice.any():
        raise DataError(f"{where}: column {col!r} (shown) lists the same id more than once in "
                        f"{len(pd.unique(at[twice]))} ranking(s) {_fmt(pd.unique(ids[at[twice]]))} (e.g. "
                        f"{flat[twice].iloc[0]!r} in ranking {_py(ids[at[twice][0]])!r}). List each shown "
                        "option once (a tie is one cell joined with tie_sep=).")
    ranked_pairs = pd.MultiIndex.from_arrays([row, ranked])
    missing = ~ranked_pairs.isin(shown_pairs)
    if missing.any():
        raise DataError(f"{where}: ranked id(s) missing from the list in column {col!r} (shown): e.g. "
                        f"{ranked[missing].iloc[0]!r} in ranking {_py(ids[row[missing][0]])!r}; "
                        f"{len(pd.unique(row[missing]))} ranking(s) {_fmt(pd.unique(ids[row[missing]]))}. The "
                        "shown list holds every shown option, the ranked ones included.")
    rest = ~shown_pairs.isin(ranked_pairs)
    return pd.Series(flat[rest].to_numpy(), index=at[rest], dtype=object)


# ---------------------------------------------------------------------------------------------
# one row per rated response
# ---------------------------------------------------------------------------------------------
def score_items(source: Any, *, group: Any, option: Any, score: Any, user: Any, higher_is_better: bool,
                features: tuple | None, keep: tuple, where: str) -> Items:
    df = as_frame(source, where)
    _check_frame(df, where, "rankings", "errors name the rows by them, and the first row of each group is "
                 "its ranking id")
    _check_flat(df, where)
    _check_flag(higher_is_better, "higher_is_better", where)
    names = features or ()
    _require_columns(df, {"group": group, "option": option, "score": score, "user": user,
                          **_listed("features", names), **_listed("keep", keep)}, where,
                     required=("group", "option", "score"))
    labels = _check_ids(df, option, "option", where)
    prompt = _check_ids(df, group, "group", where)
    users = _check_ids(df, user, "user", where) if user is not None else None
    s = _exact_key(df[score], _scores(df, score, where))
    keys = [group] if user is None else [user, group]
    # numbered in order of first appearance (factorize: whatever order groupby numbers categorical keys in)
    codes, first = _groups(pd.Series(df.groupby(keys, sort=False, observed=True).ngroup().to_numpy()))
    ids = df.index[first]
    kept = {c: _per_ranking(df, c, "keep=", codes, first, ids, where).to_numpy() for c in keep}
    x = _item_features(df, names, where) if features is not None else None  # features=[]: none (D = 0)
    return Items(ids=ids, ranking=codes, option=labels, key=-s if higher_is_better else s, rows=df.index,
                 user=None if users is None else users.iloc[first], prompt=prompt.iloc[first], kept=kept, x=x,
                 source=df, source_ranking=codes)


# ---------------------------------------------------------------------------------------------
# shared
# ---------------------------------------------------------------------------------------------
def _item_features(df: pd.DataFrame, names: tuple, where: str) -> np.ndarray:
    """(n, len(names)) float64 per-item features from the columns named exactly ``names`` (checked to
    exist by ``_require_columns``): numeric and finite, and names distinct as text (the feature names,
    and the ``<name>_a`` / ``<name>_b`` columns of ``explode()``, are their text)."""
    if not names:
        return np.zeros((len(df), 0))
    text = pd.Series([str(n) for n in names])
    if text.duplicated().any():
        same = [n for n, t in zip(names, text) if t == text[text.duplicated()].iloc[0]]
        raise DataError(f"{where}: features= names {_fmt(same)} are the same as text ({str(same[0])!r}); a "
                        "feature is named by its column's text, so rename one of those columns.")
    return _features_from_columns(df.loc[:, list(names)].set_axis(list(text), axis=1), tuple(text), ("",),
                                  where)[0]


def _listed(role: str, names: tuple) -> dict:
    return {f"{role}[{i}]": c for i, c in enumerate(names)}


def _check_flag(value: Any, name: str, where: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(f"{where}: {name}={value!r} must be True or False.")


def _groups(labels: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``labels`` in order of first appearance, and the first row of each code."""
    codes = pd.factorize(labels)[0].astype(np.int64)
    return codes, np.unique(codes, return_index=True)[1]


def _per_ranking(df: pd.DataFrame, col: Any, what: str, codes: np.ndarray, first: np.ndarray,
                 ids: pd.Index, where: str) -> pd.Series:
    """The value of column ``col`` for each ranking, which must be the same on all its rows."""
    s = df[col]
    _check_hashable(s, f"column {col!r} ({what})", where)
    varies = s.groupby(codes, sort=True).nunique(dropna=False).to_numpy() > 1
    if varies.any():
        raise DataError(f"{where}: column {col!r} ({what}) varies within {int(varies.sum())} ranking(s) "
                        f"{_fmt(ids[varies])}; it describes a whole ranking and must be the same on all of its "
                        "rows. Fix the data, or give those rankings different ids.")
    return s.iloc[first]
