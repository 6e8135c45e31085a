"""Fuzz the :class:`~bayespref.Rankings` readers: :meth:`Rankings.from_long`, :meth:`~Rankings.from_wide`
and :meth:`~Rankings.from_scores`.

Each starts from a valid input (rankings with ties, gaps in the ranks, unranked items, shown lists,
tie groups in one cell, per-item features or option tables, user covariates, kept columns), applies a
few random mutations (odd values and dtypes, renamed, dropped or duplicated columns, odd arguments,
odd row labels, no rows, two levels of column names, not a frame) and asserts a bayespref error
naming the constructor, or a Rankings whose invariants hold (:func:`check_rankings`) and whose
rankings are the ones the input says (an oracle per reader built from the raw input: items, levels,
unranked items, ids, users, prompts, kept columns, features). An unmutated input must be read.

Each valid result is then followed by :meth:`~Rankings.explode` (every implied pair, checked pair by
pair) and :meth:`~Rankings.from_comparisons` of it, a JSON round trip (every field exact),
:meth:`~Rankings.subset` (every other ranking, and none), ``describe()`` and ``repr``; these
follow-ups (the ``->`` rows of the summary) are counted apart from the generated cases.
"""

from __future__ import annotations

import dataclasses
import math

import fuzzing
import numpy as np
import pandas as pd
import strategies as S
from hypothesis import example, given
from hypothesis import strategies as st

import bayespref as bp
from bayespref.data.rankings import UNRANKED

NAN, INF = math.nan, math.inf
OPTIONS = ["x", "y", "z", "w", "v"]
INT_OPTIONS = [1, 2, 3, 4, 5]
USERS, PROMPTS, KINDS = ["u1", "u2", "u3"], ["p1", "p2"], ["full", "top"]
AGE = {"u1": 20, "u2": 30.5, "u3": 41}
FINITE = st.floats(-100, 100, allow_nan=False)
#: values of a rank / score column, right and wrong
RANKS = [1, 2, 3, 2, 0.5, -1, 7, NAN, INF, True, "1", None, 10**300]
#: integers float64 cannot tell apart (an int64 column of them must not tie them)
BIG = [2**53, 2**53 + 1, 2**53 + 2, -(2**53) - 1, 1]


# -- helpers ------------------------------------------------------------------------------------------------
def _isna(v) -> bool:
    return np.ndim(v) == 0 and not isinstance(v, (list, tuple, dict)) and bool(pd.isna(v))


def _eq(a, b) -> bool:
    """Labels equal (NaN equals NaN)."""
    if _isna(a) or _isna(b):
        return _isna(a) and _isna(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _all_eq(xs, ys) -> bool:
    xs, ys = list(xs), list(ys)
    return len(xs) == len(ys) and all(_eq(a, b) for a, b in zip(xs, ys))


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether a mutation left the frame as it was (then the case is the valid one generated)."""
    return (a.shape == b.shape and a.columns.equals(b.columns) and a.index.equals(b.index)
            and a.index.dtype == b.index.dtype and a.equals(b))


def _same_kwargs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] is b[k] for k in a)


def _index(draw, n: int) -> pd.Index:
    kind = draw(st.sampled_from(["range", "range", "strings"]))
    return pd.RangeIndex(n) if kind == "range" else pd.Index([f"i{k}" for k in range(n)], dtype=object)


def _order(labels: list, key: list, rows: list[int]) -> list[tuple]:
    """``(label, level, source position)`` of one ranking's items: the ranked ones by key (smaller
    first, ties in order of appearance, dense levels from 0), then the unranked (missing key) ones.
    Keys are the column's Python values, compared exactly (2**53 + 1 is not 2**53)."""
    ranked = sorted((p for p in rows if not _isna(key[p])), key=lambda p: key[p])
    levels = {k: i for i, k in enumerate(sorted({key[p] for p in ranked}))}
    return ([(labels[p], levels[key[p]], p) for p in ranked]
            + [(labels[p], UNRANKED, p) for p in rows if _isna(key[p])])


def _names(value) -> list:
    return [value] if isinstance(value, str) else list(value)


