"""The NUTS sampler is compiled once per model, data shape and settings, and reused."""

import jax
import numpy as np
import pytest

import bayespref as bp
from bayespref.inference import nuts as _nuts

pytestmark = pytest.mark.filterwarnings("ignore::bayespref.ConvergenceWarning")


@pytest.fixture(autouse=True)
def _no_disk_cache():
    """Compile for real: a hit in the on-disk cache would hide what these tests measure."""
    before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    yield
    jax.config.update("jax_enable_compilation_cache", before)


@pytest.fixture
def compiles():
    """Durations of the XLA compilations that happen while the test runs."""
    seen = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield seen
    jax.monitoring.unregister_event_duration_listener(listener)


def test_same_shape_refit_compiles_once(compiles):
    spec = bp.BradleyTerry(features=True)
    first = bp.simulate.bradley_terry(n_options=6, n_comparisons=150, n_features=2, seed=1).comparisons()
    second = bp.simulate.bradley_terry(n_options=6, n_comparisons=150, n_features=2, seed=2).comparisons()
    kw = dict(chains=2, warmup=60, draws=60, progress=False, log_likelihood=True)
    _nuts.clear_cache()
    builds = _nuts.BUILDS["count"]
    compiles.clear()
    f1 = bp.fit(spec, first, seed=0, **kw)
    first_compile = sum(compiles)
    assert _nuts.BUILDS["count"] == builds + 1 and not f1.info["sampler_reused"]
    compiles.clear()
    f2 = bp.fit(bp.BradleyTerry(features=True), second, seed=0, **kw)   # an equal, new spec object
    assert _nuts.BUILDS["count"] == builds + 1, "same model and data shape must reuse the compiled sampler"
    assert f2.info["sampler_reused"]
    # JAX did not compile the sampler again either (small host-side helpers may still compile)
    assert sum(compiles) < 0.2 * first_compile, (sum(compiles), first_compile)
    # the reused sampler fitted the new data, not the old
    w1 = f1.idata.posterior["weight"].mean(("chain", "draw")).values
    w2 = f2.idata.posterior["weight"].mean(("chain", "draw")).values
    assert not np.allclose(w1, w2)
    assert f2.idata.log_likelihood["y"].shape == (2, 60, 150)


@pytest.mark.slow  # four sampler compilations (~25 s); same-shape reuse stays in the default suite
def test_new_shape_or_settings_build_a_new_sampler():
    data = bp.simulate.bradley_terry(n_options=5, n_comparisons=120, seed=4).comparisons()
    bigger = bp.simulate.bradley_terry(n_options=5, n_comparisons=121, seed=4).comparisons()
    _nuts.clear_cache()
    builds = _nuts.BUILDS["count"]
    bp.fit(bp.BradleyTerry(), data, chains=2, warmup=50, draws=50, progress=False)
    bp.fit(bp.BradleyTerry(), bigger, chains=2, warmup=50, draws=50, progress=False)
    bp.fit(bp.BradleyTerry(), data, chains=2, warmup=100, draws=60, progress=False)
    bp.fit(bp.BradleyTerry(position=True), data, chains=2, warmup=50, draws=50, progress=False)
    assert _nuts.BUILDS["count"] == builds + 4


def test_same_seed_same_draws_across_cache_hits():
    # the model, data shape and settings of test_same_shape_refit_compiles_once: after it, both fits
    # reuse the sampler it compiled (run alone, the second fit reuses the first's)
    data = bp.simulate.bradley_terry(n_options=6, n_comparisons=150, n_features=2, seed=5).comparisons()
    kw = dict(chains=2, warmup=60, draws=60, progress=False, log_likelihood=True, seed=7)
    a = bp.fit(bp.BradleyTerry(features=True), data, **kw)
    b = bp.fit(bp.BradleyTerry(features=True), data, **kw)
    assert b.info["sampler_reused"]
    post_a, post_b = a.idata.posterior, b.idata.posterior
    assert set(post_a.data_vars) == set(post_b.data_vars) and "weight" in post_a.data_vars
    for name in post_a.data_vars:
        np.testing.assert_array_equal(post_a[name].values, post_b[name].values)
