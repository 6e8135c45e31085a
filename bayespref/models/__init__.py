"""Model families: spec objects plus pure NumPyro functions of the encoded arrays.

A family is one file here: a :class:`ModelSpec` subclass with a ``family`` name (which registers it
in :data:`FAMILIES`, so that saved fits of it load) and the capabilities it declares
(``methods``, ``sampler_sites``, ``has_types``, ``effect_blocks``, ``user_effect_sites``,
``group_effect_methods``, ``covariate_effects``, ``sensitivity``, ...; documented on
:class:`ModelSpec`, with defaults a new family inherits). Code outside ``models/`` asks these,
never the family name, and reads the posterior by the site names of :mod:`bayespref.models.sites`.
``tests/models/test_family_contract.py`` defines two families outside the package and runs them through
fitting, prediction, saving, the checks and the analyses.
"""

from bayespref.errors import ModelError
from bayespref.models import sites
from bayespref.models.base import FAMILIES, CustomModel, ModelSpec
from bayespref.models.bradley_terry import BradleyTerry
from bayespref.models.conditioned import Conditioned
from bayespref.models.hierarchical import Hierarchical
from bayespref.models.latent_types import LatentTypes


def spec_from_dict(d: dict) -> ModelSpec:
    """Rebuild a spec saved with :meth:`ModelSpec.to_dict` (custom models cannot be rebuilt)."""
    d = dict(d)
    family = d.pop("family", None)
    if family not in FAMILIES:
        raise ModelError(
            f"Unknown model family {family!r}; known: {sorted(FAMILIES)}. Custom NumPyro models are not "
            "saved with the fit: pass the CustomModel again to load_fit(path, model=...)."
        )
    return FAMILIES[family](**d)


def as_spec(model) -> ModelSpec:
    """A spec from a spec, a spec class (its defaults) or a NumPyro function (:class:`CustomModel`)."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, type) and issubclass(model, ModelSpec):
        return model()
    if callable(model):
        return CustomModel(model)
    raise ModelError(f"`model` must be a bayespref model spec or a NumPyro function, got {type(model).__name__}.")


__all__ = ["FAMILIES", "BradleyTerry", "Conditioned", "CustomModel", "Hierarchical", "LatentTypes", "ModelSpec",
           "as_spec", "sites", "spec_from_dict"]
