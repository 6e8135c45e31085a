"""Arena battles (Chatbot Arena, MT-Bench human judgements): ``model_a``, ``model_b``, ``winner``.

``winner`` is coded ``"model_a"`` -> 1, ``"model_b"`` -> 0, ``"tie"`` and ``"tie (bothbad)"`` -> 0.5
(anything else, NaN included, is a ``DataError``). The two kinds of tie share the outcome 0.5 and stay
distinguishable: the ``winner`` column is kept, verbatim, in ``Comparisons.frame`` (e.g.
``data.frame["winner"] == "tie (bothbad)"``). The judge is the user and ``question_id`` the prompt.
"""

from __future__ import annotations

import numpy as np

from bayespref.data.readers.source import as_frame
from bayespref.data.validation import (
    _check_frame,
    _check_hashable,
    _distinct,
    _fmt,
    _free_name,
    _has_column,
    _require_columns,
    _rows,
)
from bayespref.errors import DataError

ARENA_WINNER = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
#: columns kept in ``Comparisons.frame`` by default when present (besides ``winner``)
KEEP = ("turn", "language")


def arena_long(df, *, model_a, model_b, winner, judge, prompt, keep=(), require_outcome=True):
    where = "Comparisons.from_arena"
    df = as_frame(df, where)
    _check_frame(df, where)
    keep = tuple(keep or ())
    if not require_outcome:
        keep = tuple(c for c in keep if _has_column(df, c))
    _require_columns(df, {"model_a": model_a, "model_b": model_b, "judge": judge, "prompt": prompt,
                          **{f"keep[{i}]": c for i, c in enumerate(keep)}}, where, required=("model_a", "model_b"))
    long = df.copy()
    out = _free_name(df.columns, "outcome")
    roles = {"a": model_a, "b": model_b, "outcome": out, "user": judge, "prompt": prompt}
    if not require_outcome and not _has_column(df, winner):
        return long, {**roles, "outcome": None, "keep": keep}
    _require_columns(df, {"winner": winner}, where, required=("winner",))
    w = df[winner]
    na = w.isna().to_numpy()
    if na.any():
        raise DataError(f"{where}: column {winner!r} (winner) has missing values in "
                        f"{_rows(df.index, na)}; remove or fill those rows.")
    _check_hashable(w, f"column {winner!r} (winner)", where)
    coded = w.astype(object).map(ARENA_WINNER).to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(coded)
    if bad.any():
        raise DataError(f"{where}: column {winner!r} (winner) has unknown values "
                        f"{_fmt(_distinct(w[bad]))} in {_rows(df.index, bad)}; "
                        f"allowed: {list(ARENA_WINNER)}.")
    long[out] = coded
    return long, {**roles, "keep": (winner, *keep)}
