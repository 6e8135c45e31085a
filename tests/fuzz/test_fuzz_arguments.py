"""Fuzz the arguments: :func:`bayespref.fit` (methods, settings of random values and types, seeds,
flags, models), the model spec constructors (every field of every family), and TOML run specs
(:func:`bayespref.cli.runspec.load_spec` on generated TOML text built from the valid keys).

Nothing is compiled: ``fit``'s preparation and engines are replaced by a function that raises
:class:`Reached`, so a case either is refused by the argument checks (a bayespref error naming the
argument) or gets as far as the preparation, which it may only do when every argument is valid.
"""

from __future__ import annotations

import dataclasses
import importlib
import math

import fuzzing
import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import bayespref as bp
from bayespref.cli import runspec
from bayespref.inference.settings import SETTINGS
from bayespref.models import FAMILIES
from bayespref.validate import SEED_BOUND, Flag, OneOf, Real, Whole, conforms, field_types

fit_module = importlib.import_module("bayespref.inference.fit")

#: values of every type, right for some settings and wrong for others
ANY = [0, 1, 2, -1, 10**6, 2**32, 0.5, 1.0, 0.0, -0.5, 1e-12, math.nan, math.inf, -math.inf, True, False,
       None, "", "yes", "nuts", "auto", "normal", [], [1], ("a",), {}, {"a": 1}, np.int64(2), np.float64(0.9),
       np.bool_(True), np.array([1, 2]), object(), b"1", 1 + 2j]


class Reached(Exception):
    """fit() got past every check of its arguments (to the preparation of the model)."""


@pytest.fixture(scope="module", autouse=True)
def nothing_compiled():
    def reached(*args, **kwargs):
        raise Reached

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fit_module, "_prepare", reached)
        mp.setattr(fit_module, "METHODS", {m: reached for m in fit_module.METHODS})
        yield


DATA = bp.Comparisons.from_frame(pd.DataFrame({"a": list("xyzxyz"), "b": list("yzxzxy"), "outcome": [1, 0, 1, 1, 0, 0],
                                               "u": [1, 1, 2, 2, 3, 3]}), user="u")


def valid_values(rule, hint):
    """A strategy of values ``rule`` (or, without one, the annotation ``hint``) accepts."""
    if isinstance(rule, Whole):
        return st.integers(rule.low, rule.high if rule.high is not None else rule.low + 50)
    if isinstance(rule, Real):
        lo = rule.low if rule.low > -math.inf else -1e6
        hi = rule.high if rule.high < math.inf else 1e6
        return st.floats(lo, hi, exclude_min=rule.open_low, exclude_max=rule.open_high, allow_nan=False)
    if isinstance(rule, OneOf):
        return st.sampled_from(rule.options + ((None,) if rule.none else ()))
    if isinstance(rule, Flag) or hint is bool:
        return st.booleans()
    return None


def invalid_values(rule):
    """A strategy of values ``rule`` refuses."""
    odd = st.sampled_from([v for v in ANY if not _accepts(rule, v)])
    if isinstance(rule, Whole):
        return st.one_of(odd, st.integers(max_value=rule.low - 1))
    return odd


def _accepts(rule, v):
    return (v is None and rule.none) or (v is not None and rule.accepts(v))


