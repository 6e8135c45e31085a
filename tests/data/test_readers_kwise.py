"""k-wise reader: ratings of several responses per (user, prompt) read as pairwise comparisons."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from bayespref.data.comparisons import Comparisons
from bayespref.data.readers import kwise_long
from bayespref.errors import DataError


def _ratings() -> pd.DataFrame:
    """User u1 rates 3 responses to p1 and 2 to p2; user u2 rates 3 responses to p1."""
    return pd.DataFrame({
        "user": ["u1", "u1", "u1", "u2", "u2", "u2", "u1", "u1"],
        "prompt": ["p1", "p1", "p1", "p1", "p1", "p1", "p2", "p2"],
        "model": ["m1", "m2", "m3", "m1", "m2", "m3", "m1", "m3"],
        "score": [80, 40, 80, 10, 90, 50, 70, 20],
        "length": [10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 5.0, 6.0],
        "age": [30, 30, 30, 50, 50, 50, 30, 30],
    })


def _read(df, **kw):
    return Comparisons.from_kwise(df, response="model", user="user", **kw)


def test_all_pairs_exact():
    d = _read(_ratings())
    f = d.frame
    assert list(d.comparison_ids) == ["0|1", "0|2", "1|2", "3|4", "3|5", "4|5", "6|7"]
    assert f["a"].tolist() == ["m1", "m1", "m2", "m1", "m1", "m2", "m1"]
    assert f["b"].tolist() == ["m2", "m3", "m3", "m2", "m3", "m3", "m3"]
    assert d.outcome.tolist() == [1.0, 0.5, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert f["score_a"].tolist() == [80, 80, 40, 10, 10, 90, 70] and f["score_b"].tolist() == [40, 80, 80, 90, 50, 50, 20]
    assert list(f.columns) == ["a", "b", "outcome", "user", "prompt", "score_a", "score_b"]
    assert d.user.tolist() == [0, 0, 0, 1, 1, 1, 0] and list(d.prompts) == ["p1", "p2"]


def test_group_of_k_gives_k_choose_2():
    k = 6
    df = pd.DataFrame({"prompt": ["p"] * k, "response": [f"r{i}" for i in range(k)], "score": np.arange(k)})
    assert Comparisons.from_kwise(df).n_comparisons == k * (k - 1) // 2 == 15


def test_adjacent_and_best_vs_rest():
    d = _read(_ratings(), pairs="adjacent")
    # u1/p1 ranking: m1 (80, row 0), m3 (80, row 2), m2 (40): pairs (0, 2) tie and (2, 1) -> a=row 1
    # u2/p1 ranking: m2 (90), m3 (50), m1 (10): pairs (4, 5), (5, 3) -> (3, 5); u1/p2: (6, 7)
    assert list(d.comparison_ids) == ["0|2", "1|2", "3|5", "4|5", "6|7"]
    assert d.outcome.tolist() == [0.5, 0.0, 0.0, 1.0, 1.0]
    d = _read(_ratings(), pairs="best_vs_rest")
    # best: row 0 (u1/p1, first of the two 80s), row 4 (u2/p1), row 6 (u1/p2)
    assert list(d.comparison_ids) == ["0|1", "0|2", "3|4", "4|5", "6|7"]
    assert d.outcome.tolist() == [1.0, 0.5, 0.0, 1.0, 1.0]


def test_ties_drop_and_no_user():
    d = _read(_ratings(), ties="drop")
    assert "0|2" not in list(d.comparison_ids) and d.n_comparisons == 6 and not d.has_ties
    # without a user, a group is a prompt: both users' ratings of p1 form one group of 6 rows
    df = _ratings().drop(columns="user").assign(model=[f"r{i}" for i in range(8)])
    d = Comparisons.from_kwise(df, response="model", check_connected=False)
    assert d.n_comparisons == 15 + 1 and d.n_users == 1


def test_matches_brute_force_on_random_groups():
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"user": rng.integers(0, 15, n), "prompt": rng.integers(0, 12, n),
                       "score": rng.integers(0, 4, n).astype(float)})
    df = df.assign(response=np.arange(n) % 7)
    df = df[~df.duplicated(["user", "prompt", "response"])].reset_index(drop=True)
    groups: dict = {}
    for i, row in enumerate(df.itertuples()):
        groups.setdefault((row.user, row.prompt), []).append(i)
    s = df["score"].to_numpy()
    for how in ("all", "adjacent", "best_vs_rest"):
        want = []
        for rows in groups.values():
            ranked = sorted(rows, key=lambda r: (-s[r], r))
            if how == "all":
                pairs = itertools.combinations(rows, 2)
            elif how == "adjacent":
                pairs = zip(ranked[:-1], ranked[1:])
            else:
                pairs = ((ranked[0], r) for r in ranked[1:])
            want += [(min(i, j), max(i, j)) for i, j in pairs]
        want.sort()
        d = Comparisons.from_kwise(df, user="user", pairs=how, singletons="drop", check_connected=False)
        got = [tuple(int(x) for x in c.split("|")) for c in d.comparison_ids]
        assert got == want, how
        ia, ib = np.array(got).T
        expect = np.where(s[ia] > s[ib], 1.0, np.where(s[ia] < s[ib], 0.0, 0.5))
        np.testing.assert_array_equal(d.outcome, expect)


def test_features_and_user_covariates():
    d = _read(_ratings(), features=["length"], user_covariates=["age"])
    assert d.feature_names == ("length",)
    assert d.xa[:, 0].tolist() == [10, 10, 20, 10, 10, 20, 5] and d.xb[:, 0].tolist() == [20, 30, 30, 20, 30, 30, 6]
    assert d.covariates[:, 0].tolist() == [30, 50]
    table = pd.DataFrame({"group": ["a", "b"]}, index=["u1", "u2"])
    assert _read(_ratings(), user_covariates=table).covariate_names == ("group[b]",)
    with pytest.raises(DataError, match=r"no row for 1 user\(s\) of column 'user'.*\['u2'\], in 3 row\(s\) "
                                        r"\['3\|4', '3\|5', '4\|5'\]"):
        _read(_ratings(), user_covariates=table.loc[["u1"]])


def test_round_trip_and_encode_without_scores(tmp_path):
    path = tmp_path / "ratings.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _ratings().to_dict("records")))
    d = _read(path, pairs="all")
    assert d.outcome.tolist() == [1.0, 0.5, 0.0, 0.0, 0.0, 1.0, 1.0]
    back = Comparisons.from_json(d.to_json())
    assert back._spec.to_long.func is kwise_long
    assert back.frame.values.tolist() == d.frame.values.tolist()
    new = pd.DataFrame({"user": ["u9", "u9"], "prompt": ["p1", "p1"], "model": ["m2", "m3"]})
    e = back.encode(new)
    assert e.a.tolist() == [1] and e.b.tolist() == [2] and np.isnan(e.outcome).all() and e.user.tolist() == [-1]
    with pytest.raises(DataError, match=r"pairs='adjacent' ranks the responses by 'score', which is not in"):
        _read(_ratings(), pairs="adjacent").encode(new)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_nan_scores():
    df = _ratings()
    df.loc[[2, 5], "score"] = np.nan
    with pytest.raises(DataError, match=r"score column 'score' has missing values \(NaN\) in 2 row\(s\) \[2, 5\]. "
                                        r"Fill or remove those rows"):
        _read(df)


def test_non_numeric_scores():
    df = _ratings().astype({"score": str})
    with pytest.raises(DataError, match=r"score column 'score' is not numeric .* pd.to_numeric"):
        _read(df)


def test_duplicate_response_in_group():
    df = _ratings()
    df.loc[1, "model"] = "m1"
    with pytest.raises(DataError, match=r"same response \('model'\) appears more than once within a \(user, prompt\) "
                                        r"group in 2 row\(s\) \[0, 1\]"):
        _read(df)


def test_single_rating_groups():
    df = pd.concat([_ratings(), pd.DataFrame({"user": ["u2"], "prompt": ["p2"], "model": ["m1"], "score": [5],
                                              "length": [1.0], "age": [50]})], ignore_index=True)
    with pytest.raises(DataError, match=r"1 group\(s\) have a single rating, which gives no comparison: 1 row\(s\) "
                                        r"\[8\] \(groups \['user', 'prompt'\]: \('u2', 'p2'\)\). Pass singletons='drop'"):
        _read(df)
    assert _read(df, singletons="drop").n_comparisons == 7


def test_bad_settings_and_missing_ids():
    with pytest.raises(DataError, match=r"pairs must be one of \['all', 'adjacent', 'best_vs_rest'\], got 'some'"):
        _read(_ratings(), pairs="some")
    with pytest.raises(DataError, match=r"ties must be one of \['tie', 'drop'\]"):
        _read(_ratings(), ties="half")
    df = _ratings()
    df.loc[4, "prompt"] = None
    with pytest.raises(DataError, match=r"column 'prompt' \(prompt ids\) has missing values \(NaN\) in 1 row\(s\) \[4\]"):
        _read(df)
    one = pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 1]})
    with pytest.raises(DataError, match=r"no comparisons: every group has a single rating or only tied scores"):
        Comparisons.from_kwise(one, ties="drop")
