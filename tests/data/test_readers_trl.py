"""TRL reader: standard and conversational data, explicit and implicit prompts, sources, bad input."""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from bayespref.data.comparisons import Comparisons
from bayespref.data.readers import trl_long
from bayespref.errors import DataError, DataWarning

H, A = "\n\nHuman:", "\n\nAssistant:"


def _quiet(fn, *args, **kw):
    """Build without the (expected) disconnected-graph warning of text options."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kw)


def _hh_rows():
    """Three HH-style pairs: one turn, two turns, and a response that itself holds the marker."""
    p0 = f"{H} Hi there{A}"
    p1 = f"{H} Tell me a joke{A} Why?{H} Because I'm sad{A}"
    p2 = f"{H} Serial please{A}"
    return [
        {"chosen": p0 + " Hello! How can I help?", "rejected": p0 + " Go away."},
        {"chosen": p1 + " I'm sorry to hear that.", "rejected": p1 + " I'm sorry, no."},
        {"chosen": p2 + " Alright, here:" + A + "  O.k. let's go", "rejected": p2 + " No."},
    ], [p0, p1, p2]


def _msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


# ---------------------------------------------------------------------------------------------
# standard format
# ---------------------------------------------------------------------------------------------
def test_explicit_standard_keeps_margin_and_reads_scores():
    trl = pd.DataFrame({"prompt": ["p1", "p1", "p2"], "chosen": ["r1", "r2", "r3"],
                        "rejected": ["r2", "r3", "r1"], "margin": [0.5, 1.0, 2.5], "other": [1, 2, 3]})
    d = Comparisons.from_trl(trl)
    assert d.frame["a"].tolist() == ["r1", "r2", "r3"] and d.frame["b"].tolist() == ["r2", "r3", "r1"]
    assert d.outcome.tolist() == [1.0, 1.0, 1.0] and list(d.prompts) == ["p1", "p2"]
    assert list(d.frame.columns) == ["a", "b", "outcome", "prompt", "margin"]
    assert d.frame["margin"].tolist() == [0.5, 1.0, 2.5]
    assert "margin" not in Comparisons.from_trl(trl, scores=[]).frame
    d = Comparisons.from_trl(trl, scores=["other"])
    assert list(d.frame.columns[-1:]) == ["other"] and d.frame["other"].tolist() == [1, 2, 3]


def test_implicit_text_prompt_split_is_exact():
    rows, prompts = _hh_rows()
    d = _quiet(Comparisons.from_trl, pd.DataFrame(rows))
    f = d.frame
    assert f["prompt"].tolist() == prompts
    assert f["a"].tolist() == [" Hello! How can I help?", " I'm sorry to hear that.", " Alright, here:" + A + "  O.k. let's go"]
    assert f["b"].tolist() == [" Go away.", " I'm sorry, no.", " No."]
    assert (f["prompt"] + f["a"]).tolist() == [r["chosen"] for r in rows]
    assert (f["prompt"] + f["b"]).tolist() == [r["rejected"] for r in rows]
    assert d.n_prompts == 3 and d.n_options == 6 and d.outcome.tolist() == [1.0] * 3


def test_prompt_none_compares_whole_texts():
    rows, _ = _hh_rows()
    d = _quiet(Comparisons.from_trl, pd.DataFrame(rows), prompt=None)
    assert d.prompts is None and d.frame["a"].tolist() == [r["chosen"] for r in rows]


def test_implicit_forced_or_forbidden():
    rows, prompts = _hh_rows()
    df = pd.DataFrame(rows).assign(prompt=["q0", "q1", "q2"])
    assert list(_quiet(Comparisons.from_trl, df).prompts) == ["q0", "q1", "q2"]  # explicit column
    assert _quiet(Comparisons.from_trl, df, implicit=True).frame["prompt"].tolist() == prompts
    with pytest.raises(DataError, match=r"implicit=True .* prompt='q'"):
        Comparisons.from_trl(df, prompt="q", implicit=True)
    with pytest.raises(DataError, match=r"column 'prompt' \(given as prompt=\) is not in the frame"):
        Comparisons.from_trl(pd.DataFrame(rows), implicit=False)


def test_custom_markers():
    df = pd.DataFrame({"chosen": ["\nUSER: hi\nBOT: hello"], "rejected": ["\nUSER: hi\nBOT: no"]})
    d = _quiet(Comparisons.from_trl, df, human_marker="\nUSER:", assistant_marker="\nBOT:")
    assert d.frame[["prompt", "a", "b"]].values.tolist() == [["\nUSER: hi\nBOT:", " hello", " no"]]


# ---------------------------------------------------------------------------------------------
# conversational format
# ---------------------------------------------------------------------------------------------
def test_explicit_conversational():
    df = pd.DataFrame({
        "prompt": [_msgs(("system", "Be nice."), ("user", "Hi")), _msgs(("user", "Yo"))],
        "chosen": [_msgs(("assistant", "Hello")), _msgs(("assistant", "Hey"))],
        "rejected": [_msgs(("assistant", "Go")), _msgs(("assistant", "Hm"), ("assistant", "what"))],
    })
    d = _quiet(Comparisons.from_trl, df)
    assert d.frame["prompt"].tolist() == ["system: Be nice.\n\nuser: Hi", "Yo"]
    assert d.frame["a"].tolist() == ["Hello", "Hey"]
    assert d.frame["b"].tolist() == ["Go", "assistant: Hm\n\nassistant: what"]


def test_implicit_conversational_split_is_exact():
    prompt = _msgs(("user", "Hi"), ("assistant", "Hello"), ("user", "Joke?"))
    chosen = prompt + _msgs(("assistant", "Knock knock."))
    rejected = prompt + _msgs(("assistant", "No."))
    other_c = _msgs(("user", "Q"), ("assistant", "A1"))
    other_r = _msgs(("user", "Q"), ("assistant", "A2"))
    df = pd.DataFrame({"chosen": [chosen, other_c], "rejected": [rejected, other_r]})
    d = _quiet(Comparisons.from_trl, df)
    assert d.frame["prompt"].tolist() == ["user: Hi\n\nassistant: Hello\n\nuser: Joke?", "Q"]
    assert d.frame["a"].tolist() == ["Knock knock.", "A1"] and d.frame["b"].tolist() == ["No.", "A2"]


def test_numpy_message_cells_as_from_datasets(tmp_path):
    """datasets / pyarrow give message lists as numpy arrays of dicts."""
    chosen = np.array(_msgs(("user", "Hi"), ("assistant", "Hello")), dtype=object)
    rejected = np.array(_msgs(("user", "Hi"), ("assistant", "Bye")), dtype=object)
    frame = pd.DataFrame({"chosen": [chosen], "rejected": [rejected], "margin": [2.0]})

    class FakeDataset:  # duck-typed datasets.Dataset
        def to_pandas(self):
            return frame

    d = _quiet(Comparisons.from_trl, FakeDataset())
    assert d.frame[["prompt", "a", "b", "margin"]].values.tolist() == [["Hi", "Hello", "Bye", 2.0]]


# ---------------------------------------------------------------------------------------------
# sources: JSONL, JSONL.gz, JSON, Parquet
# ---------------------------------------------------------------------------------------------
def test_reads_jsonl_and_gz(tmp_path):
    rows, prompts = _hh_rows()
    rows = [dict(r, margin=float(i)) for i, r in enumerate(rows)]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    (tmp_path / "p.jsonl").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "p.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(text)
    (tmp_path / "p.json").write_text(json.dumps(rows), encoding="utf-8")
    for name in ("p.jsonl", "p.jsonl.gz", "p.json"):
        d = _quiet(Comparisons.from_trl, tmp_path / name)
        assert d.frame["prompt"].tolist() == prompts, name
        assert d.frame["margin"].tolist() == [0.0, 1.0, 2.0], name
        assert list(d.comparison_ids) == [0, 1, 2]
    d = _quiet(Comparisons.from_trl, str(tmp_path / "p.jsonl"))  # str paths too
    assert (d.frame["prompt"] + d.frame["a"]).tolist() == [r["chosen"] for r in rows]


def test_json_keeps_string_types(tmp_path):
    """A response "1" stays the string "1" (read with dtype=False), not the number 1."""
    (tmp_path / "t.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "1", "rejected": "2"}) + "\n")
    d = Comparisons.from_trl(tmp_path / "t.jsonl", prompt="prompt")
    assert d.frame["a"].tolist() == ["1"] and d.frame["b"].tolist() == ["2"]


def test_parquet_read_or_clear_error(tmp_path):
    import importlib.util

    df = pd.DataFrame({"prompt": ["p", "q"], "chosen": ["a1", "b1"], "rejected": ["a2", "b2"]})
    path = tmp_path / "t.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1 not really")
        with pytest.raises(DataError, match=r"needs pyarrow, which is not installed: pip install pyarrow"):
            Comparisons.from_trl(path)
    else:
        df.to_parquet(path)
        d = _quiet(Comparisons.from_trl, path)
        assert d.frame["a"].tolist() == ["a1", "b1"] and list(d.prompts) == ["p", "q"]


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match=r"cannot tell the format of .*x\.csv.*\.jsonl, \.jsonl\.gz"):
        Comparisons.from_trl(tmp_path / "x.csv")
    with pytest.raises(DataError, match=r"no such file .*missing\.jsonl"):
        Comparisons.from_trl(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match=r"bad\.jsonl' is not valid JSON \(one JSON object per line"):
        Comparisons.from_trl(tmp_path / "bad.jsonl")
    with pytest.raises(DataError, match=r"expected a pandas DataFrame, a path .* got list"):
        Comparisons.from_trl([{"chosen": "a", "rejected": "b"}])

    class DictLike:
        def keys(self):
            return ["train", "test"]

    with pytest.raises(DataError, match=r"pick a split, e.g. data\['test'\]"):
        Comparisons.from_trl(DictLike())


# ---------------------------------------------------------------------------------------------
# user covariates, saving, encoding
# ---------------------------------------------------------------------------------------------
def test_user_covariates_table():
    trl = pd.DataFrame({"prompt": ["p1", "p2", "p1"], "chosen": ["r1", "r2", "r3"],
                        "rejected": ["r2", "r3", "r1"], "annot": ["u1", "u2", "u1"]})
    table = pd.DataFrame({"group": ["g1", "g2"]}, index=pd.Index(["u1", "u2"]))
    d = Comparisons.from_trl(trl, user="annot", user_covariates=table)
    assert d.covariate_names == ("group[g2]",) and d.comparison_covariates[:, 0].tolist() == [0, 1, 0]
    with pytest.raises(DataError, match=r"no row for 1 user\(s\) of column 'annot'.*\['u2'\].*1 row\(s\) \[1\]"):
        Comparisons.from_trl(trl, user="annot", user_covariates=table.loc[["u1"]])


def test_to_json_round_trip_and_encode():
    rows, prompts = _hh_rows()
    df = pd.DataFrame(rows).assign(margin=[1.0, 2.0, 3.0])
    d = _quiet(Comparisons.from_trl, df)
    back = Comparisons.from_json(d.to_json())
    assert back.frame.values.tolist() == d.frame.values.tolist()
    assert back._spec.to_long.func is trl_long and back._spec.to_long.keywords["implicit"] is True
    new = pd.DataFrame({"chosen": [rows[0]["chosen"], f"{H} new{A} No."],
                        "rejected": [rows[0]["rejected"], f"{H} new{A} Go away."]})
    for data in (d, back):
        e = data.encode(new)  # read by the TRL reader again: the prompt split, no margin column needed
        assert e.prompt.tolist() == [list(d.prompts).index(prompts[0]), -1]
        assert e.frame["prompt"].tolist() == [prompts[0], f"{H} new{A}"]
        assert e.a.tolist() == [list(d.options).index(" Hello! How can I help?"), list(d.options).index(" No.")]
        assert "margin" not in e.frame


# ---------------------------------------------------------------------------------------------
# bad input: each a DataError naming the rows and the fix
# ---------------------------------------------------------------------------------------------
def test_no_assistant_turn_text_and_messages():
    rows, _ = _hh_rows()
    df = pd.DataFrame(rows)
    df.loc[1, "rejected"] = f"{H} Tell me a joke"
    with pytest.raises(DataError, match=r"column 'rejected' has a conversation with no assistant turn "
                                        r"\(no '\\n\\nAssistant:' marker\) in 1 row\(s\) \[1\].*remove those rows"):
        Comparisons.from_trl(df)
    msgs = pd.DataFrame({"chosen": [_msgs(("user", "Hi"), ("assistant", "Yo")), _msgs(("user", "Hi"))],
                         "rejected": [_msgs(("user", "Hi"), ("assistant", "No")), _msgs(("user", "Ho"))]})
    with pytest.raises(DataError, match=r"column 'chosen' has a conversation with no assistant turn "
                                        r"\(no message with role 'assistant'\) in 1 row\(s\) \[1\]"):
        Comparisons.from_trl(msgs)
    explicit = pd.DataFrame({"prompt": ["p"], "chosen": [_msgs(("user", "x"))], "rejected": [_msgs(("assistant", "y"))]})
    with pytest.raises(DataError, match=r"column 'chosen' has a conversation with no assistant turn .*\[0\]"):
        Comparisons.from_trl(explicit)


def test_chosen_identical_to_rejected():
    trl = pd.DataFrame({"prompt": ["p", "p", "q"], "chosen": ["a", "b", "c"], "rejected": ["x", "b", "y"]})
    with pytest.raises(DataError, match=r"chosen \('chosen'\) and rejected \('rejected'\) are identical in "
                                        r"1 row\(s\) \[1\]; .* Remove those rows"):
        Comparisons.from_trl(trl)
    rows, _ = _hh_rows()
    df = pd.DataFrame(rows)
    df.loc[2, "rejected"] = df.loc[2, "chosen"]
    with pytest.raises(DataError, match=r"are identical in 1 row\(s\) \[2\]"):
        Comparisons.from_trl(df)


def test_prompts_differ_text_and_messages():
    rows, _ = _hh_rows()
    df = pd.DataFrame(rows)
    df.loc[0, "rejected"] = f"{H} Hi here{A} Go away."  # first human turn differs
    df.loc[1, "rejected"] = f"{H} Tell me a joke{A} Why not?{H} Because I'm sad{A} No."  # an assistant turn
    with pytest.raises(DataError, match=r"the prompts differ in 2 row\(s\) \[0, 1\]: columns 'chosen' and "
                                        r"'rejected' must share every turn but the last assistant turn "
                                        r"\(row 0 first differs at character 12: .*Fix or remove those rows"):
        Comparisons.from_trl(df)
    msgs = pd.DataFrame({"chosen": [_msgs(("user", "Hi"), ("assistant", "Yo"))],
                         "rejected": [_msgs(("user", "Ho"), ("assistant", "No"))]})
    with pytest.raises(DataError, match=r"the prompts differ in 1 row\(s\) \[0\].*row 0: message 0 differs"):
        Comparisons.from_trl(msgs)


def test_non_string_text():
    trl = pd.DataFrame({"prompt": ["p", "p", "q"], "chosen": ["a", 3, None], "rejected": ["x", "b", "y"]})
    with pytest.raises(DataError, match=r"column 'chosen' \(chosen\) must hold text .* non-string values 3 \(int\), "
                                        r"None \(NoneType\) in 2 row\(s\) \[1, 2\]"):
        Comparisons.from_trl(trl)
    trl = pd.DataFrame({"prompt": ["p", np.nan], "chosen": ["a", "b"], "rejected": ["x", "y"]})
    with pytest.raises(DataError, match=r"column 'prompt' \(prompt\) must hold text .* in 1 row\(s\) \[1\]"):
        Comparisons.from_trl(trl)
    msgs = pd.DataFrame({"chosen": [_msgs(("user", "Hi"), ("assistant", "Yo")),
                                    [{"role": "user", "content": "Q"}, {"role": "assistant", "content": 7}]],
                         "rejected": [_msgs(("user", "Hi"), ("assistant", "No")), _msgs(("user", "Q"), ("assistant", "A"))]})
    with pytest.raises(DataError, match=r"'role' or 'content' is missing or not a string \(non-string text\) in "
                                        r"1 row\(s\) \[1\]"):
        Comparisons.from_trl(msgs)


def test_mixed_formats():
    mixed = pd.DataFrame({"prompt": ["p", "q", "r"], "chosen": ["a", _msgs(("assistant", "b")), "c"],
                          "rejected": ["x", "y", "z"]})
    with pytest.raises(DataError, match=r"column 'chosen' \(chosen\) mixes standard text .* message lists in "
                                        r"1 row\(s\) \[1\], strings elsewhere"):
        Comparisons.from_trl(mixed)
    across = pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": [_msgs(("assistant", "b"))]})
    with pytest.raises(DataError, match=r"'chosen' \(chosen\) is text but column 'rejected' \(rejected\) is messages"):
        Comparisons.from_trl(across)


def test_nan_and_non_numeric_scores():
    trl = pd.DataFrame({"prompt": ["p", "p", "q"], "chosen": ["a", "b", "c"], "rejected": ["x", "y", "z"],
                        "margin": [1.0, np.nan, 2.0], "note": ["u", "v", "w"]})
    with pytest.raises(DataError, match=r"score column 'margin' has missing values \(NaN\) in 1 row\(s\) \[1\]. "
                                        r"Fill or remove those rows"):
        Comparisons.from_trl(trl)
    with pytest.raises(DataError, match=r"score column 'note' is not numeric"):
        Comparisons.from_trl(trl, scores=["note"])
    with pytest.raises(DataError, match=r"column 'mrgn' \(given as scores\[0\]=\) is not in the frame"):
        Comparisons.from_trl(trl, scores=["mrgn"])
