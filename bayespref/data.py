"""Pairwise comparison data: one validated, encoded, immutable object.

:class:`Comparisons` is the single input of every model (see ``docs/data-contract.md``). It is built
once from a long pandas frame (one row per judgement) or through an adapter (counts, wide
psychometric tables, TRL and Arena formats), validated here and nowhere else, and encoded into
integer indices and float arrays. Every problem raises :class:`~bayespref.errors.DataError` naming
the column, the offending rows or ids, and the fix; nothing is dropped or coerced silently.

Conventions the models rely on
------------------------------
* ``a``, ``b``, ``user``, ``prompt``, ``y`` are ``int32`` arrays of length N; ``outcome`` is
  ``float64`` (1 = ``a`` preferred, 0 = ``b`` preferred, 0.5 = tie); ``y`` codes 1 / 0 / 2 (tie).
* ``xa``, ``xb`` are ``float64`` (N, D) and ``covariates`` is ``float64`` (U, P); D and P may be 0.
* ``comparison_covariates`` is ``float64`` (N, P): the covariate row of each comparison's user,
  which also covers users that are new in data encoded with :meth:`Comparisons.encode`.
* In encoded data (:meth:`Comparisons.encode`) an unknown option, user or prompt has index -1, and
  when no outcome was given ``outcome`` is NaN and ``y`` is -1. Nowhere else do these occur.
* Arrays are read-only; subsets keep the ``options``, ``users`` and ``prompts`` of their parent.
"""

from __future__ import annotations

import difflib
import functools
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref.errors import DataError, DataWarning

__all__ = ["Comparisons"]

_TIE = "tie"
_ARENA_WINNER = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
_SHOW = 5  # how many offending rows / ids an error message lists


# ---------------------------------------------------------------------------------------------
# message helpers
# ---------------------------------------------------------------------------------------------
def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _fmt(values: Any, k: int = _SHOW) -> str:
    """``[x, y, z] and 4 more``: the first ``k`` values of an error listing."""
    vals = list(values)
    shown = ", ".join(repr(_py(v)) for v in vals[:k])
    more = f" and {len(vals) - k} more" if len(vals) > k else ""
    return f"[{shown}]{more}"


def _distinct(s: pd.Series) -> list:
    """Distinct values of ``s`` for a message (unhashable values are listed as they come)."""
    try:
        return list(pd.unique(s.astype(object)))
    except TypeError:
        return list(s)


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    return f"{int(np.sum(mask))} row(s) {_fmt(index[np.asarray(mask, dtype=bool)])}"


def _suggest(name: Any, columns: pd.Index) -> str:
    names = {str(c): c for c in columns}
    close = difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(names[c]) for c in close)}?" if close else ""
    return f"{hint} The frame has columns {_fmt(columns, 12)}."


def _free_name(columns: pd.Index, name: str) -> str:
    """``name``, or ``name_``, ``name__``... : a column name not already in ``columns``."""
    while name in columns:
        name += "_"
    return name


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def _check_frame(df: Any, where: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}. "
                        "Wrap your data with pd.DataFrame(...).")
    if len(df) == 0:
        raise DataError(f"{where}: the frame is empty (0 rows); there are no comparisons to use.")
    if not df.index.is_unique:
        dup = df.index[df.index.duplicated()]
        raise DataError(f"{where}: the row labels (index) are not unique, e.g. {_fmt(pd.unique(dup))}; "
                        "they become the comparison ids. Use df.reset_index(drop=True).")


def _require_columns(df: pd.DataFrame, roles: dict[str, Any], where: str) -> None:
    """Every mapped column exists, and no column plays two roles."""
    seen: dict[Any, str] = {}
    for role, col in roles.items():
        if col is None:
            continue
        try:
            present = col in df.columns
        except TypeError:  # unhashable, e.g. a list passed as a column name
            present = False
        if not present:
            raise DataError(f"{where}: column {col!r} (given as {role}=) is not in the frame."
                            f"{_suggest(col, df.columns)} Pass the right column name as {role}=.")
        if col in seen:
            raise DataError(f"{where}: the same column {col!r} is mapped to both {seen[col]} and "
                            f"{role}; each role needs its own column.")
        seen[col] = role


def _check_ids(df: pd.DataFrame, col: Any, role: str, where: str) -> pd.Series:
    s = df[col]
    na = s.isna().to_numpy()
    if na.any():
        raise DataError(f"{where}: column {col!r} ({role} ids) has missing values (NaN) in "
                        f"{_rows(df.index, na)}. Ids are never dropped or guessed: remove or fill "
                        "those rows first.")
    return s


def _parse_outcome(s: pd.Series, col: Any, where: str) -> np.ndarray:
    """Outcomes as float64 1 / 0 / 0.5 from 0, 0.5, 1, ``"tie"`` or booleans; anything else fails."""
    na = s.isna().to_numpy()
    if na.any():
        raise DataError(f"{where}: column {col!r} (outcome) has missing values (NaN) in "
                        f"{_rows(s.index, na)}. Outcomes are never dropped silently: remove those "
                        f"rows (df.dropna(subset=[{col!r}])) or code them (0.5 or 'tie' = no preference).")
    if ptypes.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64)
    if ptypes.is_numeric_dtype(s.dtype):
        val = s.to_numpy(dtype=np.float64)
    else:  # object / string / category: "tie" strings and Python numbers or booleans
        obj = s.astype(object)
        is_str = obj.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        val = np.full(len(s), np.nan)
        val[is_str & (obj == _TIE).to_numpy(dtype=bool)] = 0.5
        if (~is_str).any():
            num = pd.to_numeric(obj[~is_str], errors="coerce")
            val[~is_str] = num.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(val, (0.0, 0.5, 1.0))
    if bad.any():
        raise DataError(f"{where}: column {col!r} (outcome) has values outside {{0, 0.5, 1, 'tie', "
                        f"True, False}}: {_fmt(_distinct(s[bad]))} in "
                        f"{_rows(s.index, bad)}. Code 1 = a preferred, 0 = b preferred, 0.5 or 'tie' "
                        "= no preference; strings such as '1' are not converted, cast them first.")
    return val


def _sorted_index(values: pd.Series) -> pd.Index:
    """Sorted unique labels; mixed types (ints and strings) are sorted by their text."""
    uniq = pd.unique(values)
    try:
        return pd.Index(uniq).sort_values()
    except TypeError:
        uniq = np.asarray(uniq, dtype=object)
        keys = [(str(v), type(v).__name__) for v in uniq]  # loop over labels, not rows
        order = sorted(range(len(uniq)), key=keys.__getitem__)
        return pd.Index(uniq[order], dtype=object)


