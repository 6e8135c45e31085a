"""Tests of bayespref.data.rankings: the readers against hand-derived arrays, explode, subsets and
splits, JSON, and every bad input (a DataError that names the problem)."""

from __future__ import annotations

import dataclasses
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from bayespref.data.comparisons import Comparisons
from bayespref.data.rankings import UNRANKED, Rankings
from bayespref.errors import DataError

U = UNRANKED


# ---------------------------------------------------------------------------------------------
# fixtures: small frames whose encodings are worked out by hand in the tests
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def long_df():
    """Ranking r2 (c > a) first, then r1 with ranks a=4, c=2, b=2, d=1 (a tie, a gap)."""
    return pd.DataFrame({
        "rid": ["r2", "r2", "r1", "r1", "r1", "r1"],
        "opt": ["c", "a", "a", "c", "b", "d"],
        "rk": [1, 2, 4, 2, 2, 1],
        "u": ["v", "v", "w", "w", "w", "w"],
        "p": [7, 7, 8, 8, 8, 8],
        "len": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "grp": ["g1", "g1", "g2", "g2", "g2", "g2"],
        "age": [30, 30, 40, 40, 40, 40],
    }, index=[f"i{k}" for k in range(6)])


@pytest.fixture
def scores_df():
    return pd.DataFrame({
        "user": ["u1", "u1", "u2", "u1", "u2", "u1", "u1"],
        "prompt": ["p", "p", "p", "p", "p", "q", "q"],
        "response": ["x", "y", "x", "z", "y", "z", "x"],
        "score": [3, 5, 1, 3, 1, 7, 2],
        "len": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    })


@pytest.fixture
def pairs():
    df = pd.DataFrame({"a": ["x", "y", "x"], "b": ["y", "z", "z"], "outcome": [1, 0, 0.5],
                       "u": ["u1", "u2", "u1"], "len_a": [1.0, 2.0, 1.0], "len_b": [2.0, 3.0, 3.0],
                       "grp": ["g1", "g2", "g1"]}, index=["c0", "c1", "c2"])
    return Comparisons.from_frame(df, user="u", features=["len"], user_covariates=["grp"], check_connected=False)


def _pair_set(c: Comparisons) -> set:
    """(better, worse, outcome) of each comparison, oriented so that a tie lists its options sorted."""
    out = set()
    for a, b, y in zip(c.frame["a"], c.frame["b"], c.outcome):
        if y == 0.0:
            a, b, y = b, a, 1.0
        if y == 0.5:
            a, b = sorted((a, b))
        out.add((a, b, float(y)))
    return out


