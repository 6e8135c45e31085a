"""Wide psychometric tables: one row per subject, one column ``"A:B"`` per pair of options."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayespref.data.validation import SHOW, _check_frame, _distinct, _fmt, _free_name, _py, _require_columns, _suggest
from bayespref.errors import DataError


def wide_long(df, *, subject, pairs, sep, coding, covariates, missing, require_outcome=True):
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
        cells = zip(row[mask][:SHOW], col[mask][:SHOW])
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
