"""Fuzz the adapters: :meth:`Comparisons.from_counts`, :meth:`~Comparisons.from_wide`,
:meth:`~Comparisons.from_trl` (strings, lists of messages, implicit prompts, malformed),
:meth:`~Comparisons.from_arena` (winner values) and :meth:`~Comparisons.from_kwise`.

Each starts from a valid input, applies a few random mutations (odd values and dtypes, renamed,
dropped or duplicated columns, odd arguments) and asserts a bayespref error naming the constructor,
or a Comparisons whose invariants hold and whose outcomes are the ones the input says.
"""

from __future__ import annotations

import math

import fuzzing
import numpy as np
import pandas as pd
import strategies as S
from hypothesis import example, given
from hypothesis import strategies as st

import bayespref as bp
from bayespref.data.readers.arena import ARENA_WINNER


def _error_names(out, where):
    assert fuzzing.names_one_of(out, where), str(out)


def _encodes_back(name, data, df):
    """``data.encode(df)`` of the input that made ``data`` (through the same adapter) gives the same
    comparisons: what a valid result must do when it later meets new data of its own format."""
    status, again = fuzzing.attempt(f"{name} -> encode", data.encode, df, follow_up=True)
    assert status == "ok", f"encode refused the training input: {again}"
    fuzzing.check_arrays(again, data.n_comparisons, encoded=True)
    for field in ("a", "b", "user", "outcome"):
        np.testing.assert_array_equal(getattr(again, field), getattr(data, field), err_msg=field)
    if data.prompt is not None:
        np.testing.assert_array_equal(again.prompt, data.prompt)


# -- counts ------------------------------------------------------------------------------------------
COUNT_VALUES = [0, 1, 2, 3, 0, 1, 10**12]


@st.composite
def count_tables(draw):
    n = draw(st.integers(1, 5))
    a, b = draw(S.option_pairs(n))
    counts = st.lists(st.integers(0, 3), min_size=n, max_size=n)
    df = pd.DataFrame({"a": a, "b": b, "wins_a": draw(counts), "wins_b": draw(counts), "ties": draw(counts),
                       "u": draw(st.lists(st.sampled_from(["u1", "u2"]), min_size=n, max_size=n))})
    kwargs = {"a": "a", "b": "b", "wins_a": "wins_a", "wins_b": "wins_b",
              "ties": draw(st.sampled_from(["ties", None])), "user": draw(st.sampled_from(["u", None]))}
    cols = {"wins_a": COUNT_VALUES, "wins_b": COUNT_VALUES, "ties": COUNT_VALUES, "u": ["u1", "u2"]}
    return draw(S.mutated(df, kwargs, cols))


@given(count_tables())
@example((pd.DataFrame({"a": ["x"], "b": ["y"], "wins_a": [0], "wins_b": [0]}), {}))
@example((pd.DataFrame({"a": ["x"], "b": ["y"], "wins_a": [10**12], "wins_b": [1]}), {}))
@example((pd.DataFrame({"a": ["x"], "b": ["y"], "wins_a": [math.inf], "wins_b": [1]}), {}))
@example((pd.DataFrame({"a": [["x"], "y"], "b": ["y", "x"], "wins_a": [1, 1], "wins_b": [0, 1]}), {}))  # regression
@example((pd.DataFrame({"a": ["x"], "b": ["y"], "wins_a": [1], "wins_b": [1]}), {"wins_a": None}))  # taken as 0 wins
def test_from_counts(case):
    df, kwargs = case
    status, out = fuzzing.attempt("from_counts", bp.Comparisons.from_counts, df, **kwargs)
    if status == "error":
        return _error_names(out, "Comparisons.from_counts")
    cols = [kwargs.get("wins_a", "wins_a"), kwargs.get("wins_b", "wins_b")] + (
        [kwargs["ties"]] if kwargs.get("ties", None) is not None else [])
    counts = df[cols].to_numpy(dtype=np.int64)
    fuzzing.check_arrays(out, int(counts.sum()))
    codes = [1.0, 0.0, 0.5]
    expected = [codes[j] for row in counts for j, k in enumerate(row) for _ in range(k)]
    assert out.outcome.tolist() == expected
    rows = np.repeat(np.arange(len(df)), counts.sum(axis=1))
    assert all(out.options[i] == v for i, v in zip(out.a, df[kwargs.get("a", "a")].to_numpy()[rows]))
    _encodes_back("from_counts", out, df)


