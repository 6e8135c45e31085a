"""Count tables: one row per pair of options with the number of wins of each and of ties.

:func:`expand_counts` is the one place where counts become judgements (used by
:meth:`Comparisons.from_counts <bayespref.Comparisons.from_counts>` and by the bundled datasets).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref import config
from bayespref.data.validation import (
    _check_finite,
    _check_frame,
    _distinct,
    _fmt,
    _free_name,
    _py,
    _require_columns,
    _rows,
)
from bayespref.errors import DataError


def expand_counts(counts, where: str = "expand_counts", labels=None,
                  columns=None) -> tuple[np.ndarray, np.ndarray]:
    """Judgements from per-row counts ``(R, 3)`` of (a wins, b wins, ties), vectorised.

    Returns ``(source_row, outcome)``, one entry per judgement, ordered by source row and within a
    row: the ``a`` wins (outcome 1), the ``b`` wins (0), the ties (0.5). Counts must be finite,
    non-negative whole numbers adding up to at most :data:`bayespref.config.MAX_JUDGEMENTS`
    (``DataError`` otherwise, naming ``where``, the rows by ``labels`` (default: their positions) and
    the count ``columns`` they came from, when given).
    """
    values = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    labels = pd.RangeIndex(len(values)) if labels is None else pd.Index(labels)
    _check_finite(values, "the counts", labels, where)
    bad = ((values < 0) | (values != np.round(values))).any(axis=1)
    if bad.any():
        raise DataError(f"{where}: counts must be non-negative whole numbers; found {_fmt(values[bad].ravel())} "
                        f"in {_rows(labels, bad)}.")
    _check_budget(values.sum(axis=1), labels, where, columns)
    counts = values.astype(np.int64)
    flat = counts.ravel()  # row 0: (wins_a, wins_b, ties), row 1: ...
    source = np.repeat(np.repeat(np.arange(counts.shape[0]), 3), flat)
    outcome = np.repeat(np.tile(np.array([1.0, 0.0, 0.5]), counts.shape[0]), flat)
    return source, outcome


def _check_budget(per_row: np.ndarray, labels: pd.Index, where: str, columns=None) -> None:
    """Refuse counts whose expansion (one row per judgement) exceeds ``config.MAX_JUDGEMENTS``."""
    total = float(per_row.sum())
    budget = config.MAX_JUDGEMENTS
    if total <= budget:
        return
    top = np.argsort(-per_row, kind="stable")[:3]
    largest = ", ".join(f"{_py(labels[i])!r}: {per_row[i]:,.0f}" for i in top)
    gib = total * config.BYTES_PER_JUDGEMENT / 2**30
    k = int(np.ceil(total / budget))
    cols = "counts" if columns is None else f"df[{[c for c in columns if c is not None]!r}]"
    raise DataError(
        f"{where}: the counts add up to {total:,.0f} judgements, more than the budget of {budget:,} "
        f"(bayespref.config.MAX_JUDGEMENTS); one row per judgement would take about {gib:,.1f} GiB. "
        f"Largest rows: {largest}. Use fewer rows (a subset of the pairs, users or prompts), or aggregate: "
        f"divide the counts by {k} or more ({cols} // {k}: the win rates stay, "
        f"the intervals widen as for {k} times less data); or raise bayespref.config.MAX_JUDGEMENTS on a "
        "machine with the memory.")


def counts_long(df, *, a, b, wins_a, wins_b, ties, user, prompt, require_outcome=True):
    where = "Comparisons.from_counts"
    _check_frame(df, where)
    counts = {"wins_a": wins_a, "wins_b": wins_b, "ties": ties}
    # ties=None: no ties column; the others are needed
    _require_columns(df, {"a": a, "b": b, **counts}, where, required=("a", "b", "wins_a", "wins_b"))
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
        _check_finite(v, f"count column {col!r} ({role}=)", df.index, where)
        n[role] = v
    total = n["wins_a"] + n["wins_b"] + n["ties"]
    if total.sum() == 0:
        raise DataError(f"{where}: all counts are zero; there are no judgements.")
    src, outcome = expand_counts(np.column_stack([n["wins_a"], n["wins_b"], n["ties"]]), where, df.index,
                                 (wins_a, wins_b, ties))
    total = total.astype(np.int64)
    within = np.arange(len(src)) - (np.cumsum(total) - total)[src]
    long = df.iloc[src].copy()
    out = _free_name(df.columns, "outcome")
    long[out] = outcome
    ids = (pd.Series(df.index[src].astype(str), dtype=object) + ":"
           + pd.Series(within.astype(str), dtype=object))
    long.index = pd.Index(ids.to_numpy(dtype=object))
    return long, {"a": a, "b": b, "outcome": out, "user": user, "prompt": prompt}