# -- invariants of every Rankings ---------------------------------------------------------------------------
def check_rankings(data, *, complete: bool = True) -> None:
    """The contract of a Rankings (``complete``: made by a reader, so every option and user label is
    used): shapes and dtypes, padding only at the end, levels dense from 0 then UNRANKED, at least
    two shown and one ranked item per ranking, no option twice, finite features and covariates."""
    R, K = data.items.shape
    assert R >= 1 and K >= 2 and data.n_rankings == R and data.max_items == K
    for name in ("items", "level", "user"):
        arr = getattr(data, name)
        assert arr.dtype == np.int32 and not arr.flags.writeable, name
    assert data.level.shape == (R, K) and data.user.shape == (R,)
    shown = data.items >= 0
    assert (data.items[~shown] == -1).all() and (data.level[~shown] == -1).all()
    assert (data.level[shown] >= 0).all()
    assert (shown[:, 1:] <= shown[:, :-1]).all(), "padding before a shown item"
    n_shown = shown.sum(axis=1)
    assert (n_shown >= 2).all() and n_shown.max() == K and (data.n_shown == n_shown).all()
    assert (data.items < data.n_options).all()
    ties = False
    for r in range(R):
        n = n_shown[r]
        items, lev = data.items[r, :n], data.level[r, :n]
        assert len(set(items.tolist())) == n, f"an option twice in ranking {r}"
        ranked = lev != UNRANKED
        m = int(ranked.sum())
        assert m >= 1 and ranked[:m].all(), f"ranking {r}: unranked items must follow the ranked ones"
        lv = lev[:m]
        assert lv[0] == 0 and (np.diff(lv) >= 0).all() and (np.diff(lv) <= 1).all(), f"levels not dense: {lv}"
        assert data.n_levels[r] == lv[-1] + 1
        ties = ties or bool((np.diff(lv) == 0).any())
    assert data.has_ties == ties
    assert data.max_tie == max(np.unique(data.level[r, :n_shown[r]][data.level[r, :n_shown[r]] != UNRANKED],
                                         return_counts=True)[1].max() for r in range(R))
    assert ((data.user >= 0) & (data.user < data.n_users)).all()
    if data.prompt is None:
        assert data.prompts is None
    else:
        assert data.prompt.dtype == np.int32 and data.prompt.shape == (R,) and not data.prompt.flags.writeable
        assert ((data.prompt >= 0) & (data.prompt < data.n_prompts)).all() and data.prompts.is_unique
    d, p = data.n_features, data.n_covariates
    assert data.x.dtype == np.float64 and data.x.shape == (R, K, d) and not data.x.flags.writeable
    assert np.isfinite(data.x).all() and (data.x[~shown] == 0).all()
    assert len(data.feature_names) == d and len(data.covariate_names) == p
    assert data.covariates.shape == (data.n_users, p) and np.isfinite(data.covariates).all()
    assert data.ranking_covariates.shape == (R, p)
    assert (data.ranking_covariates == data.covariates[data.user]).all()
    assert data.options.is_unique and data.users.is_unique
    assert len(data.ranking_ids) == R and data.ranking_ids.is_unique
    assert data.frame.index.equals(data.ranking_ids) and len(data.frame) == R
    if complete:
        assert (np.bincount(data.items[shown], minlength=data.n_options) > 0).all(), "an option never shown"
        assert (np.bincount(data.user, minlength=data.n_users) > 0).all(), "a user without rankings"


def check_explode(data, ex) -> None:
    """``explode()`` gives every implied pair, ranking by ranking, slot i before slot j: ``a`` the
    better (or the first of a tie group), outcome 1 (0.5 for a tie), none between two unranked
    items; so C(n, 2) - C(n - m, 2) pairs for m ranked of n shown."""
    rows, slots_a, slots_b = [], [], []
    for r in range(data.n_rankings):
        n = int(data.n_shown[r])
        lev = data.level[r]
        for i in range(n):
            for j in range(i + 1, n):
                if lev[i] == UNRANKED and lev[j] == UNRANKED:
                    continue
                assert lev[i] <= lev[j]
                rows.append(r)
                slots_a.append(i)
                slots_b.append(j)
    r, i, j = (np.asarray(v, dtype=np.int64) for v in (rows, slots_a, slots_b))
    fuzzing.check_arrays(ex, len(r))
    if not len(r):
        return
    np.testing.assert_array_equal(ex.a, data.items[r, i])
    np.testing.assert_array_equal(ex.b, data.items[r, j])
    np.testing.assert_array_equal(ex.outcome, np.where(data.level[r, i] == data.level[r, j], 0.5, 1.0))
    np.testing.assert_array_equal(ex.user, data.user[r])
    np.testing.assert_array_equal(ex.xa, data.x[r, i])
    np.testing.assert_array_equal(ex.xb, data.x[r, j])
    if data.prompt is not None:
        np.testing.assert_array_equal(ex.prompt, data.prompt[r])
    assert ex.options.equals(data.options) and ex.users.equals(data.users)
    assert _all_eq(ex.frame["ranking"], data.ranking_ids[r])
    assert ex.has_ties == bool((ex.outcome == 0.5).any())


