"""Count tables: one row per pair of options with the number of wins of each and of ties.

:func:`expand_counts` is the one place where counts become judgements (used by
:meth:`Comparisons.from_counts <bayespref.Comparisons.from_counts>` and by the bundled datasets).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref.data.validation import _check_frame, _distinct, _fmt, _free_name, _require_columns, _rows
from bayespref.errors import DataError


def expand_counts(counts) -> tuple[np.ndarray, np.ndarray]:
    """Judgements from per-row counts ``(R, 3)`` of (a wins, b wins, ties), vectorised.

    Returns ``(source_row, outcome)``, one entry per judgement, ordered by source row and within a
    row: the ``a`` wins (outcome 1), the ``b`` wins (0), the ties (0.5).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    if (counts < 0).any():
        raise DataError("expand_counts: counts must be non-negative.")
    flat = counts.ravel()  # row 0: (wins_a, wins_b, ties), row 1: ...
    source = np.repeat(np.repeat(np.arange(counts.shape[0]), 3), flat)
    outcome = np.repeat(np.tile(np.array([1.0, 0.0, 0.5]), counts.shape[0]), flat)
    return source, outcome


def counts_long(df, *, a, b, wins_a, wins_b, ties, user, prompt, require_outcome=True):
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
    src, outcome = expand_counts(np.column_stack([n["wins_a"], n["wins_b"], n["ties"]]))
    within = np.arange(len(src)) - (np.cumsum(total) - total)[src]
    long = df.iloc[src].copy()
    out = _free_name(df.columns, "outcome")
    long[out] = outcome
    ids = (pd.Series(df.index[src].astype(str), dtype=object) + ":"
           + pd.Series(within.astype(str), dtype=object))
    long.index = pd.Index(ids.to_numpy(dtype=object))
    return long, {"a": a, "b": b, "outcome": out, "user": user, "prompt": prompt}
