"""k-wise ratings: several responses to one prompt, each scored (PRISM, UltraFeedback, HelpSteer style).

One row per rated response: ``prompt``, ``response`` (the option id: a text, a model name...),
``score`` (numeric; booleans count as 0/1) and optionally ``user``. A *group* is one (user, prompt)
(one prompt when there is no user). Within each group the rows become pairs by ``pairs``:

* ``"all"`` (default): every pair of the group's k responses, k(k-1)/2 comparisons;
* ``"adjacent"``: the k - 1 pairs of neighbours in the ranking (score descending, ties in source
  order);
* ``"best_vs_rest"``: the first-ranked response against each of the other k - 1.

In each pair ``a`` is the row that comes first in the source and ``b`` the later one (ratings are not
positional, so a position effect means nothing here); the outcome is 1 when ``a`` scored higher, 0
when ``b`` did, and a tie (0.5) when the scores are equal, or the pair is left out with
``ties="drop"``. The comparison id is ``"<row of a>|<row of b>"``; ``Comparisons.frame`` keeps the two
scores as ``<score>_a`` / ``<score>_b``. Pairs are ordered by the source row of ``a``, then of ``b``.

The comparisons of one group are not independent: they are k ratings re-read as pairs (with
``"all"``, each rating enters k - 1 comparisons), so a model that treats them as independent
judgements is overconfident (intervals too narrow); see ``docs/data-contract.md``.

Nested layouts are flattened first, e.g. UltraFeedback's ``completions`` lists:
``pd.json_normalize(df.explode("completions").to_dict("records"))``; PRISM's utterances table is
already one row per rated response (``user_id``, the turn or conversation id as prompt, ``model_name``
as response, ``score``).

A group with one rating gives no comparison: a ``DataError`` unless ``singletons="drop"``. The same
response twice in one group is a ``DataError`` (aggregate or remove the duplicates first).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref.data.readers.source import as_frame
from bayespref.data.validation import (
    SHOW,
    _check_finite,
    _check_frame,
    _check_ids,
    _free_name,
    _has_column,
    _py,
    _require_columns,
    _rows,
)
from bayespref.errors import DataError

PAIRS = ("all", "adjacent", "best_vs_rest")
TIES = ("tie", "drop")
SINGLETONS = ("error", "drop")


def kwise_long(df, *, prompt, response, score, user, pairs="all", ties="tie", singletons="error",
               features=(), require_outcome=True):
    where = "Comparisons.from_kwise"
    for name, value, allowed in (("pairs", pairs, PAIRS), ("ties", ties, TIES),
                                 ("singletons", singletons, SINGLETONS)):
        if not isinstance(value, str) or value not in allowed:
            raise DataError(f"{where}: {name} must be one of {list(allowed)}, got {value!r}.")
    df = as_frame(df, where)
    _check_frame(df, where)
    features = (features,) if isinstance(features, str) else tuple(features or ())
    scored = require_outcome or _has_column(df, score)
    if not scored and pairs != "all":
        raise DataError(f"{where}: pairs={pairs!r} ranks the responses by {score!r}, which is not in the "
                        "frame; pass the scores, or read unscored data with pairs='all'.")
    _require_columns(df, {"prompt": prompt, "response": response, "score": score if scored else None,
                          "user": user, **{f"features[{i}]": f for i, f in enumerate(features)}}, where,
                     required=("prompt", "response") + (("score",) if scored else ()))
    keys = [prompt] if user is None else [user, prompt]
    for role, col in (("prompt", prompt), ("response", response), ("user", user)):
        if col is not None:
            _check_ids(df, col, role, where)
    s = _scores(df, score, where) if scored else None

    g = df.groupby(keys, sort=False).ngroup().to_numpy()
    dup = df.duplicated(subset=[*keys, response], keep=False).to_numpy()
    if dup.any():
        raise DataError(f"{where}: the same response ({response!r}) appears more than once within a "
                        f"{'(user, prompt)' if user is not None else 'prompt'} group in "
                        f"{_rows(df.index, dup)}; each response is rated once per group. Aggregate "
                        "the repeated ratings or remove the duplicates first.")
    sizes = np.bincount(g)
    single = sizes[g] == 1
    if single.any() and singletons == "error":
        groups = df.loc[single, keys].head(SHOW).itertuples(index=False, name=None)
        raise DataError(f"{where}: {int(single.sum())} group(s) have a single rating, which gives no "
                        f"comparison: {_rows(df.index, single)} (groups {keys}: "
                        f"{', '.join(repr(tuple(_py(v) for v in t)) for t in groups)}). Pass "
                        "singletons='drop' to leave them out, or remove them.")

    ia, ib = _pairs(g, sizes, s, pairs)
    outcome = None
    if s is not None:
        outcome = np.where(s[ia] > s[ib], 1.0, np.where(s[ia] < s[ib], 0.0, 0.5))
        if ties == "drop":
            keep = outcome != 0.5
            ia, ib, outcome = ia[keep], ib[keep], outcome[keep]
    if len(ia) == 0:
        raise DataError(f"{where}: no comparisons: every group has a single rating"
                        f"{' or only tied scores (ties=drop)' if ties == 'drop' else ''}.")

    keep_at = [i for i, c in enumerate(df.columns) if c not in (response, score, *features)]  # by position:
    rest = [df.columns[i] for i in keep_at]  # a column named None cannot be selected by its name
    long = df.iloc[ia, keep_at].reset_index(drop=True)
    taken = pd.Index(rest)
    labels = df[response].to_numpy(dtype=object)
    a_col = _free_name(taken, "a")
    b_col = _free_name(taken.append(pd.Index([a_col])), "b")
    long[a_col], long[b_col] = labels[ia], labels[ib]
    for f in features:  # per-response features become <f>_a / <f>_b, read by features=[...]
        v = df[f].to_numpy()
        long[f"{f}_a"], long[f"{f}_b"] = v[ia], v[ib]
    kept = ()
    out = None
    if outcome is not None:
        taken = pd.Index(list(long.columns))
        sa = _free_name(taken, f"{score}_a")
        sb = _free_name(taken.append(pd.Index([sa])), f"{score}_b")
        out = _free_name(taken.append(pd.Index([sa, sb])), "outcome")
        long[sa], long[sb], long[out] = s[ia], s[ib], outcome
        kept = (sa, sb)
    rows = pd.Series(df.index.to_numpy(dtype=object)).astype(str).to_numpy(dtype=object)
    long.index = pd.Index(rows[ia] + "|" + rows[ib], dtype=object)
    return long, {"a": a_col, "b": b_col, "outcome": out, "user": user, "prompt": prompt, "keep": kept}


def _scores(df, col, where) -> np.ndarray:
    s = df[col]
    if not ptypes.is_numeric_dtype(s.dtype):
        raise DataError(f"{where}: score column {col!r} is not numeric (dtype {s.dtype}); convert it "
                        "with pd.to_numeric (strings such as '7' are not converted for you).")
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    na = np.isnan(v)
    if na.any():
        raise DataError(f"{where}: score column {col!r} has missing values (NaN) in {_rows(df.index, na)}. "
                        "Fill or remove those rows; an unscored response cannot be ranked and nothing is "
                        "imputed.")
    return _check_finite(v, f"score column {col!r}", df.index, where)


def _pairs(g: np.ndarray, sizes: np.ndarray, s: np.ndarray | None, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Source positions ``(ia, ib)`` of the pairs, ``ia < ib``, ordered by ``ia`` then ``ib``."""
    n = len(g)
    start = np.cumsum(sizes) - sizes
    if how == "all":
        order = np.argsort(g, kind="stable")  # by group, source order within
    else:  # by group, score descending, source order within equal scores
        order = np.lexsort((np.arange(n), -s, g))
    gs = g[order]
    rank = np.arange(n) - start[gs]  # position within its group in `order`
    if how == "all":
        later = sizes[gs] - 1 - rank  # partners after each row in its group
        first = np.repeat(np.arange(n), later)
        offset = np.arange(first.size) - np.repeat(np.cumsum(later) - later, later) + 1
        i, j = order[first], order[first + offset]
    elif how == "adjacent":
        nxt = rank[1:] > 0  # the next row in `order` is in the same group
        i, j = order[:-1][nxt], order[1:][nxt]
    else:  # best_vs_rest
        rest = rank > 0
        i, j = order[start[gs[rest]]], order[rest]
    ia, ib = np.minimum(i, j), np.maximum(i, j)
    sort = np.lexsort((ib, ia))
    return ia[sort], ib[sort]