def check_json(data, back) -> None:
    """Every field of the JSON round trip as it was."""
    for f in dataclasses.fields(type(data)):
        mine, theirs = getattr(data, f.name), getattr(back, f.name)
        if isinstance(mine, np.ndarray):
            np.testing.assert_array_equal(mine, theirs, err_msg=f.name)
            assert mine.dtype == theirs.dtype and not theirs.flags.writeable, f.name
        elif isinstance(mine, pd.DataFrame):
            pd.testing.assert_frame_equal(mine, theirs, obj=f.name)
        elif isinstance(mine, pd.Index):
            pd.testing.assert_index_equal(mine, theirs, exact=True, obj=f.name)
        else:
            assert mine == theirs, f"{f.name}: {mine!r} != {theirs!r}"


def follow_ups(name: str, data) -> None:
    """The invariants of a valid result, then explode(), a JSON round trip and a subset of it."""
    check_rankings(data)
    status, ex = fuzzing.attempt(f"{name} -> explode", data.explode, follow_up=True)
    assert status == "ok", f"explode refused a valid Rankings: {ex}"
    check_explode(data, ex)
    status, pairs = fuzzing.attempt(f"{name} -> from_comparisons", bp.Rankings.from_comparisons, ex, follow_up=True)
    assert status == "ok", f"from_comparisons refused an explode(): {pairs}"
    check_rankings(pairs)  # each pair a ranking of two, the better first
    assert pairs.n_rankings == ex.n_comparisons and pairs.options.equals(data.options)
    np.testing.assert_array_equal(pairs.items, np.column_stack([ex.a, ex.b]))
    np.testing.assert_array_equal(pairs.level[:, 1], np.where(ex.outcome == 0.5, 0, 1))
    status, text = fuzzing.attempt(f"{name} -> to_json", data.to_json, follow_up=True)
    if status == "error":  # labels JSON cannot hold may be refused, by name
        assert fuzzing.names_one_of(text, "to_json"), str(text)
    else:
        status, back = fuzzing.attempt(f"{name} -> from_json", bp.Rankings.from_json, text, follow_up=True)
        assert status == "ok", f"from_json refused what to_json wrote: {back}"
        check_json(data, back)
    pos = np.arange(data.n_rankings - 1, -1, -2)  # every other ranking, in reverse
    status, sub = fuzzing.attempt(f"{name} -> subset", data.subset, pos, follow_up=True)
    assert status == "ok", f"subset refused positions in range: {sub}"
    check_rankings(sub, complete=False)
    k = sub.max_items
    np.testing.assert_array_equal(sub.items, data.items[pos, :k])
    np.testing.assert_array_equal(sub.level, data.level[pos, :k])
    assert (data.items[pos, k:] == -1).all()
    assert sub.options.equals(data.options) and sub.users.equals(data.users)
    assert _all_eq(sub.ranking_ids, data.ranking_ids[pos])
    status, summary = fuzzing.attempt(f"{name} -> describe", lambda: (data.describe(), repr(data)), follow_up=True)
    assert status == "ok", f"describe / repr refused a valid Rankings: {summary}"
    d = summary[0]
    assert d["n_rankings"] == data.n_rankings and d["n_pairs"] == ex.n_comparisons
    assert d["max_items"] == data.max_items and d["mean_shown"] == data.n_shown.mean()
    _empty_subset(name, data)


def _empty_subset(name: str, data) -> None:
    """``subset([])``: no rankings, the same labels; it explodes, describes and round-trips (no warnings)."""
    def calls():
        empty = data.subset([])
        return empty, empty.explode(), empty.describe(), repr(empty), bp.Rankings.from_json(empty.to_json())

    status, out = fuzzing.attempt(f"{name} -> subset([])", calls, follow_up=True)
    assert status == "ok", f"an empty subset failed: {out}"
    empty, ex, _, _, back = out
    assert empty.items.shape == (0, 0) and empty.level.shape == (0, 0) and empty.x.shape == (0, 0, data.n_features)
    assert empty.items.dtype == np.int32 and empty.n_levels.shape == (0,) and empty.max_tie == 0
    assert ex.n_comparisons == 0 and empty.options.equals(data.options)
    check_json(empty, back)


def check_content(data, expected_ids: list, expected: list[list[tuple]]) -> None:
    """The rankings hold the ``expected`` ``(label, level, source)`` items, ranking by ranking."""
    assert data.n_rankings == len(expected), (data.n_rankings, len(expected))
    assert _all_eq(data.ranking_ids, expected_ids), (list(data.ranking_ids), expected_ids)
    for r, exp in enumerate(expected):
        n = len(exp)
        assert data.n_shown[r] == n, (r, data.n_shown[r], exp)
        assert data.level[r, :n].tolist() == [lv for _, lv, _ in exp], (r, data.level[r], exp)
        got = data.options[data.items[r, :n]]
        assert _all_eq(got, [lab for lab, _, _ in exp]), (r, list(got), exp)