def _check_table(table: pd.DataFrame, ids: pd.Index, *, what: str, kind: str, where: str,
                 numeric: bool, allow_extra: bool = False) -> pd.DataFrame:
    """Validate a per-option / per-user table indexed by id; return it in ``ids`` order."""
    idx = table.index
    if idx.hasnans:
        raise DataError(f"{where}: the {what} table has missing (NaN) {kind} ids in its index; "
                        f"label every row with its {kind} id.")
    if not idx.is_unique:
        dup = pd.unique(idx[idx.duplicated()])
        raise DataError(f"{where}: the {what} table has duplicate rows for {kind}(s) {_fmt(dup)}; "
                        f"each {kind} needs exactly one row (e.g. table[~table.index.duplicated()]).")
    for c in table.columns:
        s = table[c]
        if numeric and not ptypes.is_numeric_dtype(s.dtype):
            raise DataError(f"{where}: column {c!r} of the {what} table is not numeric (dtype "
                            f"{s.dtype}); features must be numbers: convert it with astype(float) "
                            "or one-hot encode it (pd.get_dummies).")
        na = s.isna().to_numpy()
        if na.any():
            raise DataError(f"{where}: the {what} table has missing values (NaN) in column {c!r} "
                            f"for {kind}(s) {_fmt(idx[na])}. Fill or remove them; nothing is imputed.")
    missing = ids[~ids.isin(idx)]
    dtype_hint = (f" (the table index has dtype {idx.dtype}, the {kind} ids have dtype {ids.dtype})"
                  if not ids.isin(idx).any() else "")
    if len(missing):
        raise DataError(f"{where}: the {what} table has no row for {len(missing)} {kind}(s) that "
                        f"appear in the comparisons: {_fmt(missing)}{dtype_hint}. Add rows for them.")
    extra = idx[~idx.isin(ids)]
    if len(extra) and not allow_extra:
        raise DataError(f"{where}: the {what} table has rows for {len(extra)} unknown {kind} id(s) "
                        f"with no comparisons: {_fmt(extra)}. Keep only {kind}s that appear in the "
                        "data, e.g. table.loc[table.index.isin(ids)].")
    if allow_extra:
        return table
    out = table.iloc[idx.get_indexer(ids)]
    out.index = ids
    return out


def _features_from_columns(df: pd.DataFrame, names: tuple, suffixes: tuple[str, str],
                           where: str) -> tuple[np.ndarray, np.ndarray]:
    cols = [[f"{n}{suf}" for n in names] for suf in suffixes]
    missing = [c for c in cols[0] + cols[1] if c not in df.columns]
    if missing:
        raise DataError(f"{where}: features={list(names)!r} needs columns "
                        f"'<name>{suffixes[0]}' and '<name>{suffixes[1]}' for every feature; missing "
                        f"{_fmt(missing)}.{_suggest(missing[0], df.columns)} For features that belong "
                        "to options, pass a per-option DataFrame as features= instead.")
    for c in cols[0] + cols[1]:
        s = df[c]
        if not ptypes.is_numeric_dtype(s.dtype):
            raise DataError(f"{where}: feature column {c!r} is not numeric (dtype {s.dtype}); "
                            "convert it with astype(float) or one-hot encode it (pd.get_dummies).")
        na = s.isna().to_numpy()
        if na.any():
            raise DataError(f"{where}: feature column {c!r} has missing values (NaN) in "
                            f"{_rows(df.index, na)}. Fill or remove them; nothing is imputed.")
    return tuple(df[c].to_numpy(dtype=np.float64).reshape(len(df), len(names)) for c in cols)


def _table_lookup(table: pd.DataFrame, labels: pd.Series) -> np.ndarray:
    pos = table.index.get_indexer(labels)
    return table.to_numpy(dtype=np.float64)[pos].reshape(len(labels), table.shape[1])


def _covariate_columns(df: pd.DataFrame, cols: tuple, user_codes: np.ndarray, users: pd.Index,
                       where: str) -> pd.DataFrame:
    """Per-user table from covariate columns of ``df`` that must be constant within each user."""
    _require_columns(df, {f"user_covariates[{i}]": c for i, c in enumerate(cols)}, where)
    for c in cols:
        na = df[c].isna().to_numpy()
        if na.any():
            raise DataError(f"{where}: covariate column {c!r} has missing values (NaN) in "
                            f"{_rows(df.index, na)}. Fill or remove them; nothing is imputed.")
    grouped = df[list(cols)].groupby(user_codes, sort=True)
    nunique = grouped.nunique()
    for c in cols:
        varying = nunique.index[nunique[c].to_numpy() > 1]
        if len(varying):
            raise DataError(f"{where}: covariate column {c!r} varies within user(s) "
                            f"{_fmt(users[varying])}; a user covariate must be constant for each "
                            "user. Fix the data, or model it as a per-comparison feature.")
    table = grouped.first()
    table.index = users[table.index.to_numpy()]
    return table


