"""Model families: spec objects plus pure NumPyro functions of the encoded arrays."""

from .base import CustomModel, ModelSpec
from .bradley_terry import BradleyTerry
from .conditioned import Conditioned
from .hierarchical import Hierarchical
from .latent_types import LatentTypes

FAMILIES = {cls.family: cls for cls in (BradleyTerry, Hierarchical, LatentTypes, Conditioned)}


def spec_from_dict(d: dict) -> ModelSpec:
    """Rebuild a spec saved with :meth:`ModelSpec.to_dict` (custom models cannot be rebuilt)."""
    from ..errors import ModelError

    d = dict(d)
    family = d.pop("family", None)
    if family not in FAMILIES:
        raise ModelError(
            f"Unknown model family {family!r}; known: {sorted(FAMILIES)}. Custom NumPyro models are not "
            "saved with the fit: pass the CustomModel again to load_fit(path, model=...)."
        )
    return FAMILIES[family](**d)


__all__ = ["FAMILIES", "BradleyTerry", "Conditioned", "CustomModel", "Hierarchical", "LatentTypes", "ModelSpec", "spec_from_dict"]