def check_per_ranking(data, df: pd.DataFrame, kwargs: dict, first: list[int], roles: dict) -> None:
    """User and prompt labels, and kept columns, are those of each ranking's first source row."""
    for role, col in roles.items():
        if col is None:
            continue
        labels = data.users[data.user] if role == "user" else data.prompts[data.prompt]
        assert _all_eq(labels, df[col].iloc[first]), role
        assert _all_eq(data.frame[role], df[col].iloc[first]), role
    if roles.get("user") is None:
        assert list(data.users) == ["all"] and (data.user == 0).all()
    for c in _names(kwargs.get("keep") or ()):
        assert _all_eq(data.frame[c], df[c].iloc[first]), c


def check_features(data, df: pd.DataFrame, kwargs: dict, expected: list[list[tuple]]) -> None:
    """Per-item feature columns hold each item's source row; an option table its option's row."""
    features = kwargs.get("features")
    if features is None:
        assert data.n_features == 0
        return
    if isinstance(features, pd.DataFrame):
        table = features.to_numpy(dtype=np.float64)[features.index.get_indexer(data.options)]
        for r, exp in enumerate(expected):
            np.testing.assert_array_equal(data.x[r, :len(exp)], table[data.items[r, :len(exp)]])
        return
    cols = _names(features)
    values = df[cols].to_numpy(dtype=np.float64)
    for r, exp in enumerate(expected):
        np.testing.assert_array_equal(data.x[r, :len(exp)], values[[p for _, _, p in exp]])


def check_covariates(data, df: pd.DataFrame, kwargs: dict) -> None:
    cov = kwargs.get("user_covariates")
    if cov is None:
        assert data.n_covariates == 0 and data.user_table is None
        return
    table = data.user_table
    assert table.index.equals(data.users)
    if isinstance(cov, pd.DataFrame):
        assert _all_eq(table.to_numpy().ravel(), cov.loc[data.users].to_numpy().ravel())


def _one_in(draw, n: int) -> bool:
    """True in about one case of ``n`` (not at 0 or n, which Hypothesis draws more often)."""
    return draw(st.integers(0, n + 1)) == 1


def _maybe_mutated(df: pd.DataFrame, kwargs: dict, common: dict):
    """:func:`strategies.mutated` in two cases of three (else the valid input as generated): valid
    results, whose content is checked, are then about half of the cases."""
    return st.one_of(st.just((df, dict(kwargs))), S.mutated(df, kwargs, common), S.mutated(df, kwargs, common))


@st.composite
def odd_sources(draw, df: pd.DataFrame):
    """Mostly ``df``; sometimes no rows, columns with two levels, or not a frame at all."""
    kind = draw(st.integers(0, 24))
    if kind == 3:
        return df.iloc[:0]
    if kind == 7:
        two = df.copy()
        two.columns = pd.MultiIndex.from_tuples([(c, draw(st.sampled_from(["", "x"]))) for c in df.columns])
        return two
    if kind == 11:
        return draw(st.sampled_from([None, [1, 2], {"a": [1]}, "missing.jsonl", "frame.csv", 3, {"ranking": [1, 1]},
                                     df.iloc[:, 0]]))
    return df


def _refused_by(out, where: str) -> None:
    assert fuzzing.names_one_of(out, where), str(out)


def _odd_tables(draw, kwargs: dict, options: list, users: list) -> None:
    """Sometimes the features or covariates are a generated table of any quality, or not a table."""
    if _one_in(draw, 6):
        kwargs["features"] = draw(st.one_of(S.table(options), st.sampled_from([3, {"f": 1}, ("f",), ["g"]])))
    if _one_in(draw, 6):
        kwargs["user_covariates"] = draw(st.one_of(S.table(users, numeric=False),
                                                   st.sampled_from([3, {"age": 1}, ["nope"]])))