@st.composite
def fit_calls(draw):
    """``(model, kwargs, bad)``: a fit() call and the names of the arguments known to be invalid
    (None when some value's validity is not known: a value of a random type)."""
    clean = draw(st.booleans())  # every argument valid (about half of the cases)
    methods = ["nuts", "svi", "laplace"] + ([] if clean else ["mcmc", None, ["nuts"], 1])
    method = draw(st.sampled_from(methods))
    cls = SETTINGS.get(method) if isinstance(method, str) else None
    kwargs, bad, unknown = {"method": method}, set(), False
    if cls is None:
        bad.add("method")
        cls = SETTINGS["nuts"]
    hints = field_types(cls)
    for name in draw(st.lists(st.sampled_from(sorted(hints)), max_size=4, unique=True)):
        rule = cls.rules.get(name)
        good = valid_values(rule, hints[name])
        how = "valid" if clean else draw(st.sampled_from(["valid", "invalid", "any"]))
        how = how if rule is not None else "any"
        if how == "valid" and good is not None:
            kwargs[name] = draw(good)
        elif how == "invalid" and rule is not None:
            kwargs[name] = draw(invalid_values(rule))
            bad.add(name)
        else:
            kwargs[name] = draw(st.sampled_from(ANY))
            unknown = True
    if not clean and draw(st.integers(0, 5)) == 0:  # a setting of another method, or none at all
        other = draw(st.sampled_from(["steps", "chains", "importance", "nope", "progress"]))
        if other not in hints:
            kwargs[other] = 1
            bad.add(other)
    seed = draw(st.integers(0, SEED_BOUND - 1) if clean else st.one_of(st.integers(0, SEED_BOUND - 1),
                                                                         st.sampled_from(ANY)))
    kwargs["seed"] = seed
    if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and 0 <= seed < SEED_BOUND):
        bad.add("seed")
    for flag in ("posterior_predictive", "log_likelihood"):
        if draw(st.booleans()):
            kwargs[flag] = draw(st.sampled_from([True, False, np.bool_(False)] + ([] if clean else [1, "yes", None])))
            if not isinstance(kwargs[flag], (bool, np.bool_)):
                bad.add(flag)
    if not clean and draw(st.integers(0, 5)) == 0:
        kwargs["init"] = draw(st.sampled_from(["fit.nc", 3, DATA]))
        bad.add("init")
    if draw(st.integers(0, 5)) == 0:
        kwargs["settings"] = draw(st.sampled_from([SETTINGS["svi"](), SETTINGS["nuts"](chains=2)] +
                                                  ([] if clean else [{"chains": 2}, 3])))
        if not isinstance(kwargs["settings"], SETTINGS.get(method if isinstance(method, str) else "", type(None))):
            bad.add("settings")
    if not clean and draw(st.integers(0, 7)) == 0:
        kwargs["laplace_options"] = draw(st.sampled_from([{"importance": 4}, {"importance": -1}, [1], 3]))
        bad.add("laplace_options")
    model = draw(st.sampled_from([bp.BradleyTerry(), bp.Hierarchical(), bp.BradleyTerry] +
                                 ([] if clean else ["BradleyTerry", 3])))
    if model in ("BradleyTerry", 3):
        bad.add("model")
    elif method == "laplace" and bp.models.as_spec(model).family != "Hierarchical":
        bad.add("method")
    return model, kwargs, None if unknown and not bad else bad


@given(fit_calls())
@example((bp.BradleyTerry(), {"method": "nuts", "init": "fit.nc"}, {"init"}))  # regression: reached the engine
@example((bp.Hierarchical(), {"method": "laplace", "laplace_options": [1]}, {"laplace_options"}))  # regression: TypeError
def test_fit_arguments(case):
    model, kwargs, bad = case
    try:
        status, out = fuzzing.attempt("fit arguments", bp.fit, model, DATA, **{"progress": False, **kwargs})
    except Reached:
        fuzzing.STATS["fit arguments"]["valid"] += 1
        assert not bad, f"fit() accepted invalid {sorted(bad)}"
        return
    assert status == "error"
    assert bad is None or bad, f"fit() refused valid arguments: {out}"
    named = set(kwargs) | {"model", "data", "ties"}
    assert fuzzing.names_one_of(out, *(f"{k}=" for k in named), *(f"{k}" for k in named)), str(out)


# -- model specs -------------------------------------------------------------------------------------
SPEC_ANY = ANY + ["worths", "features", "logit", "probit", "davidson", "half", "erase", "weights", "partial",
                  ["worths"], ["features", "worths"], ["f"], {"f": ["g"]}, {"f": 3}, ("x",)]


@st.composite
def spec_calls(draw):
    """``(family, kwargs)``: random values (valid for their rule or of any type) for random fields."""
    family = draw(st.sampled_from(sorted(FAMILIES)))
    cls = FAMILIES[family]
    hints = field_types(cls)
    kwargs = {"condition": "group"} if family == "Conditioned" and draw(st.integers(0, 4)) else {}
    for name in draw(st.lists(st.sampled_from(sorted(hints)), max_size=4, unique=True)):
        rule = cls.rules.get(name)
        typed = [v for v in SPEC_ANY if conforms(v, hints[name])]  # of the annotated type
        good = valid_values(rule, hints[name]) if rule is not None else st.sampled_from(typed) if typed else None
        if good is not None and draw(st.integers(0, 2)):
            kwargs[name] = draw(good)
        else:
            kwargs[name] = draw(st.sampled_from(SPEC_ANY))
    return family, kwargs


@given(spec_calls())
@example(("Hierarchical", {"interactions": {"f": 3}}))  # regression: TypeError
def test_model_specs(case):
    family, kwargs = case
    cls = FAMILIES[family]
    status, out = fuzzing.attempt("model specs", cls, **kwargs)
    if status == "error":
        assert isinstance(out, bp.ModelError)
        assert fuzzing.names_one_of(out, *kwargs, *field_types(cls)), str(out)
        return
    out.validate_options()  # a spec that was made stays valid
    assert dataclasses.replace(out) == out
    for name, value in kwargs.items():
        rule = cls.rules.get(name)
        if rule is not None:
            assert _accepts(rule, getattr(out, name)), (name, value)