# ---------------------------------------------------------------------------------------------
# from_long
# ---------------------------------------------------------------------------------------------
def test_from_long_items_levels_ties_and_gaps(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", user="u", prompt="p")
    assert list(data.options) == ["a", "b", "c", "d"]
    assert list(data.ranking_ids) == ["r2", "r1"]  # order of first appearance
    # r1: d (rank 1) > {c, b} (rank 2, tied; c appears first) > a (rank 4: the gap is densified)
    assert data.items.tolist() == [[2, 0, -1, -1], [3, 2, 1, 0]]
    assert data.level.tolist() == [[0, 1, -1, -1], [0, 1, 1, 2]]
    assert data.items.dtype == np.int32 and data.level.dtype == np.int32
    assert data.user.tolist() == [0, 1] and list(data.users) == ["v", "w"]
    assert data.prompt.tolist() == [0, 1] and list(data.prompts) == [7, 8]
    assert data.has_ties and data.max_tie == 2
    assert data.n_shown.tolist() == [2, 4] and data.n_levels.tolist() == [2, 3]
    assert (data.n_rankings, data.n_obs, data.max_items, data.n_features) == (2, 2, 4, 0)
    assert data.x.shape == (2, 4, 0) and data.covariates.shape == (2, 0)
    assert Rankings.obs_dim == "ranking" and data.obs_dim == "ranking"
    assert data.frame.loc["r1", "user"] == "w" and data.frame.loc["r2", "prompt"] == 7


def test_from_long_without_user_is_one_user(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk")
    assert list(data.users) == ["all"] and data.user.tolist() == [0, 0]
    assert data.prompt is None and data.prompts is None and data.n_prompts == 0


def test_from_long_partial_is_unranked():
    df = pd.DataFrame({"ranking": 1, "option": ["w", "x", "y", "z"], "rank": [np.nan, 2, np.nan, 1]})
    data = Rankings.from_long(df, partial=True)
    # z > x, then w and y shown but not ranked, in order of appearance
    assert data.items.tolist() == [[3, 1, 0, 2]]
    assert data.level.tolist() == [[0, 1, U, U]]
    assert not data.has_ties and data.max_tie == 1 and data.n_levels.tolist() == [2]
    with pytest.raises(DataError, match="partial=True"):
        Rankings.from_long(df)


def test_from_long_choice_set():
    """A choice: one chosen item (rank 1), the others shown but not chosen."""
    df = pd.DataFrame({"ranking": 0, "option": ["a", "b", "c"], "rank": [None, 1, None]})
    data = Rankings.from_long(df, partial=True)
    assert data.items.tolist() == [[1, 0, 2]] and data.level.tolist() == [[0, U, U]]


def test_from_long_features_per_item_and_table(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", features=["len"])
    assert data.feature_names == ("len",) and data.x.shape == (2, 4, 1)
    # r2 = [c, a] rows i0, i1; r1 = [d, c, b, a] rows i5, i3, i4, i2; padding 0
    assert data.x[..., 0].tolist() == [[1.0, 2.0, 0.0, 0.0], [6.0, 4.0, 5.0, 3.0]]
    assert data.option_features is None
    table = pd.DataFrame({"size": [10.0, 20.0, 30.0, 40.0]}, index=["d", "c", "b", "a"])
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", features=table)
    assert data.x[..., 0].tolist() == [[20.0, 40.0, 0.0, 0.0], [10.0, 20.0, 30.0, 40.0]]
    assert list(data.option_features.index) == ["a", "b", "c", "d"]  # in option order


def test_user_covariates_coded_like_comparisons(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", user="u",
                              user_covariates=["grp", "age"])
    assert data.covariate_names == ("grp[g2]", "age")
    assert data.covariates.tolist() == [[0.0, 30.0], [1.0, 40.0]]  # users v, w
    assert data.ranking_covariates.tolist() == [[0.0, 30.0], [1.0, 40.0]]  # rankings r2 (v), r1 (w)
    table = pd.DataFrame({"grp": pd.Categorical(["b", "a"], categories=["b", "a"])}, index=["w", "v"])
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", user="u", user_covariates=table)
    assert data.covariate_names == ("grp[a]",) and data.covariates.tolist() == [[1.0], [0.0]]
    assert list(data.user_table.index) == ["v", "w"]


def test_keep_columns(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", keep=["grp"])
    assert data.frame["grp"].tolist() == ["g1", "g2"]


# ---------------------------------------------------------------------------------------------
# from_wide
# ---------------------------------------------------------------------------------------------
def test_from_wide_positions_and_tie_sep():
    wide = pd.DataFrame({"p1": ["x", "z=x", "y"], "p2": ["y", "y", "x"], "p3": ["z", None, np.nan]},
                        index=[10, 11, 12])
    data = Rankings.from_wide(wide, ["p1", "p2", "p3"], tie_sep="=")
    assert list(data.ranking_ids) == [10, 11, 12]
    assert data.items.tolist() == [[0, 1, 2], [2, 0, 1], [1, 0, -1]]
    assert data.level.tolist() == [[0, 1, 2], [0, 0, 1], [0, 1, -1]]
    assert data.has_ties and data.n_levels.tolist() == [3, 2, 2]
    # without tie_sep "z=x" is an option of its own
    plain = Rankings.from_wide(wide, ["p1", "p2", "p3"])
    assert "z=x" in plain.options and not plain.has_ties


def test_from_wide_shown_top_k_and_choice():
    wide = pd.DataFrame({"r1": ["y", "z"], "r2": [None, "x"],
                         "shown": [["w", "x", "y"], ("x", "y", "z", "w")]})
    data = Rankings.from_wide(wide, ["r1", "r2"], shown="shown")
    assert list(data.options) == ["w", "x", "y", "z"]
    # 0: y chosen among w, x, y; 1: z > x, then y and w shown but not ranked (in the shown order)
    assert data.items.tolist() == [[2, 0, 1, -1], [3, 1, 2, 0]]
    assert data.level.tolist() == [[0, U, U, -1], [0, 1, U, U]]
    assert data.n_shown.tolist() == [3, 4] and data.n_levels.tolist() == [1, 2]


def test_from_wide_keeps_integer_ids_and_features():
    wide = pd.DataFrame({"u": ["a", "b"], "first": [3, 1], "second": [1, 2], "third": [2, 3]})
    table = pd.DataFrame({"f": [0.1, 0.2, 0.3]}, index=[1, 2, 3])
    data = Rankings.from_wide(wide, ["first", "second", "third"], user="u", features=table)
    assert data.options.dtype == np.int64 and list(data.options) == [1, 2, 3]
    assert data.items.tolist() == [[2, 0, 1], [0, 1, 2]]
    assert data.x[..., 0].tolist() == [[0.3, 0.1, 0.2], [0.1, 0.2, 0.3]]


# ---------------------------------------------------------------------------------------------
# from_scores
# ---------------------------------------------------------------------------------------------
def test_from_scores_groups_by_user_and_prompt(scores_df):
    data = Rankings.from_scores(scores_df, user="user", features=["len"])
    assert list(data.ranking_ids) == [0, 2, 5]  # the first row of each (user, prompt) group
    assert list(data.options) == ["x", "y", "z"]
    # (u1, p): y 5 > x 3 = z 3; (u2, p): x 1 = y 1; (u1, q): z 7 > x 2
    assert data.items.tolist() == [[1, 0, 2], [0, 1, -1], [2, 0, -1]]
    assert data.level.tolist() == [[0, 1, 1], [0, 0, -1], [0, 1, -1]]
    assert data.user.tolist() == [0, 1, 0] and data.prompt.tolist() == [0, 0, 1]
    assert list(data.prompts) == ["p", "q"] and data.has_ties
    assert data.x[..., 0].tolist() == [[2.0, 1.0, 4.0], [3.0, 5.0, 0.0], [6.0, 7.0, 0.0]]


def test_from_scores_lower_is_better_and_no_user(scores_df):
    data = Rankings.from_scores(scores_df[scores_df["user"] == "u1"], higher_is_better=False)
    assert data.items.tolist() == [[0, 2, 1], [0, 2, -1]]
    assert data.level.tolist() == [[0, 0, 1], [0, 1, -1]]
    assert list(data.users) == ["all"]


# ---------------------------------------------------------------------------------------------
# from_comparisons and explode
# ---------------------------------------------------------------------------------------------
def test_from_comparisons(pairs):
    data = Rankings.from_comparisons(pairs)
    assert list(data.ranking_ids) == ["c0", "c1", "c2"]
    assert data.items.tolist() == [[0, 1], [2, 1], [0, 2]]  # x beat y; z beat y (b won); x tied z
    assert data.level.tolist() == [[0, 1], [0, 1], [0, 0]]
    assert data.x[..., 0].tolist() == [[1.0, 2.0], [3.0, 2.0], [1.0, 3.0]]
    assert data.user.tolist() == [0, 1, 0] and data.covariate_names == ("grp[g2]",)
    assert data.ranking_covariates.tolist() == [[0.0], [1.0], [0.0]]
    assert data.has_ties


def test_from_comparisons_round_trip(pairs):
    back = Rankings.from_comparisons(pairs).explode()
    assert _pair_set(back) == _pair_set(pairs)
    assert back.outcome.tolist() == [1.0, 1.0, 0.5]
    assert back.frame["user"].tolist() == ["u1", "u2", "u1"]
    np.testing.assert_array_equal(back.covariates, pairs.covariates)
    # features follow the options: z's len is 3 in c1 (b) and c2 (b)
    assert back.xa[:, 0].tolist() == [1.0, 3.0, 1.0] and back.xb[:, 0].tolist() == [2.0, 2.0, 3.0]


def test_explode_pairs_of_a_tied_ranking(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk")
    ex = data.explode()
    got = list(zip(ex.frame["a"], ex.frame["b"], ex.outcome, ex.frame["ranking"]))
    assert got == [("c", "a", 1.0, "r2"),
                   ("d", "c", 1.0, "r1"), ("d", "b", 1.0, "r1"), ("d", "a", 1.0, "r1"),
                   ("c", "b", 0.5, "r1"), ("c", "a", 1.0, "r1"), ("b", "a", 1.0, "r1")]
    assert ex.has_ties and ex.y.tolist() == [1, 1, 1, 1, 2, 1, 1]


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_explode_complete_ranking_counts(k):
    wide = pd.DataFrame({f"p{i}": [f"o{i}", f"o{(i + 1) % k}"] for i in range(k)})
    ex = Rankings.from_wide(wide, [f"p{i}" for i in range(k)]).explode()
    assert ex.n_comparisons == 2 * k * (k - 1) // 2
    first = ex.frame[ex.frame["ranking"] == 0]
    assert set(zip(first["a"], first["b"])) == {(f"o{i}", f"o{j}") for i, j in combinations(range(k), 2)}
    assert (ex.outcome == 1.0).all()


def test_explode_top_k_and_choice_counts():
    # top-2 of 5 shown: 1 pair between the two ranked, 2 x 3 ranked vs unranked, none among the 3 unranked
    wide = pd.DataFrame({"r1": ["a", "b"], "r2": ["b", None], "shown": [list("abcde"), list("abcd")]})
    ex = Rankings.from_wide(wide, ["r1", "r2"], shown="shown").explode()
    assert (ex.frame["ranking"] == 0).sum() == 1 + 2 * 3
    assert (ex.frame["ranking"] == 1).sum() == 3  # a choice of b among 4: b beats each other
    assert set(ex.frame.loc[ex.frame["ranking"] == 1, "a"]) == {"b"}


def test_explode_matches_from_frame(long_df):
    """explode() builds its Comparisons directly: the same as Comparisons.from_frame on its frame."""
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", user="u", prompt="p",
                              features=["len"], user_covariates=["grp", "age"])
    ex = data.explode()
    ref = Comparisons.from_frame(ex.frame, user="user", prompt="prompt", features=["len"],
                                 user_covariates=data.user_table, check_connected=False)
    for name in ("a", "b", "user", "prompt", "outcome", "y", "xa", "xb", "covariates", "comparison_covariates"):
        np.testing.assert_array_equal(getattr(ex, name), getattr(ref, name), err_msg=name)
        assert getattr(ex, name).dtype == getattr(ref, name).dtype, name
    for name in ("options", "users", "prompts"):
        pd.testing.assert_index_equal(getattr(ex, name), getattr(ref, name))
    assert ex.feature_names == ref.feature_names and ex.covariate_names == ref.covariate_names
    assert ex._spec == ref._spec
    # the exploded data encode new comparisons like data read by from_frame
    new = pd.DataFrame({"a": ["a"], "b": ["d"], "user": ["w"], "prompt": [8], "len_a": [1.0], "len_b": [2.0]})
    np.testing.assert_array_equal(ex.encode(new).comparison_covariates, ref.encode(new).comparison_covariates)


def test_explode_of_a_subset_keeps_the_indexes(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", user="u")
    ex = data.subset([0]).explode()  # r2: c > a, user v
    assert list(ex.options) == ["a", "b", "c", "d"] and list(ex.users) == ["v", "w"]
    assert ex.a.tolist() == [2] and ex.b.tolist() == [0] and ex.user.tolist() == [0]


# ---------------------------------------------------------------------------------------------
# subsets, splits, JSON, display
# ---------------------------------------------------------------------------------------------
def _many(n_users=6, per_user=3):
    rows = []
    for u in range(n_users):
        for j in range(per_user):
            k = 2 + (u + j) % 3
            rows.append({"u": f"u{u}", "p": j, **{f"r{i}": f"o{(u + j + i) % 5}" for i in range(k)}})
    return Rankings.from_wide(pd.DataFrame(rows), ["r0", "r1", "r2", "r3"], user="u", prompt="p")


def test_subset_narrows_and_keeps_labels(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", user="u")
    sub = data.subset(np.array([True, False]))
    assert sub.n_rankings == 1 and sub.max_items == 2 and not sub.has_ties
    assert sub.items.tolist() == [[2, 0]] and list(sub.ranking_ids) == ["r2"]
    assert list(sub.options) == ["a", "b", "c", "d"] and list(sub.users) == ["v", "w"]
    assert not sub.items.flags.writeable


def test_split_by_user_and_kfold():
    data = _many()
    train, test = data.split_by_user(test_size=2, seed=3)
    assert test.n_rankings + train.n_rankings == data.n_rankings
    assert set(test.user) & set(train.user) == set() and len(set(test.user)) == 2
    assert list(test.users) == list(data.users)
    folds = data.kfold(by="ranking", k=3, seed=1)
    held = np.concatenate([test.ranking_ids.to_numpy() for _, test in folds])
    assert sorted(held) == sorted(data.ranking_ids) and len(folds) == 3
    user_folds = data.kfold(k=2)
    assert all(set(tr.user).isdisjoint(te.user) for tr, te in user_folds)
    train, test = data.split_by_prompt(test_size=1, seed=0)
    assert len(set(test.prompt)) == 1 and set(test.prompt).isdisjoint(train.prompt)


def test_json_round_trip_is_exact(long_df):
    table = pd.DataFrame({"size": [0.1, 1 / 3, 2.5e-17, 4.0]}, index=["a", "b", "c", "d"])
    datas = [Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk", user="u", prompt="p",
                                features=table, user_covariates=["grp", "age"], keep=["age"]),
             Rankings.from_wide(pd.DataFrame({"1": [1, 2], "2": [2, 3], "s": [[1, 2, 3], [2, 3]]}), ["1", "2"],
                                shown="s")]
    for data in datas:
        back = Rankings.from_json(data.to_json())
        for f in dataclasses.fields(Rankings):
            mine, theirs = getattr(data, f.name), getattr(back, f.name)
            if isinstance(mine, np.ndarray):
                np.testing.assert_array_equal(mine, theirs)
                assert mine.dtype == theirs.dtype and not theirs.flags.writeable
            elif isinstance(mine, pd.DataFrame):
                pd.testing.assert_frame_equal(mine, theirs)
            elif isinstance(mine, pd.Index):
                pd.testing.assert_index_equal(mine, theirs, exact=True)
            else:
                assert mine == theirs, f.name


def test_describe_and_repr():
    wide = pd.DataFrame({"r1": ["a", "b=c"], "r2": ["b", None], "shown": [list("abc"), list("bc")]})
    data = Rankings.from_wide(wide, ["r1", "r2"], shown="shown", tie_sep="=")
    d = data.describe()
    assert d["n_rankings"] == 2 and d["n_pairs"] == 3 + 1 and d["share_partial"] == 0.5
    assert d["share_with_ties"] == 0.5 and d["n_components"] == 1 and d["mean_shown"] == 2.5
    assert repr(data).startswith("<Rankings: 2 rankings of 3 options by 1 user(s)>")


def test_frozen_and_read_only(long_df):
    data = Rankings.from_long(long_df, ranking="rid", option="opt", rank="rk")
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.items = None
    with pytest.raises(ValueError):
        data.level[0, 0] = 5


# ---------------------------------------------------------------------------------------------
# bad input: each a DataError naming the problem
# ---------------------------------------------------------------------------------------------
def _long(**cols):
    base = {"ranking": [1, 1, 2, 2], "option": ["a", "b", "a", "c"], "rank": [1, 2, 1, 2]}
    base.update(cols)
    return pd.DataFrame(base)


def _wide(**cols):
    base = {"r1": ["a", "b"], "r2": ["b", "c"], "r3": ["c", "a"]}
    base.update(cols)
    return pd.DataFrame(base)


def _scores(**cols):
    base = {"prompt": ["p", "p", "q", "q"], "response": ["a", "b", "a", "c"], "score": [1.0, 2.0, 3.0, 4.0]}
    base.update(cols)
    return pd.DataFrame(base)


L, W, S = Rankings.from_long, Rankings.from_wide, Rankings.from_scores
POS = ["r1", "r2", "r3"]

BAD = {
    # long
    "not a frame": (lambda: L([1, 2]), "expected a pandas DataFrame"),
    "empty": (lambda: L(_long().iloc[:0]), "empty"),
    "duplicated row labels": (lambda: L(_long().set_axis([0, 0, 1, 2])), "not unique"),
    "missing column": (lambda: L(_long().drop(columns="rank")), "column 'rank'"),
    "column in two roles": (lambda: L(_long(), rank="option"), "mapped to both"),
    "NaN ranking id": (lambda: L(_long(ranking=[1, None, 2, 2])), "ranking ids"),
    "NaN option": (lambda: L(_long(option=["a", None, "a", "c"])), r"option ids\) has missing"),
    "NaN rank": (lambda: L(_long(rank=[1, np.nan, 1, 2])), r"partial=True"),
    "string rank": (lambda: L(_long(rank=["1", "2", "1", "2"])), "must hold numbers"),
    "bool rank": (lambda: L(_long(rank=[True, False, True, False])), "must hold numbers"),
    "infinite rank": (lambda: L(_long(rank=[1, np.inf, 1, 2])), "infinite"),
    "partial not bool": (lambda: L(_long(), partial="yes"), "True or False"),
    "duplicated option": (lambda: L(_long(option=["a", "a", "a", "c"])), r"more than once within 1 ranking\(s\) \[1\]"),
    "one item": (lambda: L(_long(ranking=[1, 1, 1, 2], option=["a", "b", "c", "a"])), r"\[2\] show fewer than 2 options"),
    "nothing ranked": (lambda: L(_long(rank=[np.nan, np.nan, 1, 2]), partial=True), r"\[1\] rank nothing"),
    "user varies in a ranking": (lambda: L(_long(u=["x", "y", "x", "x"]), user="u"), "varies within 1 ranking"),
    "unknown feature": (lambda: L(_long(), features=["len"]), "column 'len'"),
    "string feature": (lambda: L(_long(f=list("abcd")), features=["f"]), "not numeric"),
    "NaN feature": (lambda: L(_long(f=[1.0, np.nan, 1.0, 1.0]), features=["f"]), "missing values"),
    "infinite feature": (lambda: L(_long(f=[1.0, np.inf, 1.0, 1.0]), features=["f"]), "infinite"),
    "features table lacks an option": (lambda: L(_long(), features=pd.DataFrame({"f": [1.0]}, index=["a"])),
                                       r"no row for 2 option\(s\).*rankings"),
    "features not names": (lambda: L(_long(), features=3), "features= must be"),
    "covariate varies within user": (lambda: L(_long(u=list("xxxx"), g=list("abab")), user="u",
                                               user_covariates=["g"]), "varies within user"),
    "covariate table lacks a user": (lambda: L(_long(u=list("xxyy")), user="u",
                                               user_covariates=pd.DataFrame({"g": [1.0]}, index=["x"])),
                                     r"no row for 1 user\(s\) of column 'u'.*\['y'\]"),
    "user_covariates wrong type": (lambda: L(_long(), user_covariates=3), "user_covariates must be"),
    "kept column varies": (lambda: L(_long(k=[1, 2, 3, 3]), keep=["k"]), "varies within"),
    "kept column clashes": (lambda: L(_long(u=list("xxyy"), user=list("aabb")), user="u", keep=["user"]), "clash"),
    # wide
    "gap in a row": (lambda: W(_wide(r2=["b", None]), POS), r"\[1\] have a missing position before a filled one"),
    "no positions": (lambda: W(_wide(), []), "names no columns"),
    "unknown position column": (lambda: W(_wide(), ["r1", "r9"]), "column 'r9'"),
    "duplicate in a row": (lambda: W(_wide(r3=["a", "a"]), POS), r"more than once within 1 ranking\(s\) \[0\]"),
    "all positions empty": (lambda: W(_wide(r1=[None, "b"], r2=[None, "c"], r3=[None, "a"]), POS),
                            r"\[0\] rank nothing"),
    "one ranked, nothing else shown": (lambda: W(_wide(r2=[None, "c"], r3=[None, "a"]), POS), "fewer than 2"),
    "list cell": (lambda: W(_wide(r3=[["c"], "a"]), POS), "cannot be labels"),
    "empty tie_sep": (lambda: W(_wide(), POS, tie_sep=""), "non-empty string"),
    "empty id in a tie": (lambda: W(_wide(r1=["a=", "b"]), POS, tie_sep="="), "empty id"),
    "shown not a list": (lambda: W(_wide(s=["abc", ["a", "b", "c"]]), POS, shown="s"), "must hold a list"),
    "shown lacks a ranked id": (lambda: W(_wide(s=[["a", "b"], ["a", "b", "c"]]), POS, shown="s"),
                                r"missing from the list.*'c'"),
    "NaN in shown": (lambda: W(_wide(s=[["a", "b", "c", None], ["a", "b", "c"]]), POS, shown="s"), "missing ids"),
    "duplicate in shown": (lambda: W(_wide(r3=[None, "a"], s=[["a", "b", "d", "d"], ["a", "b", "c"]]), POS,
                                     shown="s"), "more than once"),
    "wide features as names": (lambda: W(_wide(), POS, features=["f"]), "must be a DataFrame"),
    "NaN user": (lambda: W(_wide(u=["x", None]), POS, user="u"), "user ids"),
    # scores
    "NaN score": (lambda: S(_scores(score=[1.0, np.nan, 3.0, 4.0])), "score column 'score' has missing"),
    "string score": (lambda: S(_scores(score=list("abcd"))), "not numeric"),
    "single rating": (lambda: S(_scores(prompt=["p", "p", "p", "q"], response=["a", "b", "c", "a"])),
                      r"\[3\] show fewer than 2 options"),
    "response twice": (lambda: S(_scores(response=["a", "a", "a", "c"])), r"more than once.*row\(s\) \[0, 1\]"),
    "higher_is_better not bool": (lambda: S(_scores(), higher_is_better=None), "True or False"),
    # found by tests/fuzz/test_fuzz_rankings.py (each crashed or was accepted before the fix)
    "ranked id twice in shown": (lambda: W(_wide(r3=[None, "a"], s=[["a", "b", "a"], ["a", "b", "c"]]), POS,
                                           shown="s"), r"lists the same id more than once in 1 ranking\(s\) \[0\]"),
    "list inside a shown list": (lambda: W(_wide(r3=[None, "a"], s=[["a", "b", ["c"]], ["a", "b", "c"]]), POS,
                                           shown="s"), "cannot be labels"),
    "unhashable kept column (wide)": (lambda: W(_wide(k=[{"a": 1}, [1]]), POS, keep=["k"]), r"column 'k' \(keep=\)"),
    "features same as text": (lambda: L(_long(**{"1": [1.0] * 4}).assign(**{"x": 0.0}).set_axis(
        ["ranking", "option", "rank", "1", 1], axis=1), features=[1, "1"]), "same as text"),
    "MultiIndex columns (long)": (lambda: L(_long().set_axis(pd.MultiIndex.from_tuples(
        [("ranking", ""), ("option", ""), ("rank", "x")]), axis=1)), "MultiIndex"),
    "MultiIndex columns (wide)": (lambda: W(_wide().set_axis(pd.MultiIndex.from_tuples(
        [("r1", ""), ("r2", ""), ("r3", "x")]), axis=1), POS), "MultiIndex"),
    "MultiIndex columns (scores)": (lambda: S(_scores().set_axis(pd.MultiIndex.from_tuples(
        [("prompt", ""), ("response", ""), ("score", "x")]), axis=1)), "MultiIndex"),
    "missing score column": (lambda: S(_scores().drop(columns="score")), "column 'score'"),
    # from_comparisons
    "not comparisons": (lambda: Rankings.from_comparisons(_long()), "expected a bayespref.Comparisons"),
    "comparisons without outcomes": (
        lambda: Rankings.from_comparisons(Comparisons.from_frame(
            pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "outcome": [1, 0]})).encode(
            pd.DataFrame({"a": ["x"], "b": ["z"]}))), "no outcome"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_data_error(case):
    make, match = BAD[case]
    with pytest.raises(DataError, match=match):
        make()


def test_bad_subset_split_and_json():
    data = _many()
    with pytest.raises(DataError, match="one value per ranking"):
        data.subset(np.array([True]))
    with pytest.raises(DataError, match="k must be an integer"):
        data.kfold(k=1)
    with pytest.raises(DataError, match="by must be"):
        data.kfold(by="option")
    with pytest.raises(DataError, match="no prompt column"):
        Rankings.from_wide(_wide(), POS).split_by_prompt()
    with pytest.raises(DataError, match="not a serialised bayespref Rankings"):
        Rankings.from_json('{"format": "bayespref.Comparisons/1"}')
    with pytest.raises(DataError, match="not JSON"):
        Rankings.from_json("{")


# ---------------------------------------------------------------------------------------------
# regressions found by tests/fuzz/test_fuzz_rankings.py
# ---------------------------------------------------------------------------------------------
def _assert_same(data: Rankings, back: Rankings) -> None:
    for f in dataclasses.fields(Rankings):
        mine, theirs = getattr(data, f.name), getattr(back, f.name)
        if isinstance(mine, np.ndarray):
            np.testing.assert_array_equal(mine, theirs)
            assert mine.dtype == theirs.dtype
        elif isinstance(mine, pd.DataFrame):
            pd.testing.assert_frame_equal(mine, theirs)
        elif isinstance(mine, pd.Index):
            pd.testing.assert_index_equal(mine, theirs, exact=True)
        else:
            assert mine == theirs, f.name


def test_json_round_trip_keeps_dtypes_and_odd_labels():
    """Object (not str) ids and covariate columns, an empty covariate table, tuple / bytes / timestamp
    labels, a categorical option index and a tuple column name come back exactly."""
    wide = pd.DataFrame({"1st": ["x", "y"], "2nd": ["y", "z"], "u": ["a", "b"]},
                        index=pd.Index(["i0", "i1"], dtype=object))
    covs = pd.DataFrame({"g": pd.Series(["lo", "hi"], dtype=object, index=["a", "b"])})
    assert covs["g"].dtype == object
    long = pd.DataFrame({("rid", 1): [1, 1, 2, 2],
                         "option": pd.Series([(1, 2), b"q", pd.Timestamp("2024-01-01"), (1, 2)], dtype=object),
                         "rank": [1, 2, 1, 2]})
    scores = pd.DataFrame({"prompt": ["p", "p"], "response": pd.Categorical(["x", "y"], categories=["y", "x", "w"]),
                           "score": [1, 2]})
    datas = [Rankings.from_wide(wide, ["1st", "2nd"], user="u", user_covariates=covs),
             Rankings.from_wide(wide, ["1st", "2nd"], user="u", user_covariates=pd.DataFrame(index=["a", "b"])),
             Rankings.from_long(long, ranking=("rid", 1)),
             Rankings.from_scores(scores)]
    for data in datas:
        _assert_same(data, Rankings.from_json(data.to_json()))


def test_to_json_refuses_what_json_cannot_hold():
    data = Rankings.from_wide(pd.DataFrame({"1": [1 + 2j, 3j], "2": [3j, 1 + 2j]}), ["1", "2"])
    with pytest.raises(DataError, match=r"to_json: the option labels .* type complex"):
        data.to_json()


def test_big_integer_ranks_and_scores_are_not_tied():
    """float64 cannot tell 2**53 from 2**53 + 1: integer ranks and scores are compared exactly."""
    big = np.array([2**53, 2**53 + 1], dtype=np.int64)
    long = Rankings.from_long(pd.DataFrame({"ranking": [1, 1], "option": ["x", "y"], "rank": big}))
    assert long.level.tolist() == [[0, 1]] and not long.has_ties
    scores = Rankings.from_scores(pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": big}))
    assert scores.items.tolist() == [[1, 0]] and scores.level.tolist() == [[0, 1]]


def test_empty_feature_list_is_no_features():
    long = Rankings.from_long(_long(), features=[])
    scores = Rankings.from_scores(_scores(), features=[])
    for data in (long, scores):
        assert data.x.shape == (2, 2, 0) and data.feature_names == ()
        assert data.explode().n_features == 0


def test_feature_columns_are_read_by_their_exact_name():
    df = _long().assign(**{"1": [5.0, 6.0, 7.0, 8.0]})
    df[1] = [1.0, 2.0, 3.0, 4.0]
    assert Rankings.from_long(df, features=[1]).x[:, :, 0].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert Rankings.from_long(df, features=["1"]).x[:, :, 0].tolist() == [[5.0, 6.0], [7.0, 8.0]]


def test_empty_subset_describes_and_explodes():
    empty = _many().subset([])
    assert empty.items.shape == (0, 0) and empty.max_tie == 0 and empty.n_levels.shape == (0,)
    assert "no rankings" in repr(empty) and empty.describe()["n_pairs"] == 0
    assert empty.explode().n_comparisons == 0
    _assert_same(empty, Rankings.from_json(empty.to_json()))