# -- long ---------------------------------------------------------------------------------------------------
@st.composite
def long_frames(draw):
    """``(df, kwargs, clean)``: a valid long frame and ``from_long`` arguments, then mutations;
    ``clean``: nothing was mutated (the case must be read)."""
    R = draw(st.integers(1, 4))
    ids = draw(st.sampled_from([[f"r{i}" for i in range(R)], list(range(10, 10 + R)), [2.5 * i for i in range(R)]]))
    pool = INT_OPTIONS if _one_in(draw, 4) else OPTIONS
    partial = draw(st.booleans())
    rank_pool = draw(st.sampled_from([[1, 2, 3, 2, 5, 0.5, -1]] * 3 + [BIG]))
    rows = []
    for i in range(R):
        k = draw(st.integers(2, 4))
        opts = draw(st.permutations(pool))[:k]
        ranks = draw(st.lists(st.sampled_from(rank_pool), min_size=k, max_size=k))
        if partial:
            unranked = draw(st.lists(st.booleans(), min_size=k, max_size=k))
            unranked[draw(st.integers(0, k - 1))] = False  # at least one ranked
            ranks = [NAN if u else v for v, u in zip(ranks, unranked)]
        u, p, kind = draw(st.sampled_from(USERS)), draw(st.sampled_from(PROMPTS)), draw(st.sampled_from(KINDS))
        for o, rk in zip(opts, ranks):
            rows.append({"ranking": ids[i], "option": o, "rank": rk, "u": u, "p": p, "kind": kind, "age": AGE[u],
                         "f": draw(FINITE), "g": draw(FINITE), 1: draw(FINITE), "1": draw(FINITE)})
    if draw(st.booleans()):  # the rows of a ranking need not be adjacent
        rows = [rows[j] for j in draw(st.permutations(range(len(rows))))]
    df = pd.DataFrame(rows, index=_index(draw, len(rows)))
    user = draw(st.sampled_from(["u", None]))
    present = list(dict.fromkeys(df["u"])) if user else ["all"]
    options = list(dict.fromkeys(df["option"]))
    kwargs = {"ranking": "ranking", "option": "option", "rank": "rank", "user": user,
              "prompt": draw(st.sampled_from(["p", None])), "partial": partial or draw(st.booleans()),
              "features": draw(st.sampled_from([None, ["f"], "f", ["f", "g"], [], [1], ("1", "g"), "table"])),
              "user_covariates": draw(st.sampled_from([None, ["age"], "age", [], "table"] if user
                                                      else [None, [], "table"])),
              "keep": draw(st.sampled_from([None, ["kind"], "kind", []]))}
    if kwargs["features"] == "table":
        kwargs["features"] = pd.DataFrame({"size": np.arange(len(options), dtype=float)}, index=options)
    if kwargs["user_covariates"] == "table":
        kwargs["user_covariates"] = pd.DataFrame({"age": [AGE.get(u, 1.0) for u in present],
                                                  "grp": [str(u)[-1] for u in present]}, index=present)
    common = {"rank": RANKS, "option": pool, "ranking": ids, "u": USERS, "p": PROMPTS, "kind": KINDS,
              "age": [20, 30.5], "f": [0.0, 1.5], "g": [2.0, -1.0]}
    flag = kwargs.pop("partial")  # mutated apart: the mutations below change only column arguments
    mdf, mkw = draw(_maybe_mutated(df, kwargs, common))
    kwargs["partial"] = mkw["partial"] = flag
    if _one_in(draw, 9):
        mkw["partial"] = draw(st.sampled_from(["yes", 1, 0, None, np.bool_(True), np.array([True])]))
    if _one_in(draw, 9):  # names that are the same as text, not a list of names
        mkw["features"] = draw(st.sampled_from([[1, "1"], ["f", "f"], [None], 1]))
    _odd_tables(draw, mkw, options, present)
    clean = _same_frame(mdf, df) and _same_kwargs(mkw, kwargs)
    odd = draw(odd_sources(mdf))
    return odd, mkw, clean and odd is mdf


def expected_long(df: pd.DataFrame, kwargs: dict):
    """``(ranking ids, items, first source row of each ranking)`` that ``df`` says."""
    rid = df[kwargs.get("ranking", "ranking")].tolist()
    labels = df[kwargs.get("option", "option")].tolist()
    key = df[kwargs.get("rank", "rank")].tolist()
    groups: dict = {}
    for pos, g in enumerate(rid):
        groups.setdefault(g, []).append(pos)
    return list(groups), [_order(labels, key, rows) for rows in groups.values()], [v[0] for v in groups.values()]


def _long_case(df, kwargs, clean=False):
    where = "Rankings.from_long"
    status, out = fuzzing.attempt(where, bp.Rankings.from_long, df, **kwargs)
    if status == "error":
        assert not clean, f"a valid input was refused: {out}"
        return _refused_by(out, where)
    ids, expected, first = expected_long(df, kwargs)
    check_content(out, ids, expected)
    check_per_ranking(out, df, kwargs, first, {"user": kwargs.get("user"), "prompt": kwargs.get("prompt")})
    check_features(out, df, kwargs, expected)
    check_covariates(out, df, kwargs)
    follow_ups(where, out)


LONG = pd.DataFrame({"ranking": [1, 1, 1, 2, 2], "option": ["x", "y", "z", "z", "x"], "rank": [2, 1, 2, 1, 2]})


