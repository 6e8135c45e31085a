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


def test_heterogeneity_and_sensitivity_capabilities():
    sizes = {"n_options": 5, "n_features": 0}
    assert bp.Hierarchical().group_effect_methods == ("design", "users")
    assert bp.LatentTypes().group_effect_methods == ("users",)
    for spec in (bp.BradleyTerry(), bp.Conditioned(condition="c")):
        assert spec.group_effect_methods == () and not spec.covariate_effects
    assert bp.Hierarchical().covariate_effects and bp.LatentTypes().covariate_effects
    assert bp.Hierarchical(varying=["worths"]).user_effect_sites(sizes) == {"worth": "user_worth"}
    assert bp.LatentTypes(user_deviations=True).user_effect_sites(sizes) == {}  # effects not recorded per user
    assert bp.BradleyTerry().user_effect_sites(sizes) == {}
    for spec in (bp.BradleyTerry(), bp.Hierarchical(), bp.LatentTypes()):
        assert spec.sensitivity and spec.sensitivity_support() is None
    assert not bp.Conditioned(condition="c").sensitivity
    assert "user_deviations=False" in bp.LatentTypes(user_deviations=True).sensitivity_support()


def test_latent_types_type_differences_are_the_models():
    """The public pieces of the LatentTypes likelihood (used by the sensitivity analysis)."""
    import numpy as np
    import numpyro
    import pandas as pd

    from bayespref.models import sites

    bp.config.ensure_jax()  # JAX set up as a fit would (device flags) before running JAX code here
    frame = pd.DataFrame({"a": ["x", "y", "z", "x"], "b": ["y", "z", "x", "z"], "outcome": [1, 0, 1, 1],
                          "user": ["u", "u", "v", "v"]})
    data = bp.Comparisons.from_frame(frame, user="user")
    spec = bp.LatentTypes(n_types=2, position=True)
    arrays, sizes = spec.arrays(data), spec.sizes(data)
    worth = np.array([[1.0, -0.5, -0.5], [-1.0, 0.0, 1.0]])
    values = {sites.WORTH: worth, sites.TYPE_SHARE: np.array([0.3, 0.7]), sites.POSITION: 0.25}
    with numpyro.handlers.seed(rng_seed=0), numpyro.handlers.substitute(data=values), \
            numpyro.handlers.trace() as tr:
        out = spec.type_differences(arrays, sizes)
    a, b = np.asarray(data.a), np.asarray(data.b)
    np.testing.assert_allclose(np.asarray(out["d"]), (worth[:, a] - worth[:, b]).T + 0.25, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out["log_prior"]), np.log([[0.3, 0.7]] * 2), rtol=1e-6)
    assert out["log_tie"] is None
    assert [n for n, s in tr.items() if s["type"] == "sample"] == [sites.WORTH, sites.TYPE_SHARE, sites.POSITION]


def test_no_family_names_outside_models():
    """Code outside models/ asks capabilities: no family-name branches, hasattr probes of a spec or
    private calls into one (the registry lookup of a family named in a spec file is allowed)."""
    import pathlib
    import re

    root = pathlib.Path(bp.__file__).parent
    pattern = re.compile(r"family\s*(==|!=|in\b|not in\b)|\bfam\s*(==|!=|in\b)|"
                         r"hasattr\((spec|self\.spec|model|fit\.model)\b|\._blocks\b|\bspec\._[a-z]|\.spec\._[a-z]")
    leaks = [f"{path.relative_to(root)}:{i}: {line.strip()}"
             for path in root.rglob("*.py") if "models" not in path.relative_to(root).parts
             for i, line in enumerate(path.read_text().splitlines(), 1)
             if pattern.search(line) and "FAMILIES" not in line]
    assert not leaks, "\n".join(leaks)