# -- wide --------------------------------------------------------------------------------------------
@st.composite
def wide_tables(draw):
    n = draw(st.integers(1, 4))
    pairs = draw(st.lists(st.sampled_from(["x:y", "y:z", "x:z", "z:w"]), min_size=1, max_size=3, unique=True))
    df = pd.DataFrame({"id": list(range(n)), "age": draw(st.lists(st.sampled_from([20.0, 31.5]), min_size=n,
                                                                   max_size=n))})
    for p in pairs:
        df[p] = draw(st.lists(st.sampled_from([1, -1, 0]), min_size=n, max_size=n))
    kwargs = {"subject": "id", "covariates": draw(st.sampled_from([None, ["age"], "age"])),
              "missing": draw(st.sampled_from(["error", "drop"]))}
    if draw(st.integers(0, 3)) == 0:
        kwargs["pairs"] = draw(st.sampled_from([pairs, pairs[:1], ["x:y", "nope"], "x:y", [], None]))
    if draw(st.integers(0, 3)) == 0:
        kwargs["sep"] = draw(st.sampled_from([":", "-", "", "::", None, 1, [":"]]))
    if draw(st.integers(0, 3)) == 0:
        kwargs["coding"] = draw(st.sampled_from([{1: 1.0, -1: 0.0}, {"A": 1, "B": 0}, {1: 2.0, -1: 0.0, 0: 0.5},
                                                 [(1, 1.0), (-1, 0.0)], 3, "abc", None]))
    cols = {p: [1, -1, 0, math.nan] for p in pairs}
    return draw(S.mutated(df, kwargs, {**cols, "id": [0, 1, 2], "age": [20.0, 31.5]}))


@given(wide_tables())
@example((pd.DataFrame({"id": [1], "x:y": [1]}), {"subject": "id", "sep": ""}))  # regression: ValueError
@example((pd.DataFrame({"id": [1], "x:y": [1]}), {"subject": "id", "sep": None}))  # regression: TypeError
@example((pd.DataFrame({"id": [1], "x:y": [1]}), {"subject": "id", "coding": 3}))  # regression: TypeError
@example((pd.DataFrame({"id": [1], "x:y": [1]}), {"subject": "id", "pairs": 3}))  # regression: TypeError
@example((pd.DataFrame({"id": [1], "x:y": [1]}), {"subject": "id", "covariates": 3}))  # regression: TypeError
@example((pd.DataFrame({"id": [1], "x:y": [1]}), {"subject": None}))  # regression: KeyError
@example((pd.DataFrame({"id": [1], "x:y": [[1]]}), {"subject": "id"}))  # regression: TypeError (a list cell)
def test_from_wide(case):
    df, kwargs = case
    status, out = fuzzing.attempt("from_wide", bp.Comparisons.from_wide, df, **kwargs)
    if status == "error":
        return _error_names(out, "Comparisons.from_wide")
    coding = {1: 1.0, -1: 0.0, 0: 0.5} if kwargs.get("coding") is None else dict(kwargs["coding"])
    pairs = out._spec.to_long.keywords["pairs"]
    pairs = [pairs] if isinstance(pairs, str) else pairs
    pairs = [c for c in df.columns if isinstance(c, str) and kwargs.get("sep", ":") in c
             and c != kwargs["subject"]] if pairs is None else pairs
    cells = df[pairs].to_numpy(dtype=object).ravel()
    cells = [v for v in cells if not pd.isna(v)]
    fuzzing.check_arrays(out, len(cells))
    assert out.outcome.tolist() == [float(coding[v]) for v in cells]
    has_cells = df[pairs].notna().any(axis=1).to_numpy()  # subjects with a comparison
    assert out.n_users == df[kwargs["subject"]][has_cells].nunique()
    _encodes_back("from_wide", out, df)


# -- TRL ---------------------------------------------------------------------------------------------
RESPONSES = ["Sure.", "No.", "Maybe", "Here you go: 42"]
MESSAGE_ODDITIES = [None, 3, "text", {"role": "assistant"}, {"role": 1, "content": "x"},
                    [{"role": "user", "content": "hi"}], [], [{"content": "x"}], [1, 2],
                    {"role": "assistant", "content": "x"}]


def _transcript(prompt, answer):
    return f"\n\nHuman: {prompt}\n\nAssistant: {answer}"


