"""The capability interface of model specs: code outside models/ asks what a family can do."""

import bayespref as bp


def test_only_latent_types_declare_types():
    assert bp.LatentTypes(n_types=2).has_types
    for spec in (bp.BradleyTerry(), bp.Hierarchical(), bp.Conditioned(condition="c")):
        assert not spec.has_types


def test_effect_blocks_name_user_level_effects():
    assert bp.BradleyTerry().effect_blocks(5, 2) is None
    blocks = dict(bp.Hierarchical(varying=["worths"]).effect_blocks(5, 0))
    assert blocks == {"worth": 5}
