"""Wide psychometric tables: one row per subject, one column ``"A:B"`` per pair of options."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayespref.data.validation import (
    SHOW,
    _check_frame,
    _check_ids,
    _distinct,
    _fmt,
    _free_name,
    _hashable,
    _py,
    _require_columns,
    _suggest,
)
from bayespref.errors import DataError


def wide_long(df, *, subject, pairs, sep, coding, covariates, missing, require_outcome=True):
    where = "Comparisons.from_wide"
    _check_frame(df, where)
    if covariates is not None and not isinstance(covariates, (str, list, tuple)):
        raise DataError(f"{where}: covariates must be a list of subject-level column names or None; got "
                        f"{type(covariates).__name__} {covariates!r}.")
    covariates = tuple([covariates] if isinstance(covariates, str) else covariates or ())
    cov_roles = {f"covariates[{i}]": c for i, c in enumerate(covariates)}
    _require_columns(df, {"subject": subject, **cov_roles}, where, required=("subject",))
    if not isinstance(missing, str) or missing not in ("error", "drop"):
        raise DataError(f"{where}: missing must be 'error' or 'drop', got {missing!r}.")
    if not isinstance(sep, str) or not sep:
        raise DataError(f"{where}: sep={sep!r} must be a non-empty string: the text between the two options "
                        "in a pair column's name (':' in 'A:B').")
    if pairs is not None and not isinstance(pairs, (str, list, tuple, pd.Index)):
        raise DataError(f"{where}: pairs must be a list of pair column names (e.g. ['A{sep}B']) or None; got "
                        f"{type(pairs).__name__} {pairs!r}.")
    if pairs is None:
        pairs = [c for c in df.columns
                 if isinstance(c, str) and sep in c and c != subject and c not in covariates]
        if not pairs:
            raise DataError(f"{where}: no pair columns found (columns named 'A{sep}B'); pass pairs=[...] "
                            f"or the right sep=.{_suggest(f'A{sep}B', df.columns)}")
    pairs = [pairs] if isinstance(pairs, str) else list(pairs)
    if not pairs:
        raise DataError(f"{where}: pairs=[] names no pair columns; pass pairs=None to use every 'A{sep}B' column.")
    _require_columns(df, {f"pairs[{i}]": c for i, c in enumerate(pairs)}, where)
    split = [str(c).split(sep) for c in pairs]  # loop over columns, not rows
    bad = [c for c, s in zip(pairs, split) if len(s) != 2 or "" in s or s[0] == s[1]]
    if bad:
        raise DataError(f"{where}: pair columns must be named 'A{sep}B' with two different options; "
                        f"cannot read {_fmt(bad)}. Rename them or pass sep=.")
    subj = _check_ids(df, subject, "subject", where)
    if subj.duplicated().any():
        raise DataError(f"{where}: subject column {subject!r} has duplicate ids "
                        f"{_fmt(pd.unique(subj[subj.duplicated()]))}; a wide table has one row per subject.")
    n_s, n_p = len(df), len(pairs)
    values = pd.Series(df[pairs].to_numpy(dtype=object).ravel())
    row = np.repeat(np.arange(n_s), n_p)
    col = np.tile(np.arange(n_p), n_s)

    def where_cell(mask):  # "(subject, pair)" of the first few flagged cells
        cells = zip(row[mask][:SHOW], col[mask][:SHOW])
        return ", ".join(f"({_py(subj.iloc[r])!r}, {pairs[c]!r})" for r, c in cells)

    na = values.isna().to_numpy()
    if na.any() and missing == "error":
        raise DataError(f"{where}: {int(na.sum())} missing cell(s) (NaN) in the pair columns, e.g. "
                        f"(subject, pair) {where_cell(na)}. Pass missing='drop' to skip missing "
                        "comparisons (the only thing bayespref ever skips, and only when asked).")
    try:
        coded = values.map(coding)
    except TypeError:  # a cell holds a list, a dict...: not a value coding can map
        odd = ~np.fromiter((_hashable(v) for v in values), dtype=bool, count=len(values))
        raise DataError(f"{where}: {int(odd.sum())} cell(s) of the pair columns hold lists, dicts or arrays, e.g. "
                        f"{values[odd].iloc[0]!r} at (subject, pair) {where_cell(odd)}; cells must be values of "
                        f"coding {coding!r}.") from None
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
