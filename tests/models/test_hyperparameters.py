"""Every option of every family spec is checked when the spec is made (ModelSpec.validate_options,
driven by the family's ``rules`` table and its annotations): a bad value raises a ModelError naming
the family, the option, the value and what is allowed, before anything is compiled."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.models import BradleyTerry, Conditioned, CustomModel, Hierarchical, LatentTypes, ModelSpec

FAMILIES = [BradleyTerry, Hierarchical, LatentTypes, Conditioned]
REQUIRED = {Conditioned: {"condition": "C"}}


def _make(cls, **options):
    return cls(**{**REQUIRED.get(cls, {}), **options})


def _kinds(cls, name):
    hint = typing.get_type_hints(cls)[name]
    return set(typing.get_args(hint)) or {hint}


def _numeric_fields(cls):
    return [f.name for f in dataclasses.fields(cls) if _kinds(cls, f.name) & {int, float}]


# -- the table's row: CLI spec worth_scale = -1.0 gave a JAX traceback at fit time -------------------------
def test_negative_prior_scale_is_refused_when_the_spec_is_made():
    with pytest.raises(bp.ModelError) as err:
        BradleyTerry(worth_scale=-1.0)
    assert str(err.value) == "BradleyTerry: worth_scale=-1.0 must be a finite number > 0 (a prior scale)."


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.__name__)
def test_every_numeric_option_has_a_rule(cls):
    """Each int/float option of a family is in its rules table (a range, not just a type)."""
    missing = set(_numeric_fields(cls)) - set(cls.rules)
    assert not missing, f"{cls.__name__}: numeric options without a rule: {sorted(missing)}"


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.__name__)
def test_every_numeric_option_refuses_nan_inf_bool_and_strings(cls):
    for name in _numeric_fields(cls):
        for bad in (float("nan"), math.inf, True, "2"):
            with pytest.raises(bp.ModelError) as err:
                _make(cls, **{name: bad})
            assert f"{cls.__name__}: {name}={bad!r} must be" in str(err.value)


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.__name__)
def test_every_prior_scale_must_be_positive(cls):
    scales = [n for n in _numeric_fields(cls) if n.endswith("_scale") or n in ("concentration", "lkj_concentration")]
    assert scales
    for name in scales:
        for bad in (0.0, -1.0):
            with pytest.raises(bp.ModelError, match=rf"{cls.__name__}: {name}={bad!r} must be a finite number > 0"):
                _make(cls, **{name: bad})
        assert getattr(_make(cls, **{name: 3}), name) == 3  # an int is a number


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.__name__)
def test_every_flag_refuses_strings_and_numbers(cls):
    flags = [f.name for f in dataclasses.fields(cls) if _kinds(cls, f.name) == {bool}]
    assert "position" in flags
    for name in flags:
        for bad in ("yes", 1):
            with pytest.raises(bp.ModelError, match=rf"{cls.__name__}: {name}={bad!r} must be True or False"):
                _make(cls, **{name: bad})


@pytest.mark.parametrize("options, message", [
    (dict(n_types=0), "LatentTypes: n_types=0 must be a whole number from 1 to 7 (labels are matched over all "
                      "permutations of the types)."),
    (dict(n_types=8), "n_types=8 must be a whole number from 1 to 7"),
    (dict(n_types=2.0), "n_types=2.0 must be a whole number from 1 to 7"),
    (dict(n_types=True), "n_types=True must be a whole number from 1 to 7"),
    (dict(concentration=0), "LatentTypes: concentration=0 must be a finite number > 0."),
    (dict(user_deviations="no"), "user_deviations='no' must be True or False"),
])
def test_latent_types_options(options, message):
    with pytest.raises(bp.ModelError) as err:
        LatentTypes(**options)
    assert message in str(err.value)


@pytest.mark.parametrize("cls, options, message", [
    (Hierarchical, dict(centring=float("nan")), "Hierarchical: centring=nan must be a number in [0, 1] "
                                                "(or None) (0: non-centred, 1: centred, None: chosen from the data)."),
    (Hierarchical, dict(centring=1.5), "centring=1.5 must be a number in [0, 1]"),
    (Hierarchical, dict(tie_loc=-math.inf), "Hierarchical: tie_loc=-inf must be a finite number."),
    (Hierarchical, dict(correlated="true"), "correlated='true' must be True or False (or None)"),
    (Hierarchical, dict(features=3), "Hierarchical: features=3 (int) must be"),
    (Hierarchical, dict(interactions=["a"]), "interactions=['a'] (list) must be a table (dict) or None"),
    (BradleyTerry, dict(ties=1), "BradleyTerry: ties=1 must be one of (False, True, 'davidson', 'half')"),
    (BradleyTerry, dict(link="cauchit"), "BradleyTerry: link='cauchit' must be one of ('logit', 'probit')."),
    (BradleyTerry, dict(worths="maybe"), "worths='maybe' must be one of ('fixed', 'random', True, False) (or None)"),
    (Conditioned, dict(condition="C", weight_trim=0.0), "weight_trim=0.0 must be a number in (0, 1] (or None) "
                                                        "(a quantile)"),
    (Conditioned, dict(condition="C", propensity_ridge=-1), "propensity_ridge=-1 must be a finite number >= 0"),
    (Conditioned, dict(condition="C", pooling="full"), "pooling='full' must be one of ('partial', 'none')"),
    (Conditioned, dict(condition="C", balance="yes"), "balance='yes' must be one of"),
])
def test_named_options(cls, options, message):
    with pytest.raises(bp.ModelError) as err:
        cls(**options)
    assert message in str(err.value)


def test_good_values_and_normalisation_still_work():
    assert BradleyTerry(worths=True).worths == "fixed"
    assert Hierarchical(varying="features", centring=1).varying == ("features",)
    assert LatentTypes(n_types=np.int64(3), features=["x"]).features == ("x",)
    assert Conditioned("C", weight_trim=None, balance="weights").balance_mode == "weights"
    assert BradleyTerry(ties="half", link="probit").half_ties


def test_custom_model_options_are_checked():
    def fn(data, **_):
        return None

    with pytest.raises(bp.ModelError, match="CustomModel: link='cloglog' must be one of"):
        CustomModel(fn, link="cloglog")
    with pytest.raises(bp.ModelError, match="CustomModel: position='yes' must be True or False"):
        CustomModel(fn, position="yes")


def test_a_new_family_gets_its_options_checked_by_annotation_and_at_fit():
    """A family outside the package inherits the shared rules and the annotation checks; the check
    runs again before fitting, so a spec changed after it was made is still refused."""

    @dataclasses.dataclass(frozen=True)
    class Toy(ModelSpec):
        spread: float = 1.0
        draws_per_user: int = 2
        position: bool = False
        worth_scale: float = 2.0
        label: str = "toy"
        rules: ClassVar[dict] = dict(ModelSpec.rules)

    with pytest.raises(bp.ModelError, match=r"Toy: spread='wide' \(str\) must be a number\."):
        Toy(spread="wide")
    with pytest.raises(bp.ModelError, match=r"Toy: draws_per_user=2.0 \(float\) must be a whole number\."):
        Toy(draws_per_user=2.0)
    with pytest.raises(bp.ModelError, match=r"Toy: label=3 \(int\) must be a string\."):
        Toy(label=3)
    with pytest.raises(bp.ModelError, match="Toy: worth_scale=-2.0 must be a finite number > 0"):
        Toy(worth_scale=-2.0)
    toy = Toy()
    object.__setattr__(toy, "position", "yes")
    data = bp.Comparisons.from_frame(pd.DataFrame({"a": ["x", "y"], "b": ["y", "x"], "outcome": [1, 0]}))
    with pytest.raises(bp.ModelError, match="Toy: position='yes' must be True or False"):
        toy.check(data)


def test_saved_specs_round_trip():
    for cls in FAMILIES:
        spec = _make(cls)
        assert bp.models.spec_from_dict(spec.to_dict()) == spec