@st.composite
def trl_frames(draw):
    n = draw(st.integers(1, 4))
    layout = draw(st.sampled_from(["text", "messages", "implicit text", "implicit messages"]))
    prompts = draw(st.lists(st.sampled_from(["Hi", "What is 6x7?", ""]), min_size=n, max_size=n))
    chosen, rejected = draw(S.option_pairs(n, RESPONSES))
    if layout == "text":
        df = pd.DataFrame({"prompt": prompts, "chosen": chosen, "rejected": rejected})
    elif layout == "messages":
        def msgs(t):
            return [{"role": "assistant", "content": t}]
        df = pd.DataFrame({"prompt": [[{"role": "user", "content": p}] for p in prompts],
                           "chosen": [msgs(t) for t in chosen], "rejected": [msgs(t) for t in rejected]})
    elif layout == "implicit text":
        df = pd.DataFrame({"chosen": [_transcript(p, t) for p, t in zip(prompts, chosen)],
                           "rejected": [_transcript(p, t) for p, t in zip(prompts, rejected)]})
    else:
        def conv(p, t):
            return [{"role": "user", "content": p}, {"role": "assistant", "content": t}]
        df = pd.DataFrame({"chosen": [conv(p, t) for p, t in zip(prompts, chosen)],
                           "rejected": [conv(p, t) for p, t in zip(prompts, rejected)]})
    df["u"] = draw(st.lists(st.sampled_from(["u1", "u2"]), min_size=n, max_size=n))
    if draw(st.booleans()):
        df["margin"] = draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n))
    kwargs = {"chosen": "chosen", "rejected": "rejected", "user": draw(st.sampled_from(["u", None]))}
    if draw(st.integers(0, 3)) == 0:
        kwargs["implicit"] = draw(st.sampled_from([True, False, None]))
    if draw(st.integers(0, 3)) == 0:
        kwargs["prompt"] = draw(st.sampled_from([None, "prompt", "chosen", "nope"]))
    if draw(st.integers(0, 4)) == 0:
        kwargs["scores"] = draw(st.sampled_from([[], ["margin"], ["u"], "margin"]))
    odd = {c: RESPONSES + MESSAGE_ODDITIES for c in ("prompt", "chosen", "rejected")}
    df, kwargs = draw(S.mutated(df, kwargs, {**odd, "margin": [0.5, math.nan, math.inf]}))
    if len(df) and draw(st.integers(0, 3)) == 0:  # one malformed cell of a text column
        col = draw(st.sampled_from([c for c in ("prompt", "chosen", "rejected") if c in df.columns] or ["u"]))
        if col in df.columns and df.columns.is_unique:
            values = df[col].astype(object).tolist()
            values[draw(st.integers(0, len(df) - 1))] = draw(st.sampled_from(MESSAGE_ODDITIES))
            cells = np.empty(len(values), dtype=object)
            for i, v in enumerate(values):
                cells[i] = v
            df = df.assign(**{col: cells})
    return df, kwargs


@given(trl_frames())
@example((pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]}), {}))
@example((pd.DataFrame({"chosen": [_transcript("p", "a")], "rejected": [_transcript("q", "b")]}), {}))
# regressions: scores=3 (TypeError), chosen=None (KeyError)
@example((pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]}), {"scores": 3}))
@example((pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]}), {"chosen": None}))
def test_from_trl(case):
    df, kwargs = case
    status, out = fuzzing.attempt("from_trl", bp.Comparisons.from_trl, df, **kwargs)
    if status == "error":
        return _error_names(out, "Comparisons.from_trl")
    fuzzing.check_arrays(out, len(df))
    assert (out.outcome == 1.0).all()
    assert all(isinstance(v, str) for v in out.options)
    _encodes_back("from_trl", out, df)


# -- Arena -------------------------------------------------------------------------------------------
WINNERS = list(ARENA_WINNER)


@st.composite
def arena_frames(draw):
    n = draw(st.integers(1, 6))
    a, b = draw(S.option_pairs(n, ["gpt", "claude", "llama"]))
    df = pd.DataFrame({"model_a": a, "model_b": b,
                       "winner": draw(st.lists(st.sampled_from(WINNERS), min_size=n, max_size=n)),
                       "judge": draw(st.lists(st.sampled_from(["j1", "j2"]), min_size=n, max_size=n)),
                       "question_id": draw(st.lists(st.sampled_from([1, 2, 3]), min_size=n, max_size=n)),
                       "turn": 1})
    kwargs = {"model_a": "model_a", "model_b": "model_b", "winner": "winner"}
    if draw(st.integers(0, 3)) == 0:
        kwargs["keep"] = draw(st.sampled_from([[], ["turn"], ["language"], ["judge"], "turn", ["a"]]))
    if draw(st.integers(0, 3)) == 0:
        kwargs["judge"] = draw(st.sampled_from([None, "judge", "question_id", "nope"]))
    winners = WINNERS + ["model_A", "tie(bothbad)", "a", "", 1, 0.5, math.nan, None, True]
    return draw(S.mutated(df, kwargs, {"winner": winners, "model_a": ["gpt", "claude"]}))