# -- TOML run specs ----------------------------------------------------------------------------------
def toml_value(v) -> str:
    """``v`` written as TOML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


TOML_ANY = [0, 1, 2, -5, 2**40, 0.5, 1.0, -1.0, 1e-9, math.nan, math.inf, True, False, "", "x", "nuts", "svi",
            "laplace", "BradleyTerry", "Hierarchical", "worths", "logit", "md", "html", "baseball", [], [1, 2],
            ["worths"], ["gender"], [0.5, "a"], {"a": 1}]
TABLE_KEYS = {
    "data": sorted(runspec.DATA_KEYS) + ["nope"],
    "model": ["family", "family", "position", "ties", "link", "worth_scale", "varying", "correlated", "n_types",
              "centring", "interactions", "nope"],
    "inference": ["method", "method", "seed", "chains", "warmup", "draws", "target_accept", "steps", "lr", "guide",
                  "importance", "covariance", "posterior_predictive", "log_likelihood", "progress", "nope"],
    "output": sorted(runspec.OUTPUT_KEYS) + ["nope"],
    "sensitivity": sorted(runspec.SENSITIVITY_KEYS)[:12] + ["nope"],
}
#: (table, key) -> a valid value (most generated keys take it)
GOOD = {("data", "dataset"): "baseball", ("data", "features"): ["f"], ("data", "user"): "judge",
        ("data", "a"): "left", ("data", "b"): "right", ("data", "outcome"): "win", ("data", "prompt"): "q",
        ("data", "path"): "x.csv", ("data", "user_covariates"): ["age"], ("data", "option_table"): "o.csv",
        ("data", "user_table"): "u.csv",
        ("model", "family"): "BradleyTerry", ("model", "position"): True, ("model", "ties"): False,
        ("model", "link"): "probit", ("model", "worth_scale"): 1.5, ("inference", "method"): "nuts",
        ("inference", "chains"): 2, ("inference", "seed"): 1, ("inference", "warmup"): 10,
        ("inference", "draws"): 10, ("inference", "target_accept"): 0.9, ("inference", "log_likelihood"): False,
        ("inference", "posterior_predictive"): True,
        ("output", "reference"): "x", ("output", "report_by"): "gender", ("output", "report_format"): "html",
        ("sensitivity", "estimand"): "worth", ("sensitivity", "prevalence"): 0.5, ("sensitivity", "n_grid"): 5}


@st.composite
def toml_specs(draw):
    """TOML text: tables with keys from the valid ones (and a stray), values of random types."""
    lines = []
    if draw(st.booleans()):
        lines.append(f"name = {toml_value(draw(st.sampled_from(['demo', 'demo', 'demo', 3, True])))}")
    if draw(st.integers(0, 9)) == 0:
        lines.append(f"stray = {toml_value(draw(st.sampled_from(TOML_ANY)))}")
    tables = draw(st.lists(st.sampled_from(sorted(TABLE_KEYS)), max_size=5, unique=True))
    if draw(st.integers(0, 4)):  # mostly with the two tables a spec needs
        tables = sorted(set(tables) | {"data", "model"})
    for table in tables:
        lines.append(f"[{table}]")
        for key in draw(st.lists(st.sampled_from(TABLE_KEYS[table]), max_size=4, unique=True)):
            good = GOOD.get((table, key))
            value = good if good is not None and draw(st.integers(0, 5)) else draw(st.sampled_from(TOML_ANY))
            lines.append(f"{key} = {toml_value(value)}")
    if draw(st.integers(0, 14)) == 0:
        lines.append(draw(st.sampled_from(["[data", "x = ", "= 1", "[model]\n[model]", "a = 'unterminated"])))
    return "\n".join(lines) + "\n"


@given(text=toml_specs())
@example(text="[data]\ndataset = \"baseball\"\n[model]\nfamily = \"BradleyTerry\"\n")
@example(text="[data]\n[model]\n[inference]\nmethod = [1, 2]\n")  # regression: TypeError (unhashable)
def test_run_specs(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("spec") / "spec.toml"
    path.write_text(text)
    status, out = fuzzing.attempt("run specs", runspec.load_spec, path)
    if status == "error":
        assert isinstance(out, bp.ModelError)
        assert str(path) in str(out), str(out)
        return
    assert isinstance(out, dict) and {"data", "model"} <= set(out)
    model = runspec.build_model(out)  # what a valid spec describes can be made
    inf = dict(out.get("inference", {}))
    method = inf.pop("method", "nuts")
    for key in runspec.COMMON_INFERENCE_KEYS:
        inf.pop(key, None)
    SETTINGS[method](**inf)
    assert isinstance(model, bp.models.ModelSpec)