@given(long_frames())
@example((LONG, {}, True))
@example((LONG.assign(rank=[1, NAN, NAN, 1, NAN]), {"partial": True}, True))
# regressions found by this fuzzer: ranks 2**53 and 2**53 + 1 tied, features=[] (AttributeError), features
# [1, "1"] both read from column "1", a user covariate table without columns (JSON: columns type),
# MultiIndex columns (AttributeError)
@example((LONG.assign(rank=np.array([2**53, 2**53 + 1, 2**53, 1, 2], dtype=np.int64)), {}, True))
@example((LONG.assign(f=1.0), {"features": []}, True))
@example((LONG.assign(**{"1": 1.0, "f": 2.0}).rename(columns={"f": 1}), {"features": [1, "1"]}, False))
@example((LONG, {"user_covariates": pd.DataFrame(index=["all"])}, True))
@example((LONG.set_axis(pd.MultiIndex.from_tuples([("ranking", ""), ("option", ""), ("rank", "x")]), axis=1), {},
          False))
def test_from_long(case):
    _long_case(*case)


# -- wide ---------------------------------------------------------------------------------------------------
POSITIONS = ["1st", "2nd", "3rd", "4th"]


@st.composite
def wide_frames(draw):
    """``(df, kwargs, clean)``: a valid wide table and ``from_wide`` arguments, then mutations."""
    R = draw(st.integers(1, 4))
    P = draw(st.integers(2, 4))
    tie_sep = draw(st.sampled_from([None, None, "=", " & "]))
    pool = INT_OPTIONS if tie_sep is None and _one_in(draw, 4) else OPTIONS
    use_shown = draw(st.booleans())
    pad = draw(st.sampled_from([None, NAN]))
    cells, shown_lists = [], []
    for _ in range(R):
        perm = draw(st.permutations(pool))
        n_shown = draw(st.integers(2, len(pool))) if use_shown else draw(st.integers(2, P))
        m = draw(st.integers(1, min(P, n_shown))) if use_shown else n_shown  # ranked items
        groups = [[o] for o in perm[:m]]
        if tie_sep is not None:  # join some neighbours into tie groups
            merged = [groups[0]]
            for g in groups[1:]:
                if _one_in(draw, 3):
                    merged[-1] = merged[-1] + g
                else:
                    merged.append(g)
            groups = merged
        row = [tie_sep.join(g) if len(g) > 1 else g[0] for g in groups]
        cells.append(row + [pad] * (P - len(row)))
        shown = list(perm[:n_shown])
        shown_lists.append(draw(st.permutations(shown)))
    df = pd.DataFrame(cells, columns=POSITIONS[:P])
    users = draw(st.lists(st.sampled_from(USERS), min_size=R, max_size=R))
    df["u"] = users
    df["p"] = draw(st.lists(st.sampled_from(PROMPTS), min_size=R, max_size=R))
    df["kind"] = draw(st.lists(st.sampled_from(KINDS), min_size=R, max_size=R))
    df["age"] = [AGE[u] for u in users]
    df["s"] = pd.Series(shown_lists, dtype=object)
    df.index = _index(draw, R)
    user = draw(st.sampled_from(["u", None]))
    present = list(dict.fromkeys(users)) if user else ["all"]
    options = list(dict.fromkeys(o for lst in shown_lists for o in lst)) if use_shown else None
    if options is None:
        options = list(dict.fromkeys(o for row in cells for c in row if not _isna(c)
                                     for o in (c.split(tie_sep) if tie_sep else [c])))
    kwargs = {"positions": draw(st.sampled_from([POSITIONS[:P], tuple(POSITIONS[:P]), pd.Index(POSITIONS[:P])])),
              "user": user, "prompt": draw(st.sampled_from(["p", None])), "shown": "s" if use_shown else None,
              "tie_sep": tie_sep,
              "features": draw(st.sampled_from([None, "table"])),
              "user_covariates": draw(st.sampled_from([None, ["age"], "age", "table"] if user else [None, "table"])),
              "keep": draw(st.sampled_from([None, ["kind"], "kind"]))}
    if kwargs["features"] == "table":
        kwargs["features"] = pd.DataFrame({"size": np.arange(len(options), dtype=float)}, index=options)
    if kwargs["user_covariates"] == "table":
        kwargs["user_covariates"] = pd.DataFrame({"age": [AGE.get(u, 1.0) for u in present]}, index=present)
    odd_lists = [["x", "y"], [], ["x", ["y"]], ["x", None], "xy", ("x", "y"), np.array(["x", "y"]), None, 3]
    common = {**{c: pool + [pad] for c in POSITIONS}, "u": USERS, "p": PROMPTS, "kind": KINDS,
              "age": [20, 30.5], "s": odd_lists}
    mdf, mkw = draw(_maybe_mutated(df, kwargs, common))
    if _one_in(draw, 7):
        mkw["tie_sep"] = draw(st.sampled_from(["=", "", "x", 1, ["="], None]))
    if _one_in(draw, 7):
        mkw["positions"] = draw(st.sampled_from([POSITIONS[:1], [], "1st", POSITIONS[:P][::-1], ["1st", "1st"],
                                                 ["1st", "nope"], None, 3, [None]]))
    _odd_tables(draw, mkw, options, present)
    if isinstance(mdf, pd.DataFrame) and "s" in mdf.columns and mdf.columns.is_unique and _one_in(draw, 6):
        # one odd shown cell
        values = mdf["s"].astype(object).tolist()
        values[draw(st.integers(0, R - 1))] = draw(st.sampled_from(odd_lists + [["x", "x", "y"], [1, 2]]))
        column = np.empty(R, dtype=object)
        for i, v in enumerate(values):
            column[i] = v
        mdf = mdf.assign(s=column)
    clean = _same_frame(mdf, df) and _same_kwargs(mkw, kwargs)
    odd = draw(odd_sources(mdf))
    return odd, mkw, clean and odd is mdf


