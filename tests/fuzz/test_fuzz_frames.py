"""Fuzz :meth:`Comparisons.from_frame` and :meth:`Comparisons.encode` with generated frames: column
names (duplicated too), dtypes (object, category, string, bool, nullable), ids of mixed types,
outcomes coded right and wrong, user and prompt columns, feature columns and tables, user covariate
columns and tables, and arguments naming missing or unhashable columns.

Each case ends in a bayespref error that names the constructor, or in a Comparisons whose arrays
have one entry per row, indices in range, outcomes as given and finite features (:func:`check_data`).
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

PLAIN = pd.DataFrame({"a": list("xyzx"), "b": list("yzxz"), "outcome": [1, 0, 0.5, 1]})


def check_data(data, df: pd.DataFrame, roles: dict, *, encoded: bool = False, train=None):
    """The invariants of a Comparisons read from ``df`` (``encoded``: by ``train.encode``)."""
    fuzzing.check_arrays(data, len(df), encoded=encoded)
    given = ~np.isnan(data.outcome)
    if given.any() and roles.get("outcome") is not None:
        raw = df[roles["outcome"]].tolist()
        assert [fuzzing.expected_outcome(v) for v in raw] == data.outcome.tolist()
    assert data.comparison_ids.equals(df.index) and data.frame.index.equals(df.index)
    if not encoded:
        for side in ("a", "b"):  # the labels are the ones given
            col = df[roles[side]].tolist()
            assert all(data.options[i] == v for i, v in zip(getattr(data, side), col))
        if roles.get("user") is not None:
            assert all(data.users[i] == v for i, v in zip(data.user, df[roles["user"]].tolist()))
    else:
        assert data.options.equals(train.options) and data.users.equals(train.users)


USERS, PROMPTS = ["u1", "u2", "u3"], ["p1", "p2"]
#: column -> its usual values (a mutated column is refilled from these and from odd values)
COMMON = {"a": S.LABELS, "b": S.LABELS, "outcome": [0, 1, 0.5, "tie"], "u": USERS, "p": PROMPTS,
          "f_a": [0.0, 1.5], "f_b": [2.0, -1.0], "age": [20, 30.5], "group": ["lo", "hi"]}


@st.composite
def long_frames(draw):
    """``(df, kwargs)``: a valid long frame and ``from_frame`` arguments, then a few mutations."""
    n = draw(st.integers(1, 8))
    a, b = draw(S.option_pairs(n))
    users = draw(st.lists(st.sampled_from(USERS), min_size=n, max_size=n))
    age = {u: draw(st.sampled_from([20, 30.5, 41])) for u in USERS}
    group = {u: draw(st.sampled_from(["lo", "hi"])) for u in USERS}
    finite = st.floats(-100, 100, allow_nan=False)
    df = pd.DataFrame({
        "a": a, "b": b,
        "outcome": draw(st.one_of(st.lists(st.sampled_from([0, 1, 0.5, "tie"]), min_size=n, max_size=n),
                                  st.lists(st.booleans(), min_size=n, max_size=n))),
        "u": users, "p": draw(st.lists(st.sampled_from(PROMPTS), min_size=n, max_size=n)),
        "f_a": draw(st.lists(finite, min_size=n, max_size=n)), "f_b": draw(st.lists(finite, min_size=n, max_size=n)),
        "age": [age[u] for u in users], "group": [group[u] for u in users]})
    options = sorted(set(a) | set(b))
    kwargs = {"a": "a", "b": "b", "outcome": "outcome",
              "user": draw(st.sampled_from(["u", None])), "prompt": draw(st.sampled_from(["p", None])),
              "check_connected": draw(st.booleans())}
    kwargs["features"] = draw(st.sampled_from([
        None, ["f"], "f", pd.DataFrame({"size": np.arange(len(options), dtype=float)}, index=options)]))
    present = list(dict.fromkeys(users)) if kwargs["user"] else ["all"]
    kwargs["user_covariates"] = draw(st.sampled_from([
        None, ["age"], ["age", "group"], "group",
        pd.DataFrame({"age": [age.get(u, 1.0) for u in present], "group": [group.get(u, "lo") for u in present]},
                     index=present)]))
    df, kwargs = draw(S.mutated(df, kwargs, COMMON))
    # sometimes the features or covariates are a generated table of any quality, or not a table at all
    if draw(st.integers(0, 4)) == 0:
        kwargs["features"] = draw(st.one_of(S.table(options), st.sampled_from([3, {"f": 1}, ("f",), ["g"]])))
    if draw(st.integers(0, 4)) == 0:
        kwargs["user_covariates"] = draw(st.one_of(S.table(present, numeric=False),
                                                   st.sampled_from([3, {"age": 1}, ["nope"]])))
    return df, kwargs


def _case(df, kwargs):
    status, out = fuzzing.attempt("from_frame", bp.Comparisons.from_frame, df, **kwargs)
    if status == "error":
        assert fuzzing.names_one_of(out, "Comparisons.from_frame"), str(out)
    else:
        check_data(out, df, {"a": "a", "b": "b", "outcome": "outcome", **kwargs})


@given(long_frames())
@example((PLAIN, {}))
@example((PLAIN.assign(outcome=[True, False, True, True]), {}))
@example((PLAIN.set_axis(["a", "a", "outcome"], axis=1), {}))  # duplicated column names
@example((PLAIN.assign(f_a=[1.0, math.inf, 2.0, 3.0], f_b=1.0), {"features": ["f"]}))
@example((PLAIN.assign(u=[1, 1, 2, 2], age=[math.nan, math.nan, 1.0, 1.0]), {"user": "u", "user_covariates": ["age"]}))
# regressions found by this fuzzer (each raised another exception type before it was fixed)
@example((PLAIN.assign(a=[[1], "y", "z", "x"]), {}))  # an unhashable id: TypeError
@example((PLAIN, {"a": None}))  # no column for a required role: KeyError
@example((PLAIN, {"check_connected": np.array([True, False])}))  # an array as a flag: ValueError
@example((PLAIN.assign(u=[1, 1, 2, 2], g=[[1], [1], "b", "b"]), {"user": "u", "user_covariates": ["g"]}))
def test_from_frame(case):
    df, kwargs = case
    _case(df, kwargs)


# -- encode ------------------------------------------------------------------------------------------
TRAIN = pd.DataFrame({"a": list("xyzxyz"), "b": list("yzxzxy"), "outcome": [1, 0, 1, 0.5, 0, 1],
                      "u": ["u1", "u1", "u2", "u2", "u3", "u3"], "p": ["p1", "p2"] * 3,
                      "f_a": [1.0, 2, 3, 1, 2, 3], "f_b": [2.0, 3, 1, 3, 1, 2], "age": [20.0, 20, 30, 30, 40, 40],
                      "group": ["lo", "lo", "hi", "hi", "lo", "lo"]})
OPTION_TABLE = pd.DataFrame({"f": [1.0, 2.0, 3.0]}, index=list("xyz"))
USER_TABLE = pd.DataFrame({"age": [20.0, 30.0, 40.0], "group": ["lo", "hi", "lo"]}, index=["u1", "u2", "u3"])
TRAININGS = {
    "plain": dict(),
    "users": dict(user="u", prompt="p", user_covariates=["age", "group"]),
    "feature columns": dict(user="u", features=["f"]),
    "tables": dict(user="u", features=OPTION_TABLE, user_covariates=USER_TABLE),
}
TRAINED = {name: bp.Comparisons.from_frame(TRAIN, **kw) for name, kw in TRAININGS.items()}


@st.composite
def new_frames(draw):
    """``(training name, df, kwargs)``: a new frame for ``encode`` and its arguments, then mutations."""
    n = draw(st.integers(1, 6))
    a, b = draw(S.option_pairs(n, draw(st.sampled_from([["x", "y", "z"]] * 3 + [["x", "y", "z", "new"]]))))
    users = draw(st.lists(st.sampled_from(["u1", "u2", "u9"]), min_size=n, max_size=n))
    finite = st.floats(-100, 100, allow_nan=False)
    df = pd.DataFrame({"a": a, "b": b, "outcome": draw(st.lists(st.sampled_from([0, 1, 0.5]), min_size=n, max_size=n)),
                       "u": users, "p": draw(st.lists(st.sampled_from(["p1", "p9"]), min_size=n, max_size=n)),
                       "f_a": draw(st.lists(finite, min_size=n, max_size=n)),
                       "f_b": draw(st.lists(finite, min_size=n, max_size=n)),
                       "age": [{"u1": 20.0, "u2": 30.0, "u9": 50.0}[u] for u in users],
                       "group": [{"u1": "lo", "u2": "hi", "u9": "hi"}[u] for u in users]})
    if draw(st.booleans()):
        df = df.drop(columns="outcome")
    kwargs = {}
    if draw(st.integers(0, 3)) == 0:
        kwargs["features"] = pd.DataFrame({"f": [1.0, 4.0]}, index=["new", "x"])
    if draw(st.integers(0, 3)) == 0:
        kwargs["user_covariates"] = pd.DataFrame({"age": [50.0], "group": ["hi"]}, index=["u9"])
    df, kwargs = draw(S.mutated(df, kwargs, {**COMMON, "a": ["x", "new"], "u": ["u1", "u9"]}))
    if draw(st.integers(0, 4)) == 0:
        role = draw(st.sampled_from(["a", "b", "outcome", "user", "prompt"]))
        kwargs[role] = draw(st.sampled_from(["a", "b", "outcome", "u", "p"] + S.NAMES + S.NOT_NAMES))
    if draw(st.integers(0, 4)) == 0:
        kwargs["features"] = draw(st.one_of(S.table(["x", "y", "z", "new"]), st.just(["f"])))
    if draw(st.integers(0, 4)) == 0:
        kwargs["user_covariates"] = draw(st.one_of(S.table(["u1", "u9"], numeric=False), st.just(["age", "group"]),
                                                   st.just(3)))
    return draw(st.sampled_from(sorted(TRAINED))), df, kwargs


@given(new_frames())
@example(("users", TRAIN.drop(columns="outcome"), {}))
@example(("tables", TRAIN.assign(a="new"), {"features": pd.DataFrame({"f": [math.inf]}, index=["new"])}))
# regressions found by this fuzzer (each raised another exception type before it was fixed)
@example(("feature columns", TRAIN, {"user": ["a"]}))  # an unhashable column name: TypeError
def test_encode(case):
    name, df, kwargs = case
    train = TRAINED[name]
    status, out = fuzzing.attempt("encode", train.encode, df, **kwargs)
    if status == "error":
        assert fuzzing.names_one_of(out, "Comparisons.encode", "features", "user_covariates"), str(out)
    else:
        roles = {**train._spec.roles, **{k: v for k, v in kwargs.items() if k in train._spec.roles}}
        roles["outcome"] = roles["outcome"] if roles["outcome"] in df.columns else None
        check_data(out, df, roles, encoded=True, train=train)
