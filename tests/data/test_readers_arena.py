"""Arena reader: winner coding, the two kinds of tie, judges as users, covariates, sources, saving."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayespref.data.comparisons import Comparisons
from bayespref.data.readers import arena_long
from bayespref.errors import DataError


def _battles() -> pd.DataFrame:
    conv = lambda q, a: [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return pd.DataFrame({
        "question_id": [81, 81, 82, 82, 83],
        "model_a": ["gpt-4", "claude-v1", "gpt-4", "vicuna", "claude-v1"],
        "model_b": ["vicuna", "gpt-4", "claude-v1", "claude-v1", "vicuna"],
        "winner": ["model_a", "tie", "model_b", "tie (bothbad)", "model_a"],
        "judge": ["expert_0", "expert_1", "expert_0", "gpt4_pair", "expert_1"],
        "turn": [1, 2, 1, 1, 2],
        "language": ["English", "English", "German", "English", "English"],
        "conversation_a": [conv("q", f"a{i}") for i in range(5)],
        "conversation_b": [conv("q", f"b{i}") for i in range(5)],
    })


def test_outcomes_and_two_tie_kinds():
    d = Comparisons.from_arena(_battles())
    assert d.outcome.tolist() == [1.0, 0.5, 0.0, 0.5, 1.0] and d.y.tolist() == [1, 2, 0, 2, 1]
    assert list(d.frame.columns) == ["a", "b", "outcome", "user", "prompt", "winner", "turn", "language"]
    tie_kind = d.frame["winner"].where(d.outcome == 0.5)
    assert tie_kind.tolist()[1] == "tie" and tie_kind.tolist()[3] == "tie (bothbad)"
    assert (d.frame["winner"] == "tie (bothbad)").tolist() == [False, False, False, True, False]
    assert list(d.users) == ["expert_0", "expert_1", "gpt4_pair"] and d.user.tolist() == [0, 1, 0, 2, 1]
    assert list(d.prompts) == [81, 82, 83] and d.prompt.tolist() == [0, 0, 1, 1, 2]
    assert d.frame["turn"].tolist() == [1, 2, 1, 1, 2] and d.frame["language"].tolist()[2] == "German"
    assert list(d.options) == ["claude-v1", "gpt-4", "vicuna"]


def test_defaults_only_when_present_and_none_ignores():
    plain = _battles()[["model_a", "model_b", "winner"]]
    d = Comparisons.from_arena(plain)
    assert d.n_users == 1 and d.prompts is None and list(d.frame.columns) == ["a", "b", "outcome", "winner"]
    d = Comparisons.from_arena(_battles(), judge=None, prompt=None, keep=[])
    assert d.n_users == 1 and d.prompts is None and list(d.frame.columns) == ["a", "b", "outcome", "winner"]
    with pytest.raises(DataError, match=r"column 'rater' \(given as judge=\) is not in the frame"):
        Comparisons.from_arena(plain, judge="rater")


def test_judge_covariates_joined_and_missing_judge():
    table = pd.DataFrame({"kind": ["expert", "expert", "model"], "years": [3.0, 7.0, 0.0]},
                         index=["expert_0", "expert_1", "gpt4_pair"])
    d = Comparisons.from_arena(_battles(), user_covariates=table)
    assert d.covariate_names == ("kind[model]", "years")
    np.testing.assert_array_equal(d.comparison_covariates, [[0, 3], [0, 7], [0, 3], [1, 0], [0, 7]])
    with pytest.raises(DataError, match=r"user covariate table has no row for 1 user\(s\) of column 'judge' "
                                        r"that appear in the comparisons: \['expert_1'\], in 2 row\(s\) \[1, 4\]. "
                                        r"Add rows for them"):
        Comparisons.from_arena(_battles(), user_covariates=table.drop(index="expert_1"))


def test_judge_covariates_from_columns():
    df = _battles().assign(kind=["h", "h", "h", "m", "h"])
    d = Comparisons.from_arena(df, user_covariates=["kind"])
    assert d.covariate_names == ("kind[m]",) and d.covariates[:, 0].tolist() == [0, 0, 1]
    with pytest.raises(DataError, match=r"covariate column 'kind' varies within user\(s\) \['expert_0'\]"):
        Comparisons.from_arena(df.assign(kind=["h", "h", "m", "m", "h"]), user_covariates=["kind"])


def test_reads_jsonl_and_round_trips(tmp_path):
    path = tmp_path / "battles.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _battles().to_dict("records")) + "\n")
    d = Comparisons.from_arena(path)
    assert d.outcome.tolist() == [1.0, 0.5, 0.0, 0.5, 1.0] and list(d.prompts) == [81, 82, 83]
    back = Comparisons.from_json(d.to_json())
    assert back.frame["winner"].tolist() == d.frame["winner"].tolist()
    assert back._spec.to_long.func is arena_long
    assert back._spec.to_long.keywords == {"model_a": "model_a", "model_b": "model_b", "winner": "winner",
                                           "judge": "judge", "prompt": "question_id",
                                           "keep": ["turn", "language"]}
    new = _battles().drop(columns=["winner", "turn"]).assign(judge="newbie")
    e = back.encode(new)
    assert np.isnan(e.outcome).all() and e.user.tolist() == [-1] * 5 and e.prompt.tolist() == [0, 0, 1, 1, 2]
    assert list(e.frame.columns) == ["a", "b", "outcome", "user", "prompt", "language"]


def test_bad_winner_values():
    df = _battles()
    df.loc[2, "winner"] = "draw"
    with pytest.raises(DataError, match=r"column 'winner' \(winner\) has unknown values \['draw'\] in 1 row\(s\) "
                                        r"\[2\]; allowed: \['model_a', 'model_b', 'tie', 'tie \(bothbad\)'\]"):
        Comparisons.from_arena(df)
    df.loc[2, "winner"] = None
    with pytest.raises(DataError, match=r"column 'winner' \(winner\) has missing values in 1 row\(s\) \[2\]"):
        Comparisons.from_arena(df)


def test_same_model_twice_and_missing_judge_id():
    df = _battles()
    df.loc[1, "model_b"] = "claude-v1"
    with pytest.raises(DataError, match=r"1 row\(s\) \[1\] compare an option with itself"):
        Comparisons.from_arena(df)
    df = _battles()
    df.loc[3, "judge"] = None
    with pytest.raises(DataError, match=r"column 'judge' \(user ids\) has missing values \(NaN\) in 1 row\(s\) \[3\]"):
        Comparisons.from_arena(df)