def expected_wide(df: pd.DataFrame, kwargs: dict):
    positions = _names(kwargs["positions"])
    sep, shown = kwargs.get("tie_sep"), kwargs.get("shown")
    expected = []
    for i in range(len(df)):
        exp = []
        for c, v in enumerate(df[col].iloc[i] for col in positions):
            if _isna(v):
                continue
            parts = v.split(sep) if sep is not None and isinstance(v, str) and sep in v else [v]
            exp += [(q, c, i) for q in parts]
        if shown is not None:
            ranked, listed = [q for q, _, _ in exp], list(df[shown].iloc[i])
            assert all(any(_eq(q, t) for t in listed) for q in ranked), f"a ranked id not in {listed}"
            assert not any(_eq(q, t) for k, q in enumerate(listed) for t in listed[:k]), f"an id twice: {listed}"
            exp += [(q, UNRANKED, i) for q in listed if not any(_eq(q, t) for t in ranked)]
        expected.append(exp)
    return list(df.index), expected, list(range(len(df)))


def _wide_case(df, kwargs, clean=False):
    where = "Rankings.from_wide"
    status, out = fuzzing.attempt(where, bp.Rankings.from_wide, df, **kwargs)
    if status == "error":
        assert not clean, f"a valid input was refused: {out}"
        return _refused_by(out, where)
    ids, expected, first = expected_wide(df, kwargs)
    check_content(out, ids, expected)
    check_per_ranking(out, df, kwargs, first, {"user": kwargs.get("user"), "prompt": kwargs.get("prompt")})
    check_features(out, df, kwargs, expected)
    check_covariates(out, df, kwargs)
    follow_ups(where, out)


WIDE = pd.DataFrame({"1st": ["x", "y=z"], "2nd": ["y", "x"], "3rd": [None, None],
                     "shown": [["x", "y", "z"], ["x", "y", "z"]]})


@given(wide_frames())
@example((WIDE, {"positions": ["1st", "2nd", "3rd"], "shown": "shown", "tie_sep": "="}, True))
@example((WIDE.assign(**{"1st": [1, 2], "2nd": [2, 1]}), {"positions": ["1st", "2nd"]}, True))
# regressions found by this fuzzer: object-dtype string ids (JSON gave str), a shown list with a list in it
# (ValueError), a ranked id listed twice in shown (accepted), a dict in a kept column (accepted, to_json failed)
@example((WIDE.set_axis(pd.Index(["i0", "i1"], dtype=object)), {"positions": ["1st", "2nd"]}, True))
@example((WIDE.assign(shown=[["x", ["y"]], ["x", "y", "z"]]), {"positions": ["1st", "2nd"], "shown": "shown",
                                                               "tie_sep": "="}, False))
@example((WIDE.assign(shown=[["x", "y", "x"], ["x", "y", "z"]]), {"positions": ["1st", "2nd"], "shown": "shown",
                                                                 "tie_sep": "="}, False))
@example((WIDE.assign(k=[{"a": 1}, 2]), {"positions": ["1st", "2nd"], "tie_sep": "=", "keep": ["k"]}, False))
def test_from_wide(case):
    _wide_case(*case)


