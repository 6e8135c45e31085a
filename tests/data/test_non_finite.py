"""Numbers entering the package must be finite, wherever they enter: features (columns and option
tables), user covariates (columns and tables), counts, scores, encoder outputs and the same inputs
at encode / predict time. Every refusal is a DataError naming the column and the rows or ids.
Duplicated column names and counts that would expand past the memory budget are refused too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref import config
from bayespref.data.readers import expand_counts
from bayespref.data.text import TextFeatures
from bayespref.errors import DataError
from bayespref.inference.result import Fit

INF = r"has infinite values \(inf or -inf\)"


def frame(**extra):
    df = pd.DataFrame({"a": list("xyzxyz"), "b": list("yzxzxy"), "outcome": [1, 0, 1, 1, 0, 0],
                       "u": [1, 1, 2, 2, 3, 3], "f_a": [1.0, 2, 3, 1, 2, 3], "f_b": [2.0, 3, 1, 3, 1, 2],
                       "age": [20.0, 20, 30, 30, 40, 40]}, index=[f"r{i}" for i in range(6)])
    for k, v in extra.items():
        df[k] = v
    return df


@pytest.fixture(scope="module")
def train():
    return bp.Comparisons.from_frame(frame(), user="u", features=["f"], user_covariates=["age"])


# -- features ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_feature_column_with_inf(value):
    df = frame()
    df.loc["r2", "f_a"] = value
    with pytest.raises(DataError, match=rf"Comparisons.from_frame: feature column 'f_a' {INF} in 1 row\(s\) \['r2'\]"):
        bp.Comparisons.from_frame(df, user="u", features=["f"])


def test_feature_column_nan_message_unchanged():
    df = frame()
    df.loc["r4", "f_b"] = np.nan
    with pytest.raises(DataError, match=r"feature column 'f_b' has missing values \(NaN\) in 1 row\(s\) \['r4'\]"):
        bp.Comparisons.from_frame(df, features=["f"])


def test_option_table_with_inf():
    table = pd.DataFrame({"size": [1.0, np.inf, 2.0]}, index=list("xyz"))
    with pytest.raises(DataError, match=rf"column 'size' of the option feature table {INF} for 1 option\(s\) \['y'\]"):
        bp.Comparisons.from_frame(frame(), features=table)


# -- user covariates ---------------------------------------------------------------------------------
def test_covariate_column_with_inf():
    df = frame(age=[20.0, 20, np.inf, np.inf, 40, 40])
    with pytest.raises(DataError, match=rf"covariate column 'age' {INF} in 2 row\(s\) \['r2', 'r3'\]"):
        bp.Comparisons.from_frame(df, user="u", user_covariates=["age"])


def test_covariate_table_with_inf():
    table = pd.DataFrame({"age": [20.0, -np.inf, 40.0], "group": ["g", "h", "g"]}, index=[1, 2, 3])
    with pytest.raises(DataError, match=rf"column 'age' of the user covariate table {INF} for 1 user\(s\) \[2\]"):
        bp.Comparisons.from_frame(frame(), user="u", user_covariates=table)


# -- counts ------------------------------------------------------------------------------------------
def counts(**cols):
    return pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "wins_a": [2.0, 1.0], "wins_b": [1, 1], **cols},
                        index=["p", "q"])


def test_count_with_inf():
    with pytest.raises(DataError, match=rf"count column 'wins_a' \(wins_a=\) {INF} in 1 row\(s\) \['q'\]"):
        bp.Comparisons.from_counts(counts(wins_a=[2.0, np.inf]))


def test_count_of_a_billion_is_refused_with_its_size_and_the_alternative():
    with pytest.raises(DataError) as err:
        bp.Comparisons.from_counts(counts(wins_a=[2.0, 1e9]))
    msg = str(err.value)
    assert "Comparisons.from_counts: the counts add up to 1,000,000,004 judgements" in msg
    assert "more than the budget of 50,000,000 (bayespref.config.MAX_JUDGEMENTS)" in msg
    assert "GiB" in msg and "Largest rows: 'q': 1,000,000,001, 'p': 3" in msg
    assert "Use fewer rows" in msg and "divide the counts by 21 or more (df[['wins_a', 'wins_b']] // 21" in msg


def test_huge_counts_do_not_overflow():
    with pytest.raises(DataError, match="the counts add up to 1e.30|the counts add up to 1,000,000"):
        bp.Comparisons.from_counts(counts(wins_a=[2.0, 1e30]))


def test_budget_is_a_setting(monkeypatch):
    monkeypatch.setattr(config, "MAX_JUDGEMENTS", 5)
    assert bp.Comparisons.from_counts(counts(wins_a=[2.0, 1.0])).n_comparisons == 5
    with pytest.raises(DataError, match="the counts add up to 6 judgements, more than the budget of 5"):
        bp.Comparisons.from_counts(counts(wins_a=[2.0, 2.0]))


def test_expand_counts_checks_its_input():
    with pytest.raises(DataError, match=rf"expand_counts: the counts {INF} in 1 row\(s\) \[1\]"):
        expand_counts([[1, 0, 0], [np.inf, 0, 0]])
    with pytest.raises(DataError, match=r"counts must be non-negative whole numbers; found \[-1.0, 0.0, 0.0\]"):
        expand_counts([[1, 0, 0], [-1, 0, 0]])
    src, out = expand_counts([[1, 1, 0]])
    assert src.tolist() == [0, 0] and out.tolist() == [1.0, 0.0]


# -- scores of the readers -----------------------------------------------------------------------------
def test_kwise_score_with_inf():
    df = pd.DataFrame({"prompt": ["p"] * 3, "response": ["r1", "r2", "r3"], "score": [1.0, np.inf, 3.0]})
    with pytest.raises(DataError, match=rf"score column 'score' {INF} in 1 row\(s\) \[1\]"):
        bp.Comparisons.from_kwise(df)


def test_trl_score_with_inf():
    df = pd.DataFrame({"prompt": ["p", "q"], "chosen": ["c1", "c2"], "rejected": ["r1", "r2"],
                       "margin": [1.0, np.inf]})
    with pytest.raises(DataError, match=rf"score column 'margin' {INF} in 1 row\(s\) \[1\]"):
        bp.Comparisons.from_trl(df, scores=["margin"])


# -- encoder outputs -------------------------------------------------------------------------------------
def test_encoder_output_with_inf():
    def encoder(texts):
        out = np.ones((len(texts), 3))
        out[[i for i, t in enumerate(texts) if t == "b c"]] = np.inf
        return out

    with pytest.raises(DataError, match=r"encoder's outputs contain NaN or infinite values for text\(s\) at 1 row"):
        TextFeatures(builtins=(), encoder=encoder).fit(["a", "b c", "d e f"])


# -- new data at encode / predict time ------------------------------------------------------------------
def new_frame(**cols):
    return pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "u": [1, 9], "f_a": [1.0, 2.0], "f_b": [2.0, 3.0],
                         "age": [20.0, 50.0], **cols}, index=["n0", "n1"])


def test_encode_feature_with_inf(train):
    with pytest.raises(DataError, match=rf"Comparisons.encode: feature column 'f_b' {INF} in 1 row\(s\) \['n1'\]"):
        train.encode(new_frame(f_b=[2.0, np.inf]))


def test_encode_covariates_with_inf(train):
    with pytest.raises(DataError, match=rf"Comparisons.encode: covariate column 'age' {INF} in 1 row\(s\) \['n1'\]"):
        train.encode(new_frame(age=[20.0, np.inf]))
    table = pd.DataFrame({"age": [np.inf]}, index=[9])
    with pytest.raises(DataError, match=rf"column 'age' of the user covariate table {INF} for 1 user\(s\) \[9\]"):
        train.encode(new_frame().drop(columns="age"), user_covariates=table)


def test_encode_option_table_with_inf():
    data = bp.Comparisons.from_frame(frame(), features=pd.DataFrame({"size": [1.0, 2.0, 3.0]}, index=list("xyz")))
    new = pd.DataFrame({"a": ["x"], "b": ["w"]})
    with pytest.raises(DataError, match=rf"column 'size' of the option feature table {INF} for 1 option\(s\) \['w'\]"):
        data.encode(new, features=pd.DataFrame({"size": [np.inf]}, index=["w"]))


def test_predict_refuses_inf_before_drawing(train):
    """Fit.predict encodes new data first: the refusal needs no posterior (no draws are made)."""
    fit = Fit(None, bp.BradleyTerry(worths=False), train, {})
    with pytest.raises(DataError, match=rf"feature column 'f_a' {INF} in 1 row\(s\) \['n0'\]"):
        fit.predict(new_frame(f_a=[np.inf, 2.0]))
    with pytest.raises(DataError, match=rf"user covariate table {INF} for 1 user\(s\) \[9\]"):
        fit.predict(new_frame().drop(columns="age"), user_covariates=pd.DataFrame({"age": [np.inf]}, index=[9]))


# -- duplicated column names ----------------------------------------------------------------------------
def test_duplicated_column_names():
    df = frame()
    df.columns = ["a", "b", "outcome", "u", "f_a", "f_a", "age"]
    with pytest.raises(DataError, match=r"Comparisons.from_frame: the frame has duplicated column name\(s\) \['f_a'\]"):
        bp.Comparisons.from_frame(df, user="u")
    df.columns = ["a", "a", "outcome", "u", "f_a", "f_b", "age"]
    with pytest.raises(DataError, match=r"the frame has duplicated column name\(s\) \['a'\]"):
        bp.Comparisons.from_frame(df, b="u")


def test_duplicated_columns_in_tables_counts_and_new_data(train):
    table = pd.DataFrame([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], index=list("xyz"), columns=["s", "s"])
    with pytest.raises(DataError, match=r"the option feature table has duplicated column name\(s\) \['s'\]"):
        bp.Comparisons.from_frame(frame(), features=table)
    c = counts()
    c.columns = ["a", "b", "wins_a", "wins_a"]
    with pytest.raises(DataError, match=r"Comparisons.from_counts: the frame has duplicated column name\(s\) \['wins_a'\]"):
        bp.Comparisons.from_counts(c, wins_b="wins_a")
    new = new_frame()
    new.columns = ["a", "b", "u", "f_a", "f_a", "age"]
    with pytest.raises(DataError, match=r"Comparisons.encode: the frame has duplicated column name\(s\) \['f_a'\]"):
        train.encode(new)
