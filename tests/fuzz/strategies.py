"""Hypothesis strategies of the fuzz suite: column values of many types and dtypes, frames with
random (and duplicated) column names and row labels, tables indexed by ids, and arguments that are
sometimes right and sometimes not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import strategies as st

NAN, INF = math.nan, math.inf

#: labels that make most generated frames have a few options in common
LABELS = ["x", "y", "z", "w"]
#: id values of every kind: strings, whole numbers, floats (NaN, inf), booleans, None, tuples, lists
ODD_IDS = [0, 1, 2, -1, 1.0, 2.5, NAN, INF, True, False, None, "", " x", "1", (1, 2), [1], b"x",
           np.int64(3), np.float32(0.5), pd.Timestamp("2024-01-01"), pd.NA]
#: outcome codings, right and wrong
OUTCOMES = [0, 1, 0.5, 0.0, 1.0, "tie", True, False, "1", "0", 2, -1, 0.25, NAN, None, INF, "a", "TIE",
            np.int8(1), np.float32(0.5), np.bool_(True), pd.NA, [1], (0,)]
#: column names: the usual roles, feature and covariate names, numbers, None and near misses
NAMES = ["a", "b", "outcome", "user", "prompt", "f_a", "f_b", "g_a", "g_b", "age", "group", "u", "p", "A",
         "outcome ", 0, 1, 2.5, None, ("a", 1)]
#: arguments that are never column names
NOT_NAMES = [["a"], {"a": 1}, 3.5, object, np.array(["a", "b"])]
DTYPES = [None, object, "category", "string", "float64", "int64", "Int64", "boolean", "bool"]


def column(values: list, dtype) -> pd.Series:
    """``values`` as a Series of ``dtype`` when pandas can make one, else of dtype object."""
    try:
        return pd.Series(values, dtype=dtype)
    except Exception:  # noqa: BLE001 (pandas refuses some mixes with other errors too)
        return pd.Series(values, dtype=object)


@st.composite
def values_of(draw, n: int, pool: list, common: list | None = None):
    """A column of ``n`` values: mostly from ``common`` (when given), some from ``pool``, one dtype."""
    kinds = [st.sampled_from(pool)] if common is None else [st.sampled_from(common), st.sampled_from(pool)]
    if common is not None and draw(st.booleans()):
        vals = draw(st.lists(st.sampled_from(common), min_size=n, max_size=n))
    else:
        vals = draw(st.lists(st.one_of(*kinds), min_size=n, max_size=n))
    return column(vals, draw(st.sampled_from(DTYPES)))


def numbers(n: int):
    """A numeric column: finite floats mostly, NaN and inf sometimes, or values of any kind."""
    finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    odd = st.sampled_from([NAN, INF, -INF, 1e308, True, "1", None])
    return st.one_of(
        st.lists(finite, min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="float64")),
        st.lists(st.one_of(finite, odd), min_size=n, max_size=n).map(lambda v: column(v, None)),
        st.lists(st.integers(-5, 5), min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="int64")),
    )


@st.composite
def row_index(draw, n: int):
    """Row labels: a RangeIndex, strings, or labels with duplicates or NaN."""
    kind = draw(st.sampled_from(["range", "range", "strings", "odd"]))
    if kind == "range":
        return pd.RangeIndex(n)
    if kind == "strings":
        return pd.Index([f"r{i}" for i in range(n)], dtype=object)
    return pd.Index(draw(st.lists(st.sampled_from([0, 1, "r", NAN, 2.5]), min_size=n, max_size=n)), dtype=object)


def frame(columns: list[tuple], index) -> pd.DataFrame:
    """A frame of ``(name, Series)`` pairs; names may repeat."""
    df = pd.DataFrame({i: s.reset_index(drop=True) for i, (_, s) in enumerate(columns)})
    df.columns = pd.Index([name for name, _ in columns], dtype=object, tupleize_cols=False)
    df.index = index
    return df


@st.composite
def table(draw, ids: list, numeric: bool = True):
    """A table indexed by (some of) ``ids`` plus strays: numeric columns, or columns of any kind."""
    pool = list(dict.fromkeys(ids + [draw(st.sampled_from(ODD_IDS[:10]))]), ) if ids else ["x"]
    rows = draw(st.lists(st.sampled_from(pool), max_size=len(pool) + 1))
    if draw(st.booleans()):
        rows = list(dict.fromkeys(rows))  # mostly unique, sometimes duplicated
    n = len(rows)
    names = draw(st.lists(st.sampled_from(["f", "g", "h", "age", "group", 0]), min_size=0, max_size=3))
    cols = []
    for name in names:
        if numeric or draw(st.booleans()):
            cols.append((name, draw(numbers(n))))
        else:
            cols.append((name, draw(values_of(n, ODD_IDS, ["lo", "hi"]))))
    index = pd.Index(rows, dtype=object, tupleize_cols=False)
    if not cols:
        return pd.DataFrame(index=index)
    return frame(cols, index)


# -- valid inputs and mutations ------------------------------------------------------------------------
@st.composite
def option_pairs(draw, n: int, labels=LABELS):
    """``(a, b)``: ``n`` pairs of different labels."""
    a = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    shift = draw(st.lists(st.integers(1, len(labels) - 1), min_size=n, max_size=n))
    b = [labels[(labels.index(x) + k) % len(labels)] for x, k in zip(a, shift)]
    return a, b


@st.composite
def mutated(draw, df: pd.DataFrame, kwargs: dict, columns: dict, max_mutations: int = 3):
    """``(df, kwargs)`` after 0 to ``max_mutations`` random mutations (none in about 40% of cases):
    a column's values replaced by odd ones, one cell made odd, a dtype changed, a column renamed (a near
    miss, a number, a duplicate) or dropped, an argument naming an odd column, odd row labels.
    ``columns``: column name -> common values of that column (kept when a column is refilled)."""
    df, kwargs = df.copy(), dict(kwargs)
    k = min(draw(st.sampled_from([0, 0, 1, 1, 2, 3])), max_mutations)
    n = len(df)
    for _ in range(k):
        kind = draw(st.sampled_from(["values", "cell", "dtype", "rename", "drop", "argument", "index"]))
        names = list(df.columns)
        if kind == "argument" or not names:
            key = draw(st.sampled_from(sorted(kwargs))) if kwargs else None
            if key is not None:
                kwargs[key] = draw(st.sampled_from(NAMES + NOT_NAMES + [None]))
            continue
        pos = draw(st.integers(0, len(names) - 1))
        name = names[pos]
        common = columns.get(name, LABELS) if isinstance(name, str) else LABELS
        if kind == "values":
            df.isetitem(pos, draw(values_of(n, ODD_IDS + OUTCOMES[:16], common)).array)
        elif kind == "cell" and n:
            col = df.iloc[:, pos].astype(object).to_numpy().copy()
            col[draw(st.integers(0, n - 1))] = draw(st.sampled_from(ODD_IDS + OUTCOMES[:16]))
            df.isetitem(pos, column(list(col), draw(st.sampled_from([None, object]))).array)
        elif kind == "dtype":
            df.isetitem(pos, column(df.iloc[:, pos].tolist(), draw(st.sampled_from(DTYPES))).array)
        elif kind == "rename":
            df.columns = pd.Index([draw(st.sampled_from(NAMES)) if i == pos else c for i, c in enumerate(names)],
                                  dtype=object, tupleize_cols=False)
        elif kind == "drop":
            df = df.iloc[:, [i for i in range(len(names)) if i != pos]]
        elif kind == "index":
            df.index = draw(row_index(n))
    return df, kwargs