@given(arena_frames())
@example((pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m1"], "winner": ["tie (bothbad)", 1]}), {}))
# regressions: an unhashable model name (TypeError), keep=0 (TypeError), a list as winner (TypeError),
# winner=None (KeyError), judge= an array (ValueError)
@example((pd.DataFrame({"model_a": [[1], "m2"], "model_b": ["m2", "m1"], "winner": ["model_a"] * 2}), {}))
@example((pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m1"], "winner": ["model_a"] * 2}), {"keep": 0}))
@example((pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m1"], "winner": [[1], "model_a"]}), {}))
@example((pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m1"], "winner": ["model_a"] * 2}),
          {"winner": None}))
@example((pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m1"], "winner": ["model_a"] * 2}),
          {"judge": np.array(["a", "b"])}))
def test_from_arena(case):
    df, kwargs = case
    status, out = fuzzing.attempt("from_arena", bp.Comparisons.from_arena, df, **kwargs)
    if status == "error":
        return _error_names(out, "Comparisons.from_arena")
    fuzzing.check_arrays(out, len(df))
    winner = kwargs.get("winner", "winner")
    assert out.outcome.tolist() == [ARENA_WINNER[w] for w in df[winner]]
    assert out.frame[winner].tolist() == df[winner].tolist()
    _encodes_back("from_arena", out, df)


# -- k-wise ------------------------------------------------------------------------------------------
@st.composite
def kwise_frames(draw):
    n = draw(st.integers(2, 8))
    prompts = draw(st.lists(st.sampled_from(["p1", "p1", "p2"]), min_size=n, max_size=n))
    responses = [f"r{i}" for i in range(n)]
    df = pd.DataFrame({"prompt": prompts, "response": responses,
                       "score": draw(st.lists(st.sampled_from([1, 2, 3, 2.5]), min_size=n, max_size=n)),
                       "u": draw(st.lists(st.sampled_from(["u1", "u2"]), min_size=n, max_size=n)),
                       "len": draw(st.lists(st.floats(0, 100), min_size=n, max_size=n))})
    kwargs = {"prompt": "prompt", "response": "response", "score": "score",
              "user": draw(st.sampled_from([None, "u"])), "singletons": draw(st.sampled_from(["error", "drop"]))}
    if draw(st.integers(0, 2)) == 0:
        kwargs["pairs"] = draw(st.sampled_from(["all", "adjacent", "best_vs_rest"] * 2 + ["best", None, 3]))
    if draw(st.integers(0, 2)) == 0:
        kwargs["ties"] = draw(st.sampled_from(["tie", "drop"] * 3 + ["keep", None]))
    if draw(st.integers(0, 3)) == 0:
        kwargs["features"] = draw(st.sampled_from([["len"], "len", ["score"], ["nope"]]))
    return draw(S.mutated(df, kwargs, {"score": [1, 2, 3, math.nan, math.inf, True, "3"],
                                       "response": ["r0", "r1"], "prompt": ["p1", "p2"]}))


@given(kwise_frames())
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 1]}), {"ties": "drop"}))
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [True, False]}), {}))
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 2]}), {"pairs": ["all"]}))
# regressions: an unhashable prompt id (TypeError), features=1.5 (TypeError), an array as singletons=
# (ValueError), score=None / response=None (KeyError), prompt=None (TypeError)
@example((pd.DataFrame({"prompt": [["p"], "p"], "response": ["x", "y"], "score": [1, 2]}), {}))
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 2]}), {"features": 1.5}))
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 2]}),
          {"singletons": np.array(["a", "b"])}))
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 2]}), {"score": None}))
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 2]}), {"response": None}))
@example((pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "y"], "score": [1, 2]}), {"prompt": None}))
def test_from_kwise(case):
    df, kwargs = case
    status, out = fuzzing.attempt("from_kwise", bp.Comparisons.from_kwise, df, **kwargs)
    if status == "error":
        return _error_names(out, "Comparisons.from_kwise")
    fuzzing.check_arrays(out, out.n_comparisons)
    sa, sb = "score_a", "score_b"
    if sa in out.frame.columns and sb in out.frame.columns:
        a, b = out.frame[sa].to_numpy(float), out.frame[sb].to_numpy(float)
        assert (out.outcome == np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))).all()
    if kwargs.get("ties") == "drop":
        assert not out.has_ties
    _encodes_back("from_kwise", out, df)
