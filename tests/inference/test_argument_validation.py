"""Arguments of bp.fit (the method's settings, the seed, the flags) are checked before anything is
compiled: a bad value raises a ModelError naming the argument, the value and what is allowed.

Each case runs with the preparation and the engines replaced by a function that fails the test, so
a case passes only if the check comes first.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing

import jax
import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.inference.engine import as_key
from bayespref.inference.settings import SETTINGS, LaplaceSettings, NutsSettings, SviSettings, make_settings

fit_module = importlib.import_module("bayespref.inference.fit")  # the module (bp.inference.fit is the function)

# the rows of the reliability issue's table that concern fit settings and seeds, with the message
# each must give (argument, value and the allowed range)
TABLE = [
    (dict(chains=0), "chains=0 must be a whole number >= 1"),
    (dict(chains=-1), "chains=-1 must be a whole number >= 1"),
    (dict(draws=0), "draws=0 must be a whole number >= 1"),
    (dict(draws=-5), "draws=-5 must be a whole number >= 1"),
    (dict(warmup=-5), "warmup=-5 must be a whole number >= 0"),
    (dict(max_tree_depth=0), "max_tree_depth=0 must be a whole number >= 1"),
    (dict(chains=2.5), "chains=2.5 must be a whole number >= 1"),
    (dict(method="svi", num_samples=0), "num_samples=0 must be a whole number >= 1"),
    (dict(seed=None), "seed=None must be a whole number from 0 to 4294967295 or a JAX PRNG key"),
    (dict(seed="abc"), "seed='abc' must be a whole number from 0 to 4294967295 or a JAX PRNG key"),
    (dict(seed=1.5), "seed=1.5 must be a whole number from 0 to 4294967295 or a JAX PRNG key"),
]

# further values of the same kind: bools taken for numbers, NaN / inf, strings taken for flags
MORE = [
    (dict(chains=True), "chains=True must be a whole number >= 1"),
    (dict(draws=np.float64(100.0)), "draws=np.float64(100.0) must be a whole number >= 1"),
    (dict(target_accept=1.0), "target_accept=1.0 must be a number in (0, 1)"),
    (dict(target_accept=float("nan")), "target_accept=nan must be a number in (0, 1)"),
    (dict(chain_method="threads"), "chain_method='threads' must be one of ('parallel', 'vectorized', 'sequential')"),
    (dict(progress="yes"), "progress='yes' must be True or False"),
    (dict(method="svi", lr=float("inf")), "lr=inf must be a finite number > 0"),
    (dict(method="svi", tol=-1e-4), "tol=-0.0001 must be a finite number >= 0"),
    (dict(method="svi", batch_size=0), "batch_size=0 must be a whole number >= 1 (or None)"),
    (dict(method="svi", guide="full"), "guide='full' must be one of"),
    (dict(method="laplace", covariance="full"), "covariance='full' must be one of ('auto', 'hessian', 'opg')"),
    (dict(seed=-1), "seed=-1 must be a whole number from 0 to 4294967295"),
    (dict(seed=True), "seed=True must be a whole number from 0 to 4294967295"),
    (dict(seed=2**32), "seed=4294967296 must be a whole number from 0 to 4294967295"),
    (dict(seed=np.array([1.0, 2.0])), "seed=array([1., 2.]) must be a whole number"),
    (dict(method="mcmc"), "method='mcmc' must be one of ('auto', 'nuts', 'svi', 'laplace')"),
    (dict(posterior_predictive="yes"), "posterior_predictive='yes' must be True or False"),
    (dict(log_likelihood=1), "log_likelihood=1 must be True or False"),
]


@pytest.fixture(scope="module")
def data():
    df = pd.DataFrame({"a": list("xyzxyz"), "b": list("yzxzxy"), "outcome": [1, 0, 1, 1, 0, 0]})
    return bp.Comparisons.from_frame(df)


@pytest.fixture
def nothing_compiled(monkeypatch):
    """Fail the test if fit() gets as far as preparing the model or running an engine."""
    def reached(*args, **kwargs):
        raise AssertionError("fit() prepared the model before refusing the argument")

    monkeypatch.setattr(fit_module, "_prepare", reached)
    monkeypatch.setattr(fit_module, "METHODS", {m: reached for m in fit_module.METHODS})


@pytest.mark.parametrize("kwargs, message", TABLE + MORE, ids=lambda v: repr(v) if isinstance(v, dict) else "")
def test_bad_fit_arguments_name_argument_value_and_range(data, nothing_compiled, kwargs, message):
    model = bp.Hierarchical() if kwargs.get("method") == "laplace" else bp.BradleyTerry()
    with pytest.raises(bp.ModelError) as err:
        bp.fit(model, data, **{"progress": False, **kwargs})
    assert message in str(err.value)


@pytest.mark.parametrize("bad", [None, "abc", 1.5, -1, True, 2**32, np.float32(3.0)])
def test_as_key_refuses_what_is_not_a_seed(bad):
    """as_key is the one door of seeds into JAX (fit, predict, checks, SBC, cross-validation)."""
    with pytest.raises(bp.ModelError, match=r"seed=.* must be a whole number from 0 to 4294967295 or a JAX PRNG key"):
        as_key(bad)


def test_as_key_takes_whole_numbers_and_keys():
    np.testing.assert_array_equal(as_key(np.int64(3)), jax.random.PRNGKey(3))
    np.testing.assert_array_equal(as_key(2**32 - 1), jax.random.PRNGKey(2**32 - 1))
    raw = jax.random.PRNGKey(5)
    assert as_key(raw) is raw
    typed_key = jax.random.key(5)
    assert as_key(typed_key) is typed_key
    assert as_key(jax.random.split(raw)[0]).shape == (2,)


def _bad_value_for(hint):
    """A value of the wrong type for an annotation: True for numbers, "yes" for flags, 1.5 for strings."""
    args = set(typing.get_args(hint)) or {hint}
    if args & {int, float}:
        return True
    if bool in args:
        return "yes"
    return 1.5 if str in args else None


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_every_setting_is_typed_strictly(method):
    """Every field of every settings class refuses a value of the wrong type, naming the field."""
    cls = SETTINGS[method]
    hints = typing.get_type_hints(cls)
    checked = 0
    for f in dataclasses.fields(cls):
        bad = _bad_value_for(hints[f.name])
        if bad is None:  # guide: a name or a guide object
            continue
        with pytest.raises(bp.ModelError, match=rf"^{f.name}={bad!r}"):
            make_settings(method, **{f.name: bad})
        checked += 1
    assert checked >= len(dataclasses.fields(cls)) - 1


def test_every_numeric_setting_has_a_range():
    for cls in (NutsSettings, SviSettings, LaplaceSettings):
        hints = typing.get_type_hints(cls)
        numeric = [f.name for f in dataclasses.fields(cls) if set(typing.get_args(hints[f.name]) or {hints[f.name]})
                   & {int, float}]
        assert numeric and set(numeric) <= set(cls.rules), (cls.__name__, set(numeric) - set(cls.rules))


def test_defaults_and_good_values_pass():
    assert make_settings("nuts", chains=np.int64(2), warmup=0, target_accept=0.9).chains == 2
    assert make_settings("svi", lr=1, batch_size=None, guide="mvn").lr == 1
    assert make_settings("laplace").covariance == "auto"
