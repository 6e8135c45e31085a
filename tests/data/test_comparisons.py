"""Tests of bayespref.data: encoding, adapters, encode(), splits, and every bad input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError, DataWarning


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def df():
    """Six judgements of options x, y, z by three users; one tie; features and a covariate."""
    return pd.DataFrame({
        "a": ["x", "y", "z", "x", "y", "x"],
        "b": ["y", "z", "x", "z", "x", "y"],
        "outcome": [1, 0, "tie", 1.0, True, False],
        "u": ["u2", "u1", "u3", "u2", "u1", "u3"],
        "p": [10, 20, 10, 30, 20, 10],
        "len_a": [1.0, 2.0, 3.0, 1.0, 2.0, 1.0],
        "len_b": [2.0, 3.0, 1.0, 3.0, 1.0, 2.0],
        "group": ["g2", "g1", "g1", "g2", "g1", "g1"],
        "age": [30, 40, 50, 30, 40, 50],
    }, index=[f"r{i}" for i in range(6)])


@pytest.fixture
def data(df):
    return Comparisons.from_frame(df, user="u", prompt="p", features=["len"],
                                  user_covariates=["group", "age"])


def big(n_users=10, n_options=6, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    n = n_users * per_user
    a = rng.integers(0, n_options, n)
    b = (a + rng.integers(1, n_options, n)) % n_options
    return pd.DataFrame({"a": a, "b": b, "outcome": rng.integers(0, 2, n),
                         "u": np.repeat([f"u{i}" for i in range(n_users)], per_user),
                         "p": rng.integers(0, 7, n)})


# ---------------------------------------------------------------------------------------------
# happy paths: encoding
# ---------------------------------------------------------------------------------------------
def test_encoding_indices_and_labels(data, df):
    assert list(data.options) == ["x", "y", "z"]
    assert list(data.users) == ["u1", "u2", "u3"]
    assert list(data.prompts) == [10, 20, 30]
    assert data.a.tolist() == [0, 1, 2, 0, 1, 0]
    assert data.b.tolist() == [1, 2, 0, 2, 0, 1]
    assert data.user.tolist() == [1, 0, 2, 1, 0, 2]
    assert data.prompt.tolist() == [0, 1, 0, 2, 1, 0]
    assert data.outcome.tolist() == [1.0, 0.0, 0.5, 1.0, 1.0, 0.0]
    assert data.y.tolist() == [1, 0, 2, 1, 1, 0]
    assert data.has_ties
    assert list(data.comparison_ids) == list(df.index)
    for name in ("a", "b", "user", "prompt", "y"):
        assert getattr(data, name).dtype == np.int32
    assert data.outcome.dtype == np.float64
    assert (data.n_comparisons, data.n_options, data.n_users, data.n_features, data.n_covariates) == (6, 3, 3, 1, 2)


def test_encoding_features_and_covariates(data, df):
    assert data.feature_names == ("len",)
    assert data.xa.shape == data.xb.shape == (6, 1) and data.xa.dtype == np.float64
    np.testing.assert_array_equal(data.xa[:, 0], df["len_a"])
    np.testing.assert_array_equal(data.xb[:, 0], df["len_b"])
    assert data.covariate_names == ("group[g2]", "age")
    # users u1, u2, u3: groups g1, g2, g1; ages 40, 30, 50
    np.testing.assert_array_equal(data.covariates, [[0, 40], [1, 30], [0, 50]])
    np.testing.assert_array_equal(data.comparison_covariates, data.covariates[data.user])
    assert list(data.user_table.index) == ["u1", "u2", "u3"]
    assert data.option_features is None


def test_canonical_frame_and_immutability(data):
    assert list(data.frame.columns) == ["a", "b", "outcome", "user", "prompt", "len_a", "len_b"]
    assert data.frame["outcome"].tolist() == data.outcome.tolist()
    with pytest.raises(ValueError):
        data.a[0] = 5
    with pytest.raises(AttributeError):
        data.a = np.zeros(6)
    assert pickle.loads(pickle.dumps(data)).a.tolist() == data.a.tolist()


def test_minimal_frame_defaults():
    d = Comparisons.from_frame(pd.DataFrame({"a": [3, 1], "b": [1, 2], "outcome": [0, 1]}))
    assert list(d.users) == ["all"] and d.user.tolist() == [0, 0]
    assert d.prompt is None and d.prompts is None
    assert d.xa.shape == (2, 0) and d.covariates.shape == (1, 0)
    assert list(d.options) == [1, 2, 3] and d.options.dtype == np.int64
    assert not d.has_ties
    arrays = d.to_arrays()
    assert set(arrays) == {"a", "b", "user", "outcome", "y", "xa", "xb", "covariates", "n_options", "n_users"}
    assert arrays["n_options"] == 3 and arrays["n_users"] == 1


def test_to_arrays_has_prompt(data):
    assert data.to_arrays()["prompt"].tolist() == data.prompt.tolist()


def test_mixed_label_types_keep_original_labels():
    d = Comparisons.from_frame(pd.DataFrame({"a": [2, "b", 10], "b": ["a", 2, "b"], "outcome": [1, 0, 1]}))
    assert list(d.options) == [10, 2, "a", "b"]  # sorted by text
    assert d.options[1] == 2 and isinstance(d.options[1], int)


def test_option_feature_table(df):
    table = pd.DataFrame({"size": [3.0, 1.0, 2.0], "flag": [True, False, True]}, index=["z", "x", "y"])
    d = Comparisons.from_frame(df, features=table)
    assert d.feature_names == ("size", "flag")
    assert list(d.option_features.index) == ["x", "y", "z"]
    np.testing.assert_array_equal(d.xa[:3], [[1, 0], [2, 1], [3, 1]])
    np.testing.assert_array_equal(d.xb[:3], [[2, 1], [3, 1], [1, 0]])


def test_user_covariate_table_categorical_and_bool(df):
    table = pd.DataFrame({"edu": pd.Categorical(["hi", "lo", "mid"], categories=["lo", "mid", "hi"]),
                          "smoker": [True, False, False], "w": [1.5, 2.5, 3.5]},
                         index=["u1", "u2", "u3"])
    d = Comparisons.from_frame(df, user="u", user_covariates=table)
    assert d.covariate_names == ("edu[mid]", "edu[hi]", "smoker[True]", "w")
    np.testing.assert_array_equal(d.covariates, [[0, 1, 1, 1.5], [0, 0, 0, 2.5], [1, 0, 0, 3.5]])
    assert d.covariates.dtype == np.float64


def test_describe_and_repr(data):
    s = data.describe()
    assert s["n_comparisons"] == 6 and s["n_options"] == 3 and s["n_users"] == 3
    assert s["share_ties"] == pytest.approx(1 / 6) and s["n_components"] == 1
    text = repr(data)
    assert "6 comparisons of 3 options by 3 user(s)" in text and "len" in text and "group[g2]" in text


# ---------------------------------------------------------------------------------------------
# happy paths: adapters
# ---------------------------------------------------------------------------------------------
def test_from_counts():
    counts = pd.DataFrame({"i": ["x", "y"], "j": ["y", "z"], "wa": [2, 0], "wb": [1, 1], "t": [0, 2],
                           "judge": ["k1", "k2"]}, index=["c1", "c2"])
    d = Comparisons.from_counts(counts, a="i", b="j", wins_a="wa", wins_b="wb", ties="t", user="judge")
    assert d.outcome.tolist() == [1, 1, 0, 0, 0.5, 0.5]
    assert list(d.comparison_ids) == ["c1:0", "c1:1", "c1:2", "c2:0", "c2:1", "c2:2"]
    assert d.frame["user"].tolist() == ["k1"] * 3 + ["k2"] * 3
    assert d.a.tolist() == [0, 0, 0, 1, 1, 1]
    again = d.encode(counts)  # encode re-applies the adapter
    assert again.outcome.tolist() == d.outcome.tolist()


def test_from_wide_with_covariates_and_drop():
    wide = pd.DataFrame({"sid": ["s1", "s2", "s3"], "sex": ["f", "m", "f"],
                         "A:B": [1, -1, 0], "B:C": [np.nan, 1, 1], "A:C": [1, 1, -1]})
    with pytest.raises(DataError, match=r"1 missing cell.*\('s1', 'B:C'\).*missing='drop'"):
        Comparisons.from_wide(wide, subject="sid", covariates=["sex"])
    d = Comparisons.from_wide(wide, subject="sid", covariates=["sex"], missing="drop")
    assert d.n_comparisons == 8
    assert list(d.comparison_ids)[:3] == ["s1|A:B", "s1|A:C", "s2|A:B"]
    assert d.outcome.tolist() == [1, 1, 0, 1, 1, 0.5, 1, 0]
    assert list(d.options) == ["A", "B", "C"] and list(d.users) == ["s1", "s2", "s3"]
    assert d.covariate_names == ("sex[m]",)
    np.testing.assert_array_equal(d.covariates[:, 0], [0, 1, 0])


def test_from_wide_custom_coding():
    wide = pd.DataFrame({"sid": [1, 2], "A-B": ["a", "b"], "B-C": ["b", "="]})
    d = Comparisons.from_wide(wide, subject="sid", sep="-", coding={"a": 1, "b": 0, "=": "tie"})
    assert d.outcome.tolist() == [1, 0, 0, 0.5]


def test_from_trl():
    trl = pd.DataFrame({"prompt": ["p1", "p1", "p2"], "chosen": ["r1", "r2", "r3"],
                        "rejected": ["r2", "r3", "r1"], "len_chosen": [5, 6, 7], "len_rejected": [1, 2, 3],
                        "annot": ["a", "b", "a"]})
    d = Comparisons.from_trl(trl, user="annot", features=["len"])
    assert d.outcome.tolist() == [1, 1, 1] and d.y.tolist() == [1, 1, 1]
    assert d.frame["a"].tolist() == ["r1", "r2", "r3"]
    np.testing.assert_array_equal(d.xa[:, 0], [5, 6, 7])
    np.testing.assert_array_equal(d.xb[:, 0], [1, 2, 3])
    assert list(d.prompts) == ["p1", "p2"] and list(d.users) == ["a", "b"]
    assert list(d.frame.columns) == ["a", "b", "outcome", "user", "prompt", "len_a", "len_b"]


def test_from_arena():
    arena = pd.DataFrame({"model_a": ["m1", "m2", "m1", "m3"], "model_b": ["m2", "m3", "m3", "m2"],
                          "winner": ["model_a", "model_b", "tie", "tie (bothbad)"], "judge": [1, 2, 1, 2]})
    d = Comparisons.from_arena(arena, judge="judge")
    assert d.outcome.tolist() == [1, 0, 0.5, 0.5] and d.y.tolist() == [1, 0, 2, 2]
    assert list(d.users) == [1, 2]
    new = d.encode(arena.drop(columns="winner").assign(judge=[1, 9, 1, 9]))
    assert np.isnan(new.outcome).all() and new.y.tolist() == [-1] * 4
    assert new.user.tolist() == [0, -1, 0, -1]


# ---------------------------------------------------------------------------------------------
# happy paths: encode
# ---------------------------------------------------------------------------------------------
def test_encode_unseen_user_gets_minus_one(data):
    new = pd.DataFrame({"a": ["x", "y"], "b": ["z", "x"], "u": ["u1", "new"], "p": [10, 99],
                        "len_a": [1.0, 2.0], "len_b": [3.0, 1.0], "group": ["g1", "g2"], "age": [40, 22]})
    e = data.encode(new)
    assert e.user.tolist() == [0, -1] and e.prompt.tolist() == [0, -1]
    assert e.a.tolist() == [0, 1] and e.b.tolist() == [2, 0]
    assert np.isnan(e.outcome).all() and e.y.tolist() == [-1, -1]
    assert list(e.options) == list(data.options) and list(e.users) == list(data.users)
    np.testing.assert_array_equal(e.comparison_covariates, [[0, 40], [1, 22]])
    np.testing.assert_array_equal(e.covariates, data.covariates)


def test_encode_with_outcome_and_covariate_table(data):
    new = pd.DataFrame({"a": ["x"], "b": ["y"], "outcome": ["tie"], "u": ["v"], "p": [10],
                        "len_a": [1.0], "len_b": [2.0]})
    cov = pd.DataFrame({"group": ["g2"], "age": [61]}, index=["v"])
    e = data.encode(new, user_covariates=cov)
    assert e.y.tolist() == [2] and e.user.tolist() == [-1]
    np.testing.assert_array_equal(e.comparison_covariates, [[1, 61]])


def test_encode_new_user_without_covariates_fails(data):
    new = pd.DataFrame({"a": ["x"], "b": ["y"], "u": ["v"], "p": [10], "len_a": [1.0], "len_b": [2.0]})
    with pytest.raises(DataError, match=r"new user\(s\) \['v'\] have no covariates.*user_covariates="):
        data.encode(new)


def test_encode_unknown_level_fails(data):
    new = pd.DataFrame({"a": ["x"], "b": ["y"], "u": ["v"], "p": [10], "len_a": [1.0], "len_b": [2.0],
                        "group": ["g9"], "age": [3]})
    with pytest.raises(DataError, match=r"covariate 'group' has level\(s\) \['g9'\] unseen"):
        data.encode(new)


def test_encode_unknown_options(df):
    table = pd.DataFrame({"size": [1.0, 2.0, 3.0]}, index=["x", "y", "z"])
    d = Comparisons.from_frame(df, features=table)
    new = pd.DataFrame({"a": ["x", "w"], "b": ["w", "y"]})
    with pytest.raises(DataError, match=r"no features for option\(s\) \['w'\].*features="):
        d.encode(new)
    e = d.encode(new, features=pd.DataFrame({"size": [9.0]}, index=["w"]))
    assert e.a.tolist() == [0, -1] and e.b.tolist() == [-1, 1]
    np.testing.assert_array_equal(e.xa[:, 0], [1, 9])
    np.testing.assert_array_equal(e.xb[:, 0], [9, 2])
    plain = Comparisons.from_frame(df)
    with pytest.raises(DataError, match=r"unknown option\(s\) \['w'\].*no option features"):
        plain.encode(new)


def test_encode_unknown_options_with_feature_columns(data):
    new = pd.DataFrame({"a": ["q"], "b": ["x"], "u": ["u1"], "p": [10], "len_a": [7.0], "len_b": [1.0]})
    e = data.encode(new)
    assert e.a.tolist() == [-1] and e.xa.tolist() == [[7.0]]


# ---------------------------------------------------------------------------------------------
# subsets and splits
# ---------------------------------------------------------------------------------------------
def _assert_partition(parent, train, test):
    ids = list(train.comparison_ids) + list(test.comparison_ids)
    assert sorted(ids) == sorted(parent.comparison_ids)
    assert not set(train.comparison_ids) & set(test.comparison_ids)
    for part in (train, test):
        assert part.options.equals(parent.options) and part.users.equals(parent.users)
        np.testing.assert_array_equal(part.covariates, parent.covariates)


def test_subset_keeps_indexes(data):
    sub = data.subset(np.array([True, False, False, False, False, True]))
    assert sub.n_comparisons == 2 and sub.n_options == 3 and sub.n_users == 3
    assert list(sub.comparison_ids) == ["r0", "r5"] and sub.a.tolist() == [0, 0]
    assert sub.prompts.equals(data.prompts) and sub.frame.index.tolist() == ["r0", "r5"]
    assert not sub.has_ties
    assert data.subset([2]).has_ties
    with pytest.raises(DataError, match="boolean mask needs one value per comparison"):
        data.subset([True, False])
    with pytest.raises(DataError, match=r"positions must lie in \[0, 6\)"):
        data.subset([7])


def test_split_by_user():
    d = Comparisons.from_frame(big(), user="u", prompt="p")
    train, test = d.split_by_user(test_size=0.3, seed=1)
    _assert_partition(d, train, test)
    assert len(np.unique(test.user)) == 3
    assert not set(train.user) & set(test.user)
    again = d.split_by_user(test_size=0.3, seed=1)[1]
    assert again.comparison_ids.equals(test.comparison_ids)
    assert not d.split_by_user(test_size=0.3, seed=2)[1].comparison_ids.equals(test.comparison_ids)


def test_split_by_prompt_and_option():
    d = Comparisons.from_frame(big(), user="u", prompt="p")
    train, test = d.split_by_prompt(test_size=2, seed=0)
    _assert_partition(d, train, test)
    assert not set(train.prompt) & set(test.prompt) and len(np.unique(test.prompt)) == 2
    train, test = d.split_by_option(test_size=1, seed=0)
    _assert_partition(d, train, test)
    held = set(np.concatenate([test.a, test.b])) - set(np.concatenate([train.a, train.b]))
    assert len(held) == 1
    assert all(((test.a == h) | (test.b == h)).all() for h in held)


def test_kfold():
    d = Comparisons.from_frame(big(), user="u", prompt="p")
    for by in ("user", "prompt", "comparison"):
        folds = d.kfold(by=by, k=3, seed=4)
        assert len(folds) == 3
        tests = np.concatenate([list(t.comparison_ids) for _, t in folds])
        assert sorted(tests) == sorted(d.comparison_ids)  # test sets partition the data
        for train, test in folds:
            _assert_partition(d, train, test)
        assert [t.comparison_ids.tolist() for _, t in d.kfold(by=by, k=3, seed=4)] == \
            [t.comparison_ids.tolist() for _, t in folds]


def test_split_errors(data):
    with pytest.raises(DataError, match="Cannot split by prompt: the data have no prompt column"):
        Comparisons.from_frame(big()).split_by_prompt()
    with pytest.raises(DataError, match="only 1 user"):
        Comparisons.from_frame(big()).split_by_user()
    with pytest.raises(DataError, match="test_size must be a fraction"):
        data.split_by_user(test_size=1.5)
    with pytest.raises(DataError, match="kfold: k must be an integer between 2"):
        data.kfold(by="user", k=10)
    with pytest.raises(DataError, match="by must be 'user', 'prompt' or 'comparison'"):
        data.kfold(by="banana")


# ---------------------------------------------------------------------------------------------
# bad input: one test each
# ---------------------------------------------------------------------------------------------
def test_not_a_dataframe():
    with pytest.raises(DataError, match="expected a pandas DataFrame, got dict"):
        Comparisons.from_frame({"a": [1], "b": [2], "outcome": [1]})


def test_empty_frame():
    with pytest.raises(DataError, match=r"the frame is empty \(0 rows\)"):
        Comparisons.from_frame(pd.DataFrame({"a": [], "b": [], "outcome": []}))


def test_duplicate_row_labels(df):
    with pytest.raises(DataError, match=r"row labels \(index\) are not unique.*reset_index"):
        Comparisons.from_frame(df.set_axis([0, 1, 1, 2, 3, 4]))


def test_missing_column_suggests(df):
    with pytest.raises(DataError, match=r"column 'outcom' \(given as outcome=\) is not in the frame\. "
                                        r"Did you mean 'outcome'\?"):
        Comparisons.from_frame(df, outcome="outcom")


def test_same_column_for_a_and_b(df):
    with pytest.raises(DataError, match="the same column 'a' is mapped to both a and b"):
        Comparisons.from_frame(df, a="a", b="a")


@pytest.mark.parametrize("col", ["a", "b", "u"])
def test_nan_in_ids(df, col):
    df.loc["r3", col] = None
    with pytest.raises(DataError, match=rf"column '{col}' \(\w+ ids\) has missing values \(NaN\) in 1 row\(s\) \['r3'\]"):
        Comparisons.from_frame(df, user="u")


def test_nan_outcome(df):
    df["outcome"] = [1, np.nan, 0, 1, 0, np.nan]
    with pytest.raises(DataError, match=r"'outcome' \(outcome\) has missing values.*2 row\(s\) \['r1', 'r5'\].*dropna"):
        Comparisons.from_frame(df)


@pytest.mark.parametrize("values, bad", [
    ([1, 0, 2, 1, 0, 1], "2"),
    (["1", "0", "tie", "1", "0", "1"], "'1'"),
    ([1, 0, "draw", 1, 0, 1], "'draw'"),
    ([1.0, 0.0, 0.3, 1.0, 0.0, 1.0], "0.3"),
])
def test_bad_outcome_values(df, values, bad):
    df["outcome"] = values
    with pytest.raises(DataError, match=r"values outside \{0, 0\.5, 1, 'tie', True, False\}: \[" + bad):
        Comparisons.from_frame(df)


def test_a_equals_b(df):
    df.loc["r2", "b"] = "z"
    with pytest.raises(DataError, match=r"1 row\(s\) \['r2'\] compare an option with itself \(a == b, e\.g\. 'z'\)"):
        Comparisons.from_frame(df)


def test_only_one_option():
    with pytest.raises(DataError, match=r"only one distinct option \('x'\)"):
        Comparisons.from_frame(pd.DataFrame({"a": ["x", "x"], "b": ["x", "x"], "outcome": [1, 0]}))


def test_non_numeric_feature_column(df):
    df["len_b"] = ["short", "long", "x", "y", "z", "w"]
    with pytest.raises(DataError, match="feature column 'len_b' is not numeric.*astype"):
        Comparisons.from_frame(df, features=["len"])


def test_nan_in_features(df):
    df.loc["r4", "len_a"] = np.nan
    with pytest.raises(DataError, match=r"feature column 'len_a' has missing values \(NaN\) in 1 row\(s\) \['r4'\]"):
        Comparisons.from_frame(df, features=["len"])


def test_feature_list_missing_suffix_column(df):
    df = df.drop(columns="len_b")
    with pytest.raises(DataError, match=r"features=\['len'\] needs columns '<name>_a' and '<name>_b'.*missing \['len_b'\]"):
        Comparisons.from_frame(df, features=["len"])


def test_feature_table_missing_options(df):
    table = pd.DataFrame({"size": [1.0, 2.0]}, index=["x", "y"])
    with pytest.raises(DataError, match=r"option feature table has no row for 1 option\(s\).*\['z'\]"):
        Comparisons.from_frame(df, features=table)


def test_feature_table_unknown_ids(df):
    table = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0]}, index=["x", "y", "z", "ghost"])
    with pytest.raises(DataError, match=r"rows for 1 unknown option id\(s\) with no comparisons: \['ghost'\]"):
        Comparisons.from_frame(df, features=table)


def test_feature_table_duplicate_rows(df):
    table = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0]}, index=["x", "y", "z", "z"])
    with pytest.raises(DataError, match=r"option feature table has duplicate rows for option\(s\) \['z'\]"):
        Comparisons.from_frame(df, features=table)


def test_feature_table_non_numeric_and_nan(df):
    table = pd.DataFrame({"kind": ["s", "m", "l"]}, index=["x", "y", "z"])
    with pytest.raises(DataError, match="column 'kind' of the option feature table is not numeric"):
        Comparisons.from_frame(df, features=table)
    table = pd.DataFrame({"size": [1.0, np.nan, 3.0]}, index=["x", "y", "z"])
    with pytest.raises(DataError, match=r"missing values \(NaN\) in column 'size' for option\(s\) \['y'\]"):
        Comparisons.from_frame(df, features=table)


def test_feature_table_dtype_mismatch_hint():
    d = pd.DataFrame({"a": [1, 2], "b": [2, 3], "outcome": [1, 0]})
    table = pd.DataFrame({"s": [1.0, 2.0, 3.0]}, index=["1", "2", "3"])
    with pytest.raises(DataError, match="the table index has dtype str|the table index has dtype object"):
        Comparisons.from_frame(d, features=table)


def test_covariate_table_duplicate_users(df):
    table = pd.DataFrame({"g": ["a", "b", "c", "d"]}, index=["u1", "u2", "u3", "u3"])
    with pytest.raises(DataError, match=r"user covariate table has duplicate rows for user\(s\) \['u3'\]"):
        Comparisons.from_frame(df, user="u", user_covariates=table)


def test_covariate_table_users_without_comparisons(df):
    table = pd.DataFrame({"g": ["a", "b", "c", "d"]}, index=["u1", "u2", "u3", "u4"])
    with pytest.raises(DataError, match=r"1 unknown user id\(s\) with no comparisons: \['u4'\]"):
        Comparisons.from_frame(df, user="u", user_covariates=table)


def test_covariate_table_missing_users(df):
    table = pd.DataFrame({"g": ["a", "b"]}, index=["u1", "u2"])
    with pytest.raises(DataError, match=r"user covariate table has no row for 1 user\(s\).*\['u3'\]"):
        Comparisons.from_frame(df, user="u", user_covariates=table)


def test_covariate_columns_vary_within_user(df):
    df.loc["r3", "group"] = "g1"  # u2 now has g2 and g1
    with pytest.raises(DataError, match=r"covariate column 'group' varies within user\(s\) \['u2'\].*constant"):
        Comparisons.from_frame(df, user="u", user_covariates=["group"])


def test_nan_in_covariates(df):
    df.loc["r1", "age"] = np.nan
    with pytest.raises(DataError, match=r"covariate column 'age' has missing values \(NaN\) in 1 row\(s\) \['r1'\]"):
        Comparisons.from_frame(df, user="u", user_covariates=["age"])
    table = pd.DataFrame({"age": [1.0, np.nan, 3.0]}, index=["u1", "u2", "u3"])
    with pytest.raises(DataError, match=r"user covariate table has missing values \(NaN\) in column 'age' for user\(s\) \['u2'\]"):
        Comparisons.from_frame(df, user="u", user_covariates=table)


def test_covariate_column_missing(df):
    with pytest.raises(DataError, match=r"column 'groop' \(given as user_covariates\[0\]=\).*Did you mean 'group'"):
        Comparisons.from_frame(df, user="u", user_covariates=["groop"])


def test_features_wrong_type(df):
    with pytest.raises(DataError, match="features must be a list of names .* got int"):
        Comparisons.from_frame(df, features=3)


def test_user_covariates_wrong_type(df):
    with pytest.raises(DataError, match="user_covariates must be a list of column names or a DataFrame .* got int"):
        Comparisons.from_frame(df, user="u", user_covariates=3)


def test_from_wide_missing_cells_error():
    wide = pd.DataFrame({"sid": [1, 2], "A:B": [1, np.nan], "B:C": [np.nan, 1]})
    with pytest.raises(DataError, match=r"2 missing cell\(s\).*\(1, 'B:C'\), \(2, 'A:B'\).*missing='drop'"):
        Comparisons.from_wide(wide, subject="sid")


def test_from_wide_bad_values_and_names():
    with pytest.raises(DataError, match=r"values \[2\] are not in coding"):
        Comparisons.from_wide(pd.DataFrame({"sid": [1, 2], "A:B": [1, 2]}), subject="sid")
    with pytest.raises(DataError, match=r"cannot read \['A:A'\]"):
        Comparisons.from_wide(pd.DataFrame({"sid": [1], "A:A": [1]}), subject="sid")
    with pytest.raises(DataError, match="duplicate ids"):
        Comparisons.from_wide(pd.DataFrame({"sid": [1, 1], "A:B": [1, 0]}), subject="sid")
    with pytest.raises(DataError, match="missing must be 'error' or 'drop'"):
        Comparisons.from_wide(pd.DataFrame({"sid": [1], "A:B": [1]}), subject="sid", missing="skip")


def test_from_arena_unknown_winner():
    arena = pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m1"], "winner": ["model_a", "draw"]})
    with pytest.raises(DataError, match=r"column 'winner' \(winner\) has unknown values \['draw'\] in 1 row\(s\) \[1\].*allowed"):
        Comparisons.from_arena(arena)


@pytest.mark.parametrize("wins, bad", [([2, -1], r"\[-1\]"), ([2, 1.5], r"\[1\.5\]"), ([2, np.nan], r"\[nan\]")])
def test_from_counts_bad_counts(wins, bad):
    counts = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "wins_a": wins, "wins_b": [1, 1]})
    with pytest.raises(DataError, match=r"count column 'wins_a' \(wins_a=\) must hold non-negative whole numbers; found " + bad):
        Comparisons.from_counts(counts)


def test_disconnected_graph_warns():
    d = pd.DataFrame({"a": ["A", "C", "A"], "b": ["B", "D", "B"], "outcome": [1, 0, 1]})
    with pytest.warns(DataWarning, match=r"2 components: \{A, B\} \| \{C, D\}.*Priors make the model fittable.*within a component"):
        out = Comparisons.from_frame(d)
    assert out.describe()["n_components"] == 2


def test_connected_graph_does_not_warn(df):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Comparisons.from_frame(df)


def test_nothing_coerced_booleans_and_ints_ok():
    d = pd.DataFrame({"a": ["x", "y"], "b": ["y", "x"], "outcome": [True, False]})
    assert Comparisons.from_frame(d).outcome.tolist() == [1.0, 0.0]
    d["outcome"] = [1, 0]
    assert Comparisons.from_frame(d).y.tolist() == [1, 0]


def test_connectivity_scales_without_row_loops():
    n = 200_000
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5000, n)
    b = (a + rng.integers(1, 5000, n)) % 5000
    d = pd.DataFrame({"a": a, "b": b, "outcome": rng.integers(0, 2, n), "u": rng.integers(0, 1000, n)})
    out = Comparisons.from_frame(d, user="u")
    assert out.n_options == 5000 and out.n_users == 1000


def test_unhashable_outcome_values_reported(df):
    df["outcome"] = pd.Series([1, [1], 0, 1, 0, 1], dtype=object, index=df.index)
    with pytest.raises(DataError, match=r"values outside .*: \[\[1\]\] in 1 row\(s\) \['r1'\]"):
        Comparisons.from_frame(df)


def test_feature_table_nan_index(df):
    table = pd.DataFrame({"s": [1.0, 2.0, 3.0]}, index=["x", None, "z"])
    with pytest.raises(DataError, match=r"missing \(NaN\) option ids in its index; label every row with its option id"):
        Comparisons.from_frame(df, features=table)


def test_encode_without_user_column_explains(data):
    with pytest.raises(DataError, match=r"column 'u' \(user ids, as in the training data\) is not in the frame.*index -1"):
        data.encode(pd.DataFrame({"a": ["x"], "b": ["y"], "p": [10], "len_a": [1.0], "len_b": [2.0]}))


def test_encode_validates_like_from_frame(data):
    new = pd.DataFrame({"a": ["x"], "b": ["x"], "u": ["u1"], "p": [10], "len_a": [1.0], "len_b": [2.0]})
    with pytest.raises(DataError, match=r"\['0'\]|\[0\].*compare an option with itself"):
        data.encode(new)
    with pytest.raises(DataError, match="features must be a DataFrame indexed by option id, got list"):
        data.encode(new.assign(b="y"), features=["len"])
    with pytest.raises(DataError, match=r"values outside"):
        data.encode(new.assign(b="y", outcome="1"))


def test_trl_and_counts_encode_through_adapter():
    trl = pd.DataFrame({"prompt": ["p1", "p2"], "chosen": ["r1", "r2"], "rejected": ["r2", "r3"],
                        "n_chosen": [1, 2], "n_rejected": [3, 4]})
    d = Comparisons.from_trl(trl, features=["n"])
    e = d.encode(trl.assign(chosen=["r9", "r1"]))
    assert e.a.tolist() == [-1, 0] and e.outcome.tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(e.xa[:, 0], [1, 2])


def test_two_level_column_names_are_refused_with_the_fix():
    df = pd.DataFrame([["x", "y", 1.0]], columns=pd.MultiIndex.from_tuples([("a", ""), ("b", ""), ("outcome", "")]))
    with pytest.raises(DataError, match="2 levels of column names"):
        Comparisons.from_frame(df)