# -- scores -------------------------------------------------------------------------------------------------
@st.composite
def score_frames(draw):
    """``(df, kwargs, clean)``: valid k-wise ratings and ``from_scores`` arguments, then mutations."""
    R = draw(st.integers(1, 4))
    user = draw(st.sampled_from(["u", None]))
    pool = INT_OPTIONS if _one_in(draw, 4) else [f"r{i}" for i in range(5)]
    rows, keys = [], set()
    score_pool = draw(st.sampled_from([[1, 2, 3, 2, 4.5, -1, 0]] * 3 + [BIG]))
    for i in range(R):
        u, p = draw(st.sampled_from(USERS)), draw(st.sampled_from(PROMPTS))
        if user is None:
            p = f"q{i}"  # without a user a group is a prompt: one ranking each
        if (u, p) in keys:
            continue
        keys.add((u, p))
        k = draw(st.integers(2, 4))
        kind = draw(st.sampled_from(KINDS))
        for o in draw(st.permutations(pool))[:k]:
            rows.append({"prompt": p, "response": o, "score": draw(st.sampled_from(score_pool)),
                         "u": u, "kind": kind, "age": AGE[u], "len": draw(FINITE), 1: draw(FINITE)})
    if draw(st.booleans()):
        rows = [rows[j] for j in draw(st.permutations(range(len(rows))))]
    df = pd.DataFrame(rows, index=_index(draw, len(rows)))
    if _one_in(draw, 5):
        df["score"] = df["score"] > 1  # booleans count as 0 / 1
    present = list(dict.fromkeys(df["u"])) if user else ["all"]
    options = list(dict.fromkeys(df["response"]))
    kwargs = {"group": "prompt", "option": "response", "score": "score", "user": user,
              "higher_is_better": draw(st.booleans()),
              "features": draw(st.sampled_from([None, ["len"], "len", [], [1, "len"], "table"])),
              "user_covariates": draw(st.sampled_from([None, ["age"], [], "table"] if user else [None, "table"])),
              "keep": draw(st.sampled_from([None, ["kind"], "kind"]))}
    if kwargs["features"] == "table":
        kwargs["features"] = pd.DataFrame({"size": np.arange(len(options), dtype=float)}, index=options)
    if kwargs["user_covariates"] == "table":
        kwargs["user_covariates"] = pd.DataFrame({"age": [AGE.get(u, 1.0) for u in present]}, index=present)
    common = {"score": RANKS, "response": pool, "prompt": PROMPTS, "u": USERS, "kind": KINDS,
              "age": [20, 30.5], "len": [0.0, 1.5]}
    flag = kwargs.pop("higher_is_better")
    mdf, mkw = draw(_maybe_mutated(df, kwargs, common))
    kwargs["higher_is_better"] = mkw["higher_is_better"] = flag
    if _one_in(draw, 9):
        mkw["higher_is_better"] = draw(st.sampled_from(["yes", 1, None, np.bool_(False), np.array([True])]))
    _odd_tables(draw, mkw, options, present)
    clean = _same_frame(mdf, df) and _same_kwargs(mkw, kwargs)
    odd = draw(odd_sources(mdf))
    return odd, mkw, clean and odd is mdf


def expected_scores(df: pd.DataFrame, kwargs: dict):
    group, user = df[kwargs.get("group", "prompt")].tolist(), kwargs.get("user")
    keys = group if user is None else list(zip(df[user].tolist(), group))
    labels = df[kwargs.get("option", "response")].tolist()
    s = df[kwargs.get("score", "score")].tolist()
    key = [-v for v in s] if kwargs.get("higher_is_better", True) else s
    groups: dict = {}
    for pos, g in enumerate(keys):
        groups.setdefault(g, []).append(pos)
    first = [v[0] for v in groups.values()]
    return list(df.index[first]), [_order(labels, key, rows) for rows in groups.values()], first


def _scores_case(df, kwargs, clean=False):
    where = "Rankings.from_scores"
    status, out = fuzzing.attempt(where, bp.Rankings.from_scores, df, **kwargs)
    if status == "error":
        assert not clean, f"a valid input was refused: {out}"
        return _refused_by(out, where)
    ids, expected, first = expected_scores(df, kwargs)
    check_content(out, ids, expected)
    assert not (out.level == UNRANKED).any()
    check_per_ranking(out, df, kwargs, first, {"user": kwargs.get("user"), "prompt": kwargs.get("group", "prompt")})
    check_features(out, df, kwargs, expected)
    check_covariates(out, df, kwargs)
    follow_ups(where, out)


SCORES = pd.DataFrame({"prompt": ["p", "p", "p", "q", "q"], "response": ["x", "y", "z", "x", "y"],
                       "score": [3, 5, 3, 1, 2]})


@given(score_frames())
@example((SCORES, {}, True))
@example((SCORES, {"higher_is_better": False, "keep": []}, True))
# regressions found by this fuzzer: scores 2**53 and 2**53 + 1 tied, features=[] (AttributeError)
@example((SCORES.assign(score=np.array([1, 2**53, 2**53 + 1, 1, 2], dtype=np.int64)), {}, True))
@example((SCORES.assign(len=1.0), {"features": []}, True))
def test_from_scores(case):
    _scores_case(*case)