def _design_spec(table: pd.DataFrame, where: str) -> tuple[tuple, tuple[str, ...]]:
    """How each covariate becomes design columns: numeric as is, categorical one-hot (first dropped)."""
    spec, names = [], []
    for c in table.columns:
        s = table[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            observed = set(pd.unique(s.astype(object)))
            levels = tuple(v for v in s.cat.categories if v in observed)  # declared order
        elif (ptypes.is_bool_dtype(s.dtype) or ptypes.is_object_dtype(s.dtype)
              or ptypes.is_string_dtype(s.dtype)):
            levels = tuple(_sorted_index(s.astype(object)))
        elif ptypes.is_numeric_dtype(s.dtype):
            spec.append((c, None))
            names.append(str(c))
            continue
        else:
            raise DataError(f"{where}: covariate {c!r} has dtype {s.dtype}, which is neither numeric "
                            "nor categorical; convert it to numbers or to strings/categories.")
        spec.append((c, levels))
        names.extend(f"{c}[{lv}]" for lv in levels[1:])
    return tuple(spec), tuple(names)


def _apply_design(table: pd.DataFrame, spec: tuple, where: str) -> np.ndarray:
    blocks = [np.zeros((len(table), 0))]
    for col, levels in spec:
        s = table[col]
        if levels is None:
            if ptypes.is_bool_dtype(s.dtype) or not ptypes.is_numeric_dtype(s.dtype):
                raise DataError(f"{where}: covariate {col!r} must be numeric as in the training data "
                                f"(got dtype {s.dtype}).")
            blocks.append(s.to_numpy(dtype=np.float64)[:, None])
            continue
        codes = pd.Index(levels, dtype=object).get_indexer(s.astype(object))
        if (codes < 0).any():
            bad = pd.unique(s[codes < 0].astype(object))
            raise DataError(f"{where}: covariate {col!r} has level(s) {_fmt(bad)} unseen in the "
                            f"training data (levels {_fmt(levels, 10)}) for user(s) "
                            f"{_fmt(table.index[codes < 0])}; the model has no effect for them.")
        blocks.append((codes[:, None] == np.arange(1, len(levels))).astype(np.float64))
    return np.hstack(blocks)


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Component label (smallest member) of each of ``n`` nodes: min-label propagation."""
    lab = np.arange(n)
    while True:
        m = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]  # pointer jumping: a node's label is a node of the same component
        if np.array_equal(new, lab):
            return lab
        lab = new


def _warn_if_disconnected(a: np.ndarray, b: np.ndarray, options: pd.Index) -> None:
    _, comp = np.unique(_components(a, b, len(options)), return_inverse=True)
    k = int(comp.max()) + 1
    if k == 1:
        return
    parts = []
    for c in range(min(k, 4)):
        members = options[comp == c]
        more = ", ..." if len(members) > 6 else ""
        parts.append("{" + ", ".join(str(m) for m in members[:6]) + more + "}")
    more = f" | ... ({k - 4} more)" if k > 4 else ""
    warnings.warn(f"The comparison graph is disconnected: {k} components: {' | '.join(parts)}{more}. "
                  "Priors make the model fittable, but only differences within a component are "
                  "identified (worths in different components are not comparable). Collect "
                  "comparisons that link the components, or model options through shared features.",
                  DataWarning, stacklevel=4)


def _positions(rows: Any, n: int) -> np.ndarray:
    arr = np.asarray(rows)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise DataError(f"subset: a boolean mask needs one value per comparison ({n}), "
                            f"got shape {arr.shape}.")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError("subset: rows must be a boolean mask or integer positions, got "
                        f"{arr.dtype} with shape {arr.shape}.")
    if arr.min() < 0 or arr.max() >= n:
        raise DataError(f"subset: positions must lie in [0, {n}); got {_fmt(arr[(arr < 0) | (arr >= n)])}.")
    return arr.astype(np.int64)


def _n_test(test_size: float | int, n: int, what: str) -> int:
    """How many of ``n`` groups go to the test side."""
    if n < 2:
        raise DataError(f"Cannot split by {what}: the data have only {n} {what}(s).")
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        k = int(test_size)
    elif isinstance(test_size, float) and 0 < test_size < 1:
        k = min(max(int(round(test_size * n)), 1), n - 1)
    else:
        raise DataError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}.")
    if not 1 <= k <= n - 1:
        raise DataError(f"test_size={test_size!r} leaves no {what} on one side: there are {n} "
                        f"{what}s; ask for between 1 and {n - 1}.")
    return k


# ---------------------------------------------------------------------------------------------
# adapters: raw formats -> long frame (also re-applied by Comparisons.encode)
# ---------------------------------------------------------------------------------------------
def _counts_long(df, *, a, b, wins_a, wins_b, ties, user, prompt, require_outcome=True):
    where = "Comparisons.from_counts"
    _check_frame(df, where)
    counts = {"wins_a": wins_a, "wins_b": wins_b, "ties": ties}
    _require_columns(df, {"a": a, "b": b, **counts}, where)
    n = {}
    for role, col in counts.items():
        if col is None:
            n[role] = np.zeros(len(df), dtype=np.int64)
            continue
        s = df[col]
        if not ptypes.is_numeric_dtype(s.dtype) or ptypes.is_bool_dtype(s.dtype):
            raise DataError(f"{where}: count column {col!r} ({role}=) is not numeric (dtype {s.dtype}).")
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(v) | (v < 0) | (v != np.round(v))
        if bad.any():
            raise DataError(f"{where}: count column {col!r} ({role}=) must hold non-negative whole "
                            f"numbers; found {_fmt(_distinct(s[bad]))} in {_rows(df.index, bad)}.")
        n[role] = v.astype(np.int64)
    total = n["wins_a"] + n["wins_b"] + n["ties"]
    if total.sum() == 0:
        raise DataError(f"{where}: all counts are zero; there are no judgements.")
    src = np.concatenate([np.repeat(np.arange(len(df)), n[r]) for r in ("wins_a", "wins_b", "ties")])
    kind = np.concatenate([np.full(n[r].sum(), i) for i, r in enumerate(("wins_a", "wins_b", "ties"))])
    order = np.lexsort((kind, src))  # by source row, then a-wins, b-wins, ties
    src, kind = src[order], kind[order]
    within = np.arange(len(src)) - (np.cumsum(total) - total)[src]
    long = df.iloc[src].copy()
    out = _free_name(df.columns, "outcome")
    long[out] = np.array([1.0, 0.0, 0.5])[kind]
    ids = (pd.Series(df.index[src].astype(str), dtype=object) + ":"
           + pd.Series(within.astype(str), dtype=object))
    long.index = pd.Index(ids.to_numpy(dtype=object))
    return long, {"a": a, "b": b, "outcome": out, "user": user, "prompt": prompt}


def _wide_long(df, *, subject, pairs, sep, coding, covariates, missing, require_outcome=True):
    where = "Comparisons.from_wide"
    _check_frame(df, where)
    covariates = tuple([covariates] if isinstance(covariates, str) else covariates or ())
    cov_roles = {f"covariates[{i}]": c for i, c in enumerate(covariates)}
    _require_columns(df, {"subject": subject, **cov_roles}, where)
    if missing not in ("error", "drop"):
        raise DataError(f"{where}: missing must be 'error' or 'drop', got {missing!r}.")
    if pairs is None:
        pairs = [c for c in df.columns
                 if isinstance(c, str) and sep in c and c != subject and c not in covariates]
        if not pairs:
            raise DataError(f"{where}: no pair columns found (columns named 'A{sep}B'); pass pairs=[...] "
                            f"or the right sep=.{_suggest(f'A{sep}B', df.columns)}")
    pairs = list(pairs)
    _require_columns(df, {f"pairs[{i}]": c for i, c in enumerate(pairs)}, where)
    split = [str(c).split(sep) for c in pairs]  # loop over columns, not rows
    bad = [c for c, s in zip(pairs, split) if len(s) != 2 or "" in s or s[0] == s[1]]
    if bad:
        raise DataError(f"{where}: pair columns must be named 'A{sep}B' with two different options; "
                        f"cannot read {_fmt(bad)}. Rename them or pass sep=.")
    subj = df[subject]
    if subj.duplicated().any():
        raise DataError(f"{where}: subject column {subject!r} has duplicate ids "
                        f"{_fmt(pd.unique(subj[subj.duplicated()]))}; a wide table has one row per subject.")
    n_s, n_p = len(df), len(pairs)
    values = pd.Series(df[pairs].to_numpy(dtype=object).ravel())
    row = np.repeat(np.arange(n_s), n_p)
    col = np.tile(np.arange(n_p), n_s)

    def where_cell(mask):  # "(subject, pair)" of the first few flagged cells
        cells = zip(row[mask][:_SHOW], col[mask][:_SHOW])
        return ", ".join(f"({_py(subj.iloc[r])!r}, {pairs[c]!r})" for r, c in cells)

    na = values.isna().to_numpy()
    if na.any() and missing == "error":
        raise DataError(f"{where}: {int(na.sum())} missing cell(s) (NaN) in the pair columns, e.g. "
                        f"(subject, pair) {where_cell(na)}. Pass missing='drop' to skip missing "
                        "comparisons (the only thing bayespref ever skips, and only when asked).")
    coded = values.map(coding)
    bad = coded.isna().to_numpy() & ~na
    if bad.any():
        raise DataError(f"{where}: values {_fmt(_distinct(values[bad]))} are not in coding "
                        f"{coding!r}, at (subject, pair) {where_cell(bad)}. Extend coding= or fix them.")
    keep = ~na
    cols = pd.Index([subject, *covariates])
    a_name, b_name = _free_name(cols, "a"), _free_name(cols, "b")
    out = _free_name(cols, "outcome")
    long = df[list(cols)].iloc[row[keep]].reset_index(drop=True)
    long[a_name] = np.array([s[0] for s in split], dtype=object)[col[keep]]
    long[b_name] = np.array([s[1] for s in split], dtype=object)[col[keep]]
    long[out] = coded[keep].infer_objects().to_numpy()  # validated by from_frame like any outcome
    ids = pd.Series(subj.iloc[row[keep]].astype(str).to_numpy(dtype=object)) + "|" + \
        pd.Series(np.array(pairs, dtype=object)[col[keep]].astype(str), dtype=object)
    long.index = pd.Index(ids.to_numpy(dtype=object))
    return long, {"a": a_name, "b": b_name, "outcome": out, "user": subject, "prompt": None}


def _trl_long(df, *, prompt, chosen, rejected, user, require_outcome=True):
    _check_frame(df, "Comparisons.from_trl")
    long = df.copy()
    out = _free_name(df.columns, "outcome")
    long[out] = 1.0
    return long, {"a": chosen, "b": rejected, "outcome": out, "user": user, "prompt": prompt}


def _arena_long(df, *, model_a, model_b, winner, judge, prompt, require_outcome=True):
    where = "Comparisons.from_arena"
    _check_frame(df, where)
    long = df.copy()
    out = _free_name(df.columns, "outcome")
    roles = {"a": model_a, "b": model_b, "outcome": out, "user": judge, "prompt": prompt}
    if not require_outcome and winner not in df.columns:
        return long, {**roles, "outcome": None}
    _require_columns(df, {"winner": winner}, where)
    w = df[winner]
    na = w.isna().to_numpy()
    if na.any():
        raise DataError(f"{where}: column {winner!r} (winner) has missing values in "
                        f"{_rows(df.index, na)}; remove or fill those rows.")
    coded = w.astype(object).map(_ARENA_WINNER).to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(coded)
    if bad.any():
        raise DataError(f"{where}: column {winner!r} (winner) has unknown values "
                        f"{_fmt(_distinct(w[bad]))} in {_rows(df.index, bad)}; "
                        f"allowed: {list(_ARENA_WINNER)}.")
    long[out] = coded
    return long, roles


# ---------------------------------------------------------------------------------------------
# the object
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """How a Comparisons was read, so that :meth:`Comparisons.encode` reads new data the same way."""

    roles: dict                       # role -> column of the long frame (a, b, outcome, user, prompt)
    suffixes: tuple = ("_a", "_b")    # suffixes of per-comparison feature columns
    feature_mode: str | None = None   # "columns" | "table" | None
    feature_columns: tuple = ()       # feature names (columns mode) or table columns (table mode)
    covariate_mode: str | None = None  # "columns" | "table" | None
    covariate_columns: tuple = ()     # raw covariate columns
    design: tuple = ()                # ((column, levels or None), ...)
    to_long: Callable | None = None   # adapter re-applied by encode


@dataclass(frozen=True, eq=False, repr=False)
class Comparisons:
    """Validated, encoded paired-comparison data (see ``docs/data-contract.md``).

    Build it with :meth:`from_frame` or an adapter (:meth:`from_counts`, :meth:`from_wide`,
    :meth:`from_trl`, :meth:`from_arena`), never with the constructor. Arrays are read-only.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": ["x", "y", "x"], "b": ["y", "z", "z"], "outcome": [1, 0, "tie"]})
    >>> data = Comparisons.from_frame(df)
    >>> list(data.options), data.a.tolist(), data.b.tolist(), data.y.tolist()
    (['x', 'y', 'z'], [0, 1, 0], [1, 2, 2], [1, 0, 2])
    """

    frame: pd.DataFrame
    a: np.ndarray
    b: np.ndarray
    user: np.ndarray
    prompt: np.ndarray | None
    outcome: np.ndarray
    y: np.ndarray
    xa: np.ndarray
    xb: np.ndarray
    covariates: np.ndarray
    comparison_covariates: np.ndarray
    options: pd.Index
    users: pd.Index
    prompts: pd.Index | None
    feature_names: tuple[str, ...]
    covariate_names: tuple[str, ...]
    comparison_ids: pd.Index
    option_features: pd.DataFrame | None
    user_table: pd.DataFrame | None
    has_ties: bool
    _spec: _Spec = field(repr=False)

    def __post_init__(self):
        for v in vars(self).values():
            if isinstance(v, np.ndarray):
                v.flags.writeable = False

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def n_comparisons(self) -> int:
        return int(self.a.shape[0])

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_prompts(self) -> int:
        return 0 if self.prompts is None else len(self.prompts)

    @property
    def n_features(self) -> int:
        return int(self.xa.shape[1])

    @property
    def n_covariates(self) -> int:
        return int(self.covariates.shape[1])

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, df: pd.DataFrame, a: Hashable = "a", b: Hashable = "b",
                   outcome: Hashable = "outcome", user: Hashable | None = None,
                   prompt: Hashable | None = None, features: list | pd.DataFrame | None = None,
                   user_covariates: list | pd.DataFrame | None = None, *,
                   check_connected: bool = True) -> Comparisons:
        """Validate and encode a long frame (one row per judgement).

        Parameters
        ----------
        df : DataFrame
            One row per judgement; its row labels become ``comparison_ids`` (must be unique).
        a, b : column names
            Ids of the first (shown first) and second option.
        outcome : column name
            1 = ``a`` preferred, 0 = ``b`` preferred, 0.5 or ``"tie"`` = no preference; booleans
            (True = ``a``) are accepted. Anything else, NaN included, is a ``DataError``.
        user, prompt : column names, optional
            Annotator and prompt ids. Without ``user`` every row belongs to the user ``"all"``.
        features : list of names or DataFrame, optional
            Names ``f`` with ``f_a`` / ``f_b`` columns in ``df``, or a numeric table indexed by
            option id holding exactly the compared options.
        user_covariates : list of names or DataFrame, optional
            Columns of ``df`` constant within each user, or a table indexed by user id holding
            exactly the users of the data. Numeric columns enter the design as given; bool, string,
            object and category columns are one-hot coded with the first level dropped
            (``"col[level]"``; levels sorted, or in declared order for a category dtype).
        check_connected : bool
            Warn (``DataWarning``) when the comparison graph has several components.

        Examples
        --------
        >>> df = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "outcome": [1, 0],
        ...                    "len_a": [3.0, 5.0], "len_b": [5.0, 2.0]})
        >>> Comparisons.from_frame(df, features=["len"]).xa.tolist()
        [[3.0], [5.0]]
        """
        roles = {"a": a, "b": b, "outcome": outcome, "user": user, "prompt": prompt}
        return cls._from_long(df, roles, features=features, user_covariates=user_covariates,
                              check_connected=check_connected)

    @classmethod
    def _from_long(cls, df, roles, *, features=None, user_covariates=None, suffixes=("_a", "_b"),
                   to_long=None, check_connected=True, where="Comparisons.from_frame"):
        _check_frame(df, where)
        _require_columns(df, roles, where)
        labels = _id_columns(df, roles, where)
        outcome = _parse_outcome(df[roles["outcome"]], roles["outcome"], where)
        a_lab, b_lab = labels["a"], labels["b"]
        options = _sorted_index(pd.concat([a_lab, b_lab], ignore_index=True))
        if len(options) < 2:
            raise DataError(f"{where}: only one distinct option ({_py(options[0])!r}) appears in columns "
                            f"{roles['a']!r}/{roles['b']!r}; comparisons need at least two options.")
        a_idx, b_idx = options.get_indexer(a_lab), options.get_indexer(b_lab)
        same = a_idx == b_idx
        if same.any():
            raise DataError(f"{where}: {_rows(df.index, same)} compare an option with itself "
                            f"(a == b, e.g. {_py(a_lab[same].iloc[0])!r}); remove them, a comparison "
                            "needs two different options.")
        if roles["user"] is not None:
            users = _sorted_index(labels["user"])
            user_idx = users.get_indexer(labels["user"])
        else:
            users, user_idx = pd.Index(["all"]), np.zeros(len(df), dtype=np.int64)
        prompts = prompt_idx = None
        if roles["prompt"] is not None:
            prompts = _sorted_index(labels["prompt"])
            prompt_idx = prompts.get_indexer(labels["prompt"]).astype(np.int32)

        option_features, feature_cols = None, {}
        spec = {"roles": dict(roles), "suffixes": tuple(suffixes), "to_long": to_long}
        if features is None:
            xa = xb = np.zeros((len(df), 0))
            feature_names = ()
        elif isinstance(features, pd.DataFrame):
            option_features = _check_table(features, options, what="option feature", kind="option",
                                           where=where, numeric=True).astype(np.float64)
            xa, xb = _table_lookup(option_features, a_lab), _table_lookup(option_features, b_lab)
            feature_names = tuple(str(c) for c in features.columns)
            spec.update(feature_mode="table", feature_columns=tuple(features.columns))
        elif isinstance(features, (list, tuple, str)):
            names = (features,) if isinstance(features, str) else tuple(features)
            xa, xb = _features_from_columns(df, names, suffixes, where)
            feature_names = tuple(str(n) for n in names)
            feature_cols = _feature_frame_columns(feature_names, xa, xb)
            spec.update(feature_mode="columns", feature_columns=names)
        else:
            raise DataError(f"{where}: features must be a list of names (with '<name>_a'/'<name>_b' "
                            "columns) or a DataFrame indexed by option id; got "
                            f"{type(features).__name__}.")

        if user_covariates is None:
            user_table, design, covariate_names = None, (), ()
        else:
            if isinstance(user_covariates, pd.DataFrame):
                user_table = _check_table(user_covariates, users, what="user covariate", kind="user",
                                          where=where, numeric=False)
                spec.update(covariate_mode="table")
            elif isinstance(user_covariates, (list, tuple, str)):
                cols = (user_covariates,) if isinstance(user_covariates, str) else tuple(user_covariates)
                user_table = _covariate_columns(df, cols, user_idx, users, where)
                spec.update(covariate_mode="columns")
            else:
                raise DataError(f"{where}: user_covariates must be a list of column names or a "
                                "DataFrame indexed by user id; got "
                                f"{type(user_covariates).__name__}.")
            design, covariate_names = _design_spec(user_table, where)
            spec.update(covariate_columns=tuple(user_table.columns), design=design)
        covariates = (_apply_design(user_table, design, where) if user_table is not None
                      else np.zeros((len(users), 0)))

        frame = _frame(df.index, labels, outcome, feature_cols)
        out = cls(frame=frame, a=a_idx.astype(np.int32), b=b_idx.astype(np.int32),
                  user=user_idx.astype(np.int32), prompt=prompt_idx, outcome=outcome,
                  y=_y(outcome), xa=xa, xb=xb, covariates=covariates,
                  comparison_covariates=covariates[user_idx], options=options, users=users,
                  prompts=prompts, feature_names=feature_names, covariate_names=covariate_names,
                  comparison_ids=df.index, option_features=option_features, user_table=user_table,
                  has_ties=bool(np.any(outcome == 0.5)), _spec=_Spec(**spec))
        if check_connected:
            _warn_if_disconnected(out.a, out.b, options)
        return out

    @classmethod
    def from_counts(cls, df: pd.DataFrame, a: Hashable = "a", b: Hashable = "b",
                    wins_a: Hashable = "wins_a", wins_b: Hashable = "wins_b",
                    ties: Hashable | None = None, **from_frame_kwargs) -> Comparisons:
        """Expand a count table (wins per ordered pair, optional ties) into one row per judgement.

        Rows are ordered by source row, then ``a`` wins, ``b`` wins, ties; comparison ids are
        ``"<source row label>:<k>"`` with ``k`` counting the judgements of that source row. Other
        columns (user, prompt, ``f_a``/``f_b``) are repeated; ``from_frame_kwargs`` go to
        :meth:`from_frame` (``user=``, ``prompt=``, ``features=``, ``user_covariates=``).

        Examples
        --------
        >>> counts = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "wins_a": [2, 0], "wins_b": [1, 1]})
        >>> data = Comparisons.from_counts(counts)
        >>> data.outcome.tolist(), list(data.comparison_ids)
        ([1.0, 1.0, 0.0, 0.0], ['0:0', '0:1', '0:2', '1:0'])
        """
        kw = {"user": from_frame_kwargs.pop("user", None), "prompt": from_frame_kwargs.pop("prompt", None)}
        to_long = functools.partial(_counts_long, a=a, b=b, wins_a=wins_a, wins_b=wins_b, ties=ties, **kw)
        long, roles = to_long(df)
        return cls._from_long(long, roles, to_long=to_long, where="Comparisons.from_counts",
                              **from_frame_kwargs)

    @classmethod
    def from_wide(cls, df: pd.DataFrame, subject: Hashable, pairs: list | None = None, sep: str = ":",
                  coding: dict | None = None, covariates: list | None = None,
                  missing: str = "error") -> Comparisons:
        """Read a psychometric wide table: one row per subject, one column ``"A:B"`` per pair.

        Cell values are mapped by ``coding`` (default ``{1: 1.0, -1: 0.0, 0: 0.5}``: 1 = A
        preferred, -1 = B preferred, 0 = tie). NaN cells are missing comparisons: with
        ``missing="error"`` (default) they raise, with ``missing="drop"`` they are skipped.
        ``covariates`` are subject-level columns. Subjects become users; comparison ids are
        ``"<subject>|<pair column>"``.

        Examples
        --------
        >>> wide = pd.DataFrame({"id": [1, 2], "x:y": [1, -1], "y:z": [0, 1]})
        >>> data = Comparisons.from_wide(wide, subject="id")
        >>> data.outcome.tolist(), list(data.comparison_ids)
        ([1.0, 0.5, 0.0, 1.0], ['1|x:y', '1|y:z', '2|x:y', '2|y:z'])
        """
        coding = {1: 1.0, -1: 0.0, 0: 0.5} if coding is None else dict(coding)
        to_long = functools.partial(_wide_long, subject=subject, pairs=pairs, sep=sep, coding=coding,
                                    covariates=covariates, missing=missing)
        long, roles = to_long(df)
        cov = None if not covariates else ([covariates] if isinstance(covariates, str) else list(covariates))
        return cls._from_long(long, roles, user_covariates=cov, to_long=to_long,
                              where="Comparisons.from_wide")

    @classmethod
    def from_trl(cls, df: pd.DataFrame, prompt: Hashable | None = "prompt", chosen: Hashable = "chosen",
                 rejected: Hashable = "rejected", user: Hashable | None = None,
                 features: list | None = None) -> Comparisons:
        """Read TRL-style preference data: ``a`` = chosen, ``b`` = rejected, outcome 1.

        Every outcome is 1, so a position (order) effect is not identified from such data. Feature
        ``f`` is read from ``f_chosen`` / ``f_rejected``. Response texts are usually unique, so the
        comparison graph is checked for connectivity only when no features are given.

        Examples
        --------
        >>> trl = pd.DataFrame({"prompt": ["p", "p"], "chosen": ["r1", "r2"], "rejected": ["r2", "r3"]})
        >>> Comparisons.from_trl(trl).a.tolist()
        [0, 1]
        """
        to_long = functools.partial(_trl_long, prompt=prompt, chosen=chosen, rejected=rejected, user=user)
        long, roles = to_long(df)
        return cls._from_long(long, roles, features=features, suffixes=("_chosen", "_rejected"),
                              to_long=to_long, check_connected=features is None, where="Comparisons.from_trl")

    @classmethod
    def from_arena(cls, df: pd.DataFrame, model_a: Hashable = "model_a", model_b: Hashable = "model_b",
                   winner: Hashable = "winner", judge: Hashable | None = None,
                   prompt: Hashable | None = None) -> Comparisons:
        """Read Chatbot-Arena-style battles; ``judge`` becomes the user.

        ``winner`` values: ``"model_a"`` → 1, ``"model_b"`` → 0, ``"tie"`` and
        ``"tie (bothbad)"`` → 0.5; anything else is a ``DataError``.

        Examples
        --------
        >>> arena = pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m3"],
        ...                       "winner": ["model_a", "tie (bothbad)"]})
        >>> Comparisons.from_arena(arena).outcome.tolist()
        [1.0, 0.5]
        """
        to_long = functools.partial(_arena_long, model_a=model_a, model_b=model_b, winner=winner,
                                    judge=judge, prompt=prompt)
        long, roles = to_long(df)
        return cls._from_long(long, roles, to_long=to_long, where="Comparisons.from_arena")

    # -- encoding new data ----------------------------------------------------------------------
    def encode(self, df: pd.DataFrame, a: Hashable | None = None, b: Hashable | None = None,
               outcome: Hashable | None = None, user: Hashable | None = None,
               prompt: Hashable | None = None, features: pd.DataFrame | None = None,
               user_covariates: pd.DataFrame | list | None = None) -> Comparisons:
        """Encode a new frame against this object's options, users and prompts.

        By default the frame is read like the training data (same columns; data built by an
        adapter goes through the same adapter). Passing any of ``a``, ``b``, ``outcome``, ``user``,
        ``prompt`` reads it as a long frame with those columns instead. The result has the same
        ``options``/``users``/``prompts``/``covariates`` as ``self``; unknown users and prompts get
        index -1 (population level), unknown options get -1 when their features are available
        (``f_a``/``f_b`` columns, or a per-option table passed as ``features=``, whose rows take
        precedence over the training table). Without an outcome column, ``outcome`` is NaN and ``y``
        is -1. ``comparison_covariates`` holds each comparison's user covariates: passed
        ``user_covariates`` (table or columns) first, then the training values; new users without
        covariates raise.

        Examples
        --------
        >>> train = Comparisons.from_frame(pd.DataFrame(
        ...     {"a": ["x", "y"], "b": ["y", "z"], "outcome": [1, 0], "u": [1, 2]}), user="u")
        >>> new = train.encode(pd.DataFrame({"a": ["x"], "b": ["z"], "u": [3]}))
        >>> new.user.tolist(), new.y.tolist()
        ([-1], [-1])
        """
        where = "Comparisons.encode"
        spec = self._spec
        explicit = {"a": a, "b": b, "outcome": outcome, "user": user, "prompt": prompt}
        if spec.to_long is not None and all(v is None for v in explicit.values()):
            df, roles = spec.to_long(df, require_outcome=False)
        else:
            _check_frame(df, where)
            roles = {**spec.roles, **{k: v for k, v in explicit.items() if v is not None}}
        if outcome is None and roles["outcome"] is not None and roles["outcome"] not in df.columns:
            roles["outcome"] = None  # prediction: no outcomes
        if self.prompts is None:
            roles["prompt"] = None
        _check_frame(df, where)
        for role in ("user", "prompt"):
            if roles[role] is not None and roles[role] not in df.columns:
                raise DataError(f"{where}: column {roles[role]!r} ({role} ids, as in the training data) "
                                f"is not in the frame.{_suggest(roles[role], df.columns)} Pass {role}= "
                                f"to name it; for population-level predictions add a {role} column "
                                "with ids unseen in training (they get index -1).")
        _require_columns(df, roles, where)
        labels = _id_columns(df, roles, where)
        a_lab, b_lab = labels["a"], labels["b"]
        local = pd.factorize(pd.concat([a_lab, b_lab], ignore_index=True))[0]
        same = local[: len(df)] == local[len(df):]
        if same.any():
            raise DataError(f"{where}: {_rows(df.index, same)} compare an option with itself (a == b).")
        if roles["outcome"] is not None:
            out = _parse_outcome(df[roles["outcome"]], roles["outcome"], where)
        else:
            out = np.full(len(df), np.nan)
        a_idx, b_idx = self.options.get_indexer(a_lab), self.options.get_indexer(b_lab)
        unknown = pd.unique(pd.concat([a_lab[a_idx < 0], b_lab[b_idx < 0]]))
        xa, xb, feature_cols = self._encode_features(df, a_lab, b_lab, features, unknown, where)
        if roles["user"] is not None:
            u_lab = labels["user"]
            user_idx = self.users.get_indexer(u_lab)
        else:
            u_lab, user_idx = pd.Series("all", index=df.index), np.zeros(len(df), dtype=np.int64)
        ccov = self._encode_covariates(df, u_lab, user_covariates, where)
        prompt_idx = (None if self.prompts is None
                      else self.prompts.get_indexer(labels["prompt"]).astype(np.int32))
        frame = _frame(df.index, labels, out, feature_cols)
        return replace(self, frame=frame, a=a_idx.astype(np.int32), b=b_idx.astype(np.int32),
                       user=user_idx.astype(np.int32), prompt=prompt_idx, outcome=out, y=_y(out),
                       xa=xa, xb=xb, comparison_covariates=ccov, comparison_ids=df.index,
                       has_ties=bool(np.any(out == 0.5)))

    def _encode_features(self, df, a_lab, b_lab, features, unknown, where):
        spec, n, d = self._spec, len(df), self.n_features
        if features is not None and not isinstance(features, pd.DataFrame):
            raise DataError(f"{where}: features must be a DataFrame indexed by option id, got "
                            f"{type(features).__name__}.")
        if spec.feature_mode is None:
            if len(unknown):
                raise DataError(f"{where}: unknown option(s) {_fmt(unknown)}; the training data have "
                                "no option features, so new options cannot be predicted.")
            return np.zeros((n, 0)), np.zeros((n, 0)), {}
        names = spec.feature_columns
        if spec.feature_mode == "columns" and features is None:
            xa, xb = _features_from_columns(df, names, spec.suffixes, where)
            return xa, xb, _feature_frame_columns(self.feature_names, xa, xb)
        base = [] if self.option_features is None else [self.option_features]
        if features is not None:
            cols = list(names) if spec.feature_mode == "table" else list(self.feature_names)
            missing = [c for c in cols if c not in features.columns]
            if missing:
                raise DataError(f"{where}: the option feature table lacks column(s) {_fmt(missing)} "
                                "used in training.")
            table = _check_table(features[cols], pd.Index([]), what="option feature", kind="option",
                                 where=where, numeric=True, allow_extra=True)
            table = table.set_axis(range(len(cols)), axis=1)
            base = [table] + [t.set_axis(range(d), axis=1) for t in base]
        lookup = pd.concat(base) if base else pd.DataFrame()
        lookup = lookup[~lookup.index.duplicated(keep="first")]
        absent = pd.unique(pd.concat([a_lab, b_lab])[~pd.concat([a_lab, b_lab]).isin(lookup.index)])
        if len(absent):
            raise DataError(f"{where}: no features for option(s) {_fmt(absent)} (unknown to the training "
                            "data); pass features=<table indexed by option id> with rows for them.")
        return _table_lookup(lookup, a_lab), _table_lookup(lookup, b_lab), {}

    def _encode_covariates(self, df, u_lab, user_covariates, where):
        spec = self._spec
        if not spec.design:
            return np.zeros((len(df), self.n_covariates))
        cols = list(spec.covariate_columns)
        codes, uniq = pd.factorize(u_lab)
        uniq = pd.Index(uniq)
        pieces = []  # per-user raw covariates, highest precedence first
        if isinstance(user_covariates, pd.DataFrame):
            missing = [c for c in cols if c not in user_covariates.columns]
            if missing:
                raise DataError(f"{where}: the user covariate table lacks column(s) {_fmt(missing)} "
                                "used in training.")
            pieces.append(_check_table(user_covariates[cols], pd.Index([]), what="user covariate",
                                       kind="user", where=where, numeric=False, allow_extra=True))
        elif isinstance(user_covariates, (list, tuple, str)):
            use = (user_covariates,) if isinstance(user_covariates, str) else tuple(user_covariates)
            if set(use) != set(cols):
                raise DataError(f"{where}: user_covariates must name the training covariate columns "
                                f"{_fmt(cols, 10)}, got {_fmt(use, 10)}.")
            pieces.append(_covariate_columns(df, tuple(cols), codes, uniq, where))
        elif user_covariates is None:
            if spec.covariate_mode == "columns" and all(c in df.columns for c in cols):
                pieces.append(_covariate_columns(df, tuple(cols), codes, uniq, where))
        else:
            raise DataError(f"{where}: user_covariates must be a DataFrame indexed by user id or a list "
                            f"of column names; got {type(user_covariates).__name__}.")
        designs = [pd.DataFrame(_apply_design(p[p.index.isin(uniq)], spec.design, where),
                                index=p.index[p.index.isin(uniq)]) for p in pieces]
        designs.append(pd.DataFrame(self.covariates, index=self.users))
        table = pd.concat(designs)
        table = table[~table.index.duplicated(keep="first")]
        pos = table.index.get_indexer(uniq)
        if (pos < 0).any():
            raise DataError(f"{where}: new user(s) {_fmt(uniq[pos < 0])} have no covariates; pass "
                            f"user_covariates=<table indexed by user id> with columns {_fmt(cols, 10)}.")
        return table.to_numpy(dtype=np.float64)[pos][codes].reshape(len(df), self.n_covariates)

    def to_arrays(self) -> dict[str, Any]:
        """The encoded arrays as a dict (``prompt`` omitted when there is no prompt column).

        Examples
        --------
        >>> data = Comparisons.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "outcome": [1, 0]}))
        >>> sorted(data.to_arrays())
        ['a', 'b', 'covariates', 'n_options', 'n_users', 'outcome', 'user', 'xa', 'xb', 'y']
        """
        out = {"a": self.a, "b": self.b, "user": self.user, "prompt": self.prompt,
               "outcome": self.outcome, "y": self.y, "xa": self.xa, "xb": self.xb,
               "covariates": self.covariates, "n_options": self.n_options, "n_users": self.n_users}
        if self.prompt is None:
            del out["prompt"]
        return out

    # -- subsets and splits ---------------------------------------------------------------------
    def subset(self, rows: Any) -> Comparisons:
        """The comparisons at ``rows`` (bool mask or integer positions), with the same label indexes.

        Examples
        --------
        >>> data = Comparisons.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "outcome": [1, 0]}))
        >>> sub = data.subset([1])
        >>> sub.n_comparisons, list(sub.options)
        (1, [1, 2, 3])
        """
        pos = _positions(rows, self.n_comparisons)
        take = lambda v: None if v is None else v[pos]
        return replace(self, frame=self.frame.iloc[pos], a=take(self.a), b=take(self.b),
                       user=take(self.user), prompt=take(self.prompt), outcome=take(self.outcome),
                       y=take(self.y), xa=take(self.xa), xb=take(self.xb),
                       comparison_covariates=take(self.comparison_covariates),
                       comparison_ids=self.comparison_ids[pos],
                       has_ties=bool(np.any(self.outcome[pos] == 0.5)))

    def _split(self, test: np.ndarray) -> tuple[Comparisons, Comparisons]:
        return self.subset(~test), self.subset(test)

    def _groups(self, by: str) -> np.ndarray:
        if by == "user":
            return self.user
        if by == "prompt":
            if self.prompt is None:
                raise DataError("Cannot split by prompt: the data have no prompt column "
                                "(Comparisons.from_frame(..., prompt=...)).")
            return self.prompt
        if by == "comparison":
            return np.arange(self.n_comparisons)
        raise DataError(f"by must be 'user', 'prompt' or 'comparison', got {by!r}.")

    def _split_by(self, by: str, test_size, seed) -> tuple[Comparisons, Comparisons]:
        codes = self._groups(by)
        groups = np.unique(codes)
        k = _n_test(test_size, len(groups), by)
        held = np.random.default_rng(seed).permutation(groups)[:k]
        return self._split(np.isin(codes, held))

    def split_by_user(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Comparisons, Comparisons]:
        """Hold out a random ``test_size`` share (or count) of users: ``(train, test)``.

        Examples
        --------
        >>> df = pd.DataFrame({"a": [1, 2, 1, 3], "b": [2, 3, 3, 2], "outcome": [1, 0, 1, 1],
        ...                    "u": ["p", "q", "r", "s"]})
        >>> train, test = Comparisons.from_frame(df, user="u").split_by_user(0.25, seed=1)
        >>> train.n_comparisons + test.n_comparisons, test.n_users
        (4, 4)
        """
        return self._split_by("user", test_size, seed)

    def split_by_prompt(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Comparisons, Comparisons]:
        """Hold out a random ``test_size`` share (or count) of prompts: ``(train, test)``."""
        return self._split_by("prompt", test_size, seed)

    def split_by_option(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Comparisons, Comparisons]:
        """Hold out options: test = every comparison involving a held-out option, train = the rest."""
        groups = np.unique(np.concatenate([self.a, self.b]))
        k = _n_test(test_size, len(groups), "option")
        held = np.random.default_rng(seed).permutation(groups)[:k]
        test = np.isin(self.a, held) | np.isin(self.b, held)
        if test.all():
            raise DataError(f"split_by_option: every comparison involves one of the {k} held-out "
                            "options, leaving no training data; lower test_size.")
        return self._split(test)

    def kfold(self, by: str = "user", k: int = 5, seed: int = 0) -> list[tuple[Comparisons, Comparisons]]:
        """``k`` (train, test) pairs whose test sets partition the groups (users, prompts, comparisons).

        Examples
        --------
        >>> df = pd.DataFrame({"a": [1, 2, 1, 3], "b": [2, 3, 3, 2], "outcome": [1, 0, 1, 1]})
        >>> folds = Comparisons.from_frame(df).kfold(by="comparison", k=2)
        >>> [test.n_comparisons for _, test in folds]
        [2, 2]
        """
        codes = self._groups(by)
        groups = np.unique(codes)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= len(groups):
            raise DataError(f"kfold: k must be an integer between 2 and the number of {by}s "
                            f"({len(groups)}), got {k!r}.")
        folds = np.array_split(np.random.default_rng(seed).permutation(groups), k)
        return [self._split(np.isin(codes, fold)) for fold in folds]

    # -- display --------------------------------------------------------------------------------
    def describe(self) -> pd.Series:
        """A short summary: sizes, outcome shares and graph connectivity.

        Examples
        --------
        >>> data = Comparisons.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "outcome": [1, 0.5]}))
        >>> data.describe()["share_ties"]
        0.5
        """
        known = (self.a >= 0) & (self.b >= 0)
        comps = np.unique(_components(self.a[known], self.b[known], self.n_options)[
            np.unique(np.concatenate([self.a[known], self.b[known]]))]).size
        per_user = np.bincount(self.user[self.user >= 0], minlength=self.n_users)
        return pd.Series({
            "n_comparisons": self.n_comparisons, "n_options": self.n_options,
            "n_users": self.n_users, "n_prompts": self.n_prompts,
            "n_features": self.n_features, "n_covariates": self.n_covariates,
            "share_a": float(np.mean(self.outcome == 1.0)), "share_b": float(np.mean(self.outcome == 0.0)),
            "share_ties": float(np.mean(self.outcome == 0.5)),
            "median_per_user": float(np.median(per_user)), "n_components": int(comps),
        }, name="Comparisons", dtype=object)

    def __repr__(self) -> str:
        prompts = f", {self.n_prompts} prompts" if self.prompts is not None else ""
        lines = [f"<Comparisons: {self.n_comparisons} comparisons of {self.n_options} options by "
                 f"{self.n_users} user(s){prompts}>"]
        if np.isnan(self.outcome).all():
            lines.append("  outcomes: none (data for prediction)")
        else:
            s = self.describe()
            lines.append(f"  outcomes: {s['share_a']:.1%} a, {s['share_b']:.1%} b, "
                         f"{s['share_ties']:.1%} ties")
        if self.n_features:
            lines.append(f"  features ({self.n_features}): {', '.join(self.feature_names[:8])}")
        if self.covariate_names:
            lines.append(f"  user covariates ({self.n_covariates}): {', '.join(self.covariate_names[:8])}")
        return "\n".join(lines)


def _y(outcome: np.ndarray) -> np.ndarray:
    y = np.full(outcome.shape, -1, dtype=np.int32)
    y[outcome == 1.0], y[outcome == 0.0], y[outcome == 0.5] = 1, 0, 2
    return y


def _id_columns(df: pd.DataFrame, roles: dict, where: str) -> dict[str, pd.Series]:
    """The id columns (a, b, user, prompt) that are mapped, checked for NaN."""
    return {r: _check_ids(df, roles[r], r, where)
            for r in ("a", "b", "user", "prompt") if roles[r] is not None}


def _feature_frame_columns(names: tuple, xa: np.ndarray, xb: np.ndarray) -> dict[str, np.ndarray]:
    """``{"<name>_a": ..., "<name>_b": ...}`` columns of the canonical frame."""
    return {f"{n}_{side}": x[:, i] for i, n in enumerate(names) for side, x in (("a", xa), ("b", xb))}


def _frame(index: pd.Index, labels: dict, outcome: np.ndarray, feature_cols: dict) -> pd.DataFrame:
    """The canonical long frame: a, b, outcome, user, prompt, then ``<feature>_a/_b``."""
    cols = {"a": labels["a"].to_numpy(), "b": labels["b"].to_numpy(), "outcome": outcome}
    cols.update({r: labels[r].to_numpy() for r in ("user", "prompt") if r in labels})
    return pd.DataFrame({**cols, **feature_cols}, index=index)


# -- lossless JSON form (used by Fit.save / load_fit) ---------------------------------------------------
_ARRAY_FIELDS = ("a", "b", "user", "prompt", "outcome", "y", "xa", "xb", "covariates", "comparison_covariates")
_ADAPTERS = {f.__name__: f for f in (_counts_long, _wide_long, _trl_long, _arena_long)}


def _index_to_json(index: pd.Index | None):
    if index is None:
        return None
    return {"values": [_py(v) for v in index], "dtype": str(index.dtype), "name": _py(index.name)}


def _index_from_json(d) -> pd.Index | None:
    if d is None:
        return None
    dtype = d["dtype"] if d["dtype"] not in ("object", "str", "string") else None
    return pd.Index(d["values"], dtype=dtype, name=d["name"])


def _table_to_json(t: pd.DataFrame | None):
    if t is None:
        return None
    return {"index": _index_to_json(t.index), "columns": [_py(c) for c in t.columns],
            "data": {str(i): {"values": [_py(v) for v in t.iloc[:, i]], "dtype": str(t.dtypes.iloc[i])}
                     for i in range(t.shape[1])}}


def _table_from_json(d) -> pd.DataFrame | None:
    if d is None:
        return None
    cols = {}
    for i, c in enumerate(d["columns"]):
        col = d["data"][str(i)]
        dtype = col["dtype"] if col["dtype"] not in ("object", "str", "string") else None
        cols[c] = pd.Series(col["values"], dtype=dtype)
    index = _index_from_json(d["index"])
    out = pd.DataFrame({k: v.to_numpy() for k, v in cols.items()}, index=index)
    out.columns = pd.Index(d["columns"])
    return out


def _comparisons_to_json(self: Comparisons) -> str:
    """Serialise every field to JSON (labels keep their types); see :meth:`Comparisons.from_json`."""
    import json

    spec = self._spec
    to_long = None
    if spec.to_long is not None:
        kw = dict(spec.to_long.keywords)
        if "coding" in kw and isinstance(kw["coding"], dict):
            kw["coding"] = [[_py(k), _py(v)] for k, v in kw["coding"].items()]
        to_long = {"adapter": spec.to_long.func.__name__, "keywords": kw}
    arrays = {}
    for name in _ARRAY_FIELDS:
        v = getattr(self, name)
        arrays[name] = None if v is None else {"values": np.asarray(v).tolist(), "dtype": str(v.dtype),
                                                "shape": list(v.shape)}
    payload = {
        "format": "bayespref.Comparisons/1",
        "arrays": arrays,
        "frame": _table_to_json(self.frame.reset_index(drop=True)),
        "comparison_ids": _index_to_json(self.comparison_ids),
        "options": _index_to_json(self.options), "users": _index_to_json(self.users),
        "prompts": _index_to_json(self.prompts),
        "feature_names": list(self.feature_names), "covariate_names": list(self.covariate_names),
        "option_features": _table_to_json(self.option_features), "user_table": _table_to_json(self.user_table),
        "has_ties": self.has_ties,
        "spec": {"roles": {k: _py(v) for k, v in spec.roles.items()}, "suffixes": list(spec.suffixes),
                 "feature_mode": spec.feature_mode, "feature_columns": [_py(c) for c in spec.feature_columns],
                 "covariate_mode": spec.covariate_mode,
                 "covariate_columns": [_py(c) for c in spec.covariate_columns],
                 "design": [[_py(c), None if lv is None else [_py(x) for x in lv]] for c, lv in spec.design],
                 "to_long": to_long},
    }
    return json.dumps(payload)


def _comparisons_from_json(cls, text: str) -> Comparisons:
    """Rebuild a :class:`Comparisons` written by :meth:`Comparisons.to_json`."""
    import json

    d = json.loads(text)
    if d.get("format") != "bayespref.Comparisons/1":
        raise DataError("Not a serialised bayespref Comparisons (unknown or missing 'format').")
    arrays = {}
    for name, v in d["arrays"].items():
        arrays[name] = None if v is None else np.asarray(v["values"], dtype=v["dtype"]).reshape(v["shape"])
    s = d["spec"]
    to_long = None
    if s["to_long"] is not None:
        kw = dict(s["to_long"]["keywords"])
        if isinstance(kw.get("coding"), list):
            kw["coding"] = {k: v for k, v in kw["coding"]}
        to_long = functools.partial(_ADAPTERS[s["to_long"]["adapter"]], **kw)
    spec = _Spec(roles=s["roles"], suffixes=tuple(s["suffixes"]), feature_mode=s["feature_mode"],
                 feature_columns=tuple(s["feature_columns"]), covariate_mode=s["covariate_mode"],
                 covariate_columns=tuple(s["covariate_columns"]),
                 design=tuple((c, None if lv is None else tuple(lv)) for c, lv in s["design"]), to_long=to_long)
    ids = _index_from_json(d["comparison_ids"])
    frame = _table_from_json(d["frame"])
    frame.index = ids
    return cls(frame=frame, options=_index_from_json(d["options"]), users=_index_from_json(d["users"]),
               prompts=_index_from_json(d["prompts"]), feature_names=tuple(d["feature_names"]),
               covariate_names=tuple(d["covariate_names"]), comparison_ids=ids,
               option_features=_table_from_json(d["option_features"]), user_table=_table_from_json(d["user_table"]),
               has_ties=d["has_ties"], _spec=spec, **arrays)


Comparisons.to_json = _comparisons_to_json
Comparisons.from_json = classmethod(_comparisons_from_json)
