"""The vectorised R-hat and ESS equal ArviZ's, parameter by parameter, on chains built to exercise
every branch of the estimators (strong and negative autocorrelation, ties, constants, stuck chains,
NaN, very short chains), and they flag what they must flag."""

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayespref.inference import rank_diagnostics as rd


def _ar1(rng, n_par, chains, draws, phi):
    """AR(1) chains with coefficient phi[p] for parameter p (negative: alternating draws)."""
    e = rng.normal(size=(n_par, chains, draws))
    x = np.zeros_like(e)
    for t in range(draws):
        x[..., t] = e[..., t] + (phi[:, None] * x[..., t - 1] if t else 0.0)
    return x


def _awkward(chains, draws, seed=0):
    rng = np.random.default_rng(seed)
    x = _ar1(rng, 40, chains, draws, np.linspace(-0.6, 0.995, 40))
    x[0] = 2.5                                   # constant
    x[1] = np.round(x[1])                        # many ties
    x[2] += np.arange(chains)[:, None] * 3.0     # chains stuck in different places
    x[3] = np.exp(2 * x[3])                      # heavy right tail
    x[4] = (x[4] > 0).astype(float)              # two values
    if draws > 10:
        x[5, 0, 3] = np.nan
    return xr.Dataset({"theta": (("chain", "draw", "k"), x.transpose(1, 2, 0)),
                       "sigma": (("chain", "draw"), np.abs(x[6]))})


@pytest.mark.parametrize("chains, draws", [(4, 1000), (4, 201), (2, 7), (3, 5), (4, 4), (1, 60), (4, 3), (2, 1)])
def test_equal_to_arviz_for_every_parameter(chains, draws):
    ds = _awkward(chains, draws)
    with np.errstate(all="ignore"):
        ours = rd.diagnostics(ds)
        theirs = (az.rhat(ds), az.ess(ds, method="bulk"), az.ess(ds, method="tail"))
    for mine, ref in zip(ours, theirs):
        ref = ref.dataset if hasattr(ref, "dataset") else ref
        for name in ds.data_vars:
            assert mine[name].dims == ref[name].dims
            np.testing.assert_allclose(mine[name].values, ref[name].values, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_float32_draws_equal_arviz_too():
    ds = _awkward(4, 300, seed=2).astype("float32")
    ours = rd.diagnostics(ds)
    with np.errstate(all="ignore"):
        theirs = (az.rhat(ds), az.ess(ds, method="bulk"), az.ess(ds, method="tail"))
    for mine, ref in zip(ours, theirs):
        ref = ref.dataset if hasattr(ref, "dataset") else ref
        for name in ds.data_vars:
            # within float32 rounding: ArviZ keeps some intermediate sums of float32 draws in float32
            np.testing.assert_allclose(mine[name].values, ref[name].values, rtol=1e-6, atol=0, equal_nan=True)


def test_flags_stuck_chains_and_autocorrelation():
    ds = _awkward(4, 1000)
    rhat, bulk, _ = rd.diagnostics(ds)
    assert float(rhat["theta"][2]) > 1.5           # chains 3 apart
    assert float(rhat["theta"][10]) < 1.01         # well-mixed AR(1)
    assert float(bulk["theta"][39]) < 100 < float(bulk["theta"][10])   # phi 0.995 against ~0
    assert np.isnan(float(rhat["theta"][5])) and np.isnan(float(bulk["theta"][5]))   # NaN draw


def test_independent_draws_have_ess_near_their_number():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4, 500))
    ess = rd.ess_bulk(x)
    # iid: ESS ~ 2000 with a relative SD of a few percent per parameter
    assert 1800 < np.median(ess) < 2200


def test_empty_dataset():
    empty = rd.diagnostics(xr.Dataset())
    assert all(len(d.data_vars) == 0 for d in empty)
