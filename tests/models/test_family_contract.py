"""A new model family is one file in ``models/``: the layers above ask its capabilities, never its name.

Two toy families are defined here, as a user of the package would, and run through fitting,
prediction, saving and loading, the checks, LOO, the heterogeneity analysis and the sensitivity
analysis, with nothing changed outside the spec:

* ``ToyPooledBT``: pooled Bradley-Terry whose worths have a learned scale (a hierarchical prior on
  the worths instead of BradleyTerry's fixed one). Declares nothing beyond the defaults.
* ``ToyUserWorths``: every user has their own worths, partially pooled around population worths;
  declares ``effect_blocks`` (the worth block), ``group_effect_methods=("users",)`` and
  ``sensitivity``, and records the users' worths under the site the package reads
  (``sites.user("worth")``).

The families are registered (``FAMILIES``, so that saved fits load) for this module only.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest

import bayespref as bp
from bayespref import heterogeneity as het
from bayespref import sensitivity as sa
from bayespref.models import FAMILIES, sites
from bayespref.models.base import ModelSpec, comparison_plate, take
from bayespref.models.likelihood import observe

TINY = dict(chains=1, warmup=100, draws=100, progress=False)
SMALL = dict(chains=2, warmup=150, draws=150, progress=False)


def _define_families():
    @dataclasses.dataclass(frozen=True)
    class ToyPooledBT(ModelSpec):
        """Pooled BT: worth ~ ZeroSumNormal(s), s ~ HalfNormal(scale_prior)."""

        scale_prior: float = 2.0

        family: ClassVar[str] = "ToyPooledBT"

        def model(self, data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None):
            s = numpyro.sample("worth_sd", dist.HalfNormal(self.scale_prior))
            worth = numpyro.sample(sites.WORTH, dist.ZeroSumNormal(s, event_shape=(n_options,)))
            with comparison_plate(data["a"].shape[0], batch):
                d_ = take(data, batch)
                observe(worth[d_["a"]] - worth[d_["b"]], d_["y"], predict=predict)

        def dims(self, sizes):
            return {sites.WORTH: ["option"]}

        def summary_vars(self, sizes):
            return [sites.WORTH, "worth_sd"]

    @dataclasses.dataclass(frozen=True)
    class ToyUserWorths(ModelSpec):
        """User worths v_u = centre(worth + sd * z_u), z_u ~ N(0, I); new users get a fresh z."""

        worth_scale: float = 2.0
        sd_scale: float = 1.0

        family: ClassVar[str] = "ToyUserWorths"
        group_effect_methods: ClassVar[tuple[str, ...]] = ("users",)
        sensitivity: ClassVar[bool] = True

        def check(self, data):
            super().check(data)
            if data.n_users < 2:
                raise bp.ModelError("ToyUserWorths needs several users.")

        def effect_blocks(self, n_options, n_features):
            return [(sites.WORTH, n_options)]

        def model(self, data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None):
            worth = numpyro.sample(sites.WORTH, dist.ZeroSumNormal(self.worth_scale, event_shape=(n_options,)))
            sd = numpyro.sample("sd_user", dist.HalfNormal(self.sd_scale))
            with numpyro.plate("user", n_users, dim=-2), numpyro.plate("option", n_options, dim=-1):
                z = numpyro.sample("z_user", dist.Normal(0.0, 1.0))
            v = worth + sd * z
            v = numpyro.deterministic(sites.user(sites.WORTH), v - v.mean(-1, keepdims=True))
            with comparison_plate(data["a"].shape[0], batch):
                d_ = take(data, batch)
                u = d_["user"]
                rows = v[jnp.maximum(u, 0)]
                if predict:  # users not seen in training: population worths plus a fresh deviation
                    z_new = numpyro.sample("z_new", dist.Normal(0.0, 1.0).expand([n_options]).to_event(1))
                    new = worth + sd * z_new
                    rows = jnp.where((u >= 0)[:, None], rows, new - new.mean(-1, keepdims=True))
                n = jnp.arange(u.shape[0])
                observe(rows[n, d_["a"]] - rows[n, d_["b"]], d_["y"], predict=predict)

        def dims(self, sizes):
            return {sites.WORTH: ["option"], "z_user": ["user", "option"],
                    sites.user(sites.WORTH): ["user", "option"]}

        def summary_vars(self, sizes):
            return [sites.WORTH, "sd_user"]

    return ToyPooledBT, ToyUserWorths


@pytest.fixture(scope="module")
def toys():
    before = dict(FAMILIES)
    classes = _define_families()
    assert {c.family for c in classes} <= set(FAMILIES)  # registered by __init_subclass__
    yield classes
    FAMILIES.clear()
    FAMILIES.update(before)


def _quiet_fit(spec, data, settings, seed=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # R-hat of a single chain is NaN
        return bp.fit(spec, data, seed=seed, **settings)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# -- the pooled toy on the baseball data ------------------------------------------------------------
@pytest.fixture(scope="module")
def pooled(toys):
    ToyPooledBT, _ = toys
    data = bp.load_dataset("baseball").comparisons()
    return data, _quiet_fit(ToyPooledBT(), data, TINY), _quiet_fit(bp.BradleyTerry(), data, TINY)


def test_defaults_a_new_family_inherits(toys):
    ToyPooledBT, ToyUserWorths = toys
    spec = ToyPooledBT()
    sizes = {"n_options": 4, "n_features": 0}
    assert not spec.has_types and spec.group_effect_methods == () and not spec.covariate_effects
    assert not spec.sensitivity and spec.sensitivity_support() is None
    assert spec.effect_blocks(4, 0) is None and spec.user_effect_sites(sizes) == {}
    assert spec.methods == ("nuts", "svi") and spec.sampler_sites == ()
    assert ToyUserWorths().user_effect_sites(sizes) == {"worth": "user_worth"}


def test_pooled_toy_recovers_bradley_terry_worths(pooled):
    _, toy, bt = pooled
    assert toy.model.family == "ToyPooledBT" and "ToyPooledBT" in repr(toy)
    w_toy, w_bt = toy.worths(), bt.worths()
    sd = np.sqrt(w_toy["sd"] ** 2 + w_bt["sd"] ** 2)
    assert np.all(np.abs(w_toy["mean"] - w_bt["mean"]) < 3 * sd), (w_toy, w_bt)
    assert np.corrcoef(w_toy["mean"], w_bt["mean"])[0, 1] > 0.95
    # the worths were learned (not the prior's zeros): the best and worst teams are far apart
    assert w_toy["mean"].max() - w_toy["mean"].min() > 4 * w_toy["sd"].mean()
    assert w_toy["rank"].idxmin() == w_bt["rank"].idxmin()
    summ = toy.summary()
    assert {"worth_sd"} <= set(summ.index) and any(str(i).startswith("worth[") for i in summ.index)


def test_pooled_toy_predicts_saves_and_loads(pooled, tmp_path):
    data, toy, _ = pooled
    new = data.frame.iloc[[0, 50, 100, 200]][["a", "b"]]
    pred = toy.predict(new)
    post = toy.idata.posterior[sites.WORTH]
    want = [float(_sigmoid(post.sel(option=a) - post.sel(option=b)).mean()) for a, b in zip(new["a"], new["b"])]
    np.testing.assert_allclose(pred["p_a"].to_numpy(), want, rtol=1e-5)
    assert np.all((pred["p_a_lower"] <= pred["p_a"]) & (pred["p_a"] <= pred["p_a_upper"]))

    path = toy.save(tmp_path / "toy.nc")
    back = bp.load_fit(path)
    assert type(back.model) is type(toy.model) and back.model == toy.model
    np.testing.assert_array_equal(back.idata.posterior[sites.WORTH].values, post.values)
    np.testing.assert_allclose(back.predict(new)["p_a"].to_numpy(), pred["p_a"].to_numpy())


def test_pooled_toy_checks_and_loo(pooled):
    _, toy, bt = pooled
    checks = bp.checks.check_all(toy)
    assert {"win_rates", "calibration", "position_flip", "intransitivity"} <= set(checks)
    table = bp.checks.summary(checks)
    assert table["p_value"].between(0, 1).all()
    # a well-fitting model: the observed win rate of each pair lies in its predictive interval mostly
    wr = checks["win_rates"].to_frame()
    assert ((wr["observed"] >= wr["lower"] - 1e-9) & (wr["observed"] <= wr["upper"] + 1e-9)).mean() > 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt, lb = bp.checks.loo(toy, refit=False), bp.checks.loo(bt, refit=False)
    assert lt.n_data_points == toy.data.n_comparisons
    # the same model up to the worths' prior: nearly the same predictive accuracy
    assert abs(lt.elpd - lb.elpd) < 2.0 + 0.5 * lb.se, (lt.elpd, lb.elpd)
    report = bp.checks.convergence(toy)
    assert any(str(p).startswith("worth[") for p in report.table.index)


def test_pooled_toy_gets_clear_errors_from_the_optional_analyses(pooled):
    data, toy, _ = pooled
    with pytest.raises(bp.ModelError, match=r"needs a Hierarchical or LatentTypes.*fit; this fit is ToyPooledBT"):
        het.group_effects(toy, "group")
    with pytest.raises(bp.ModelError, match="this fit is ToyPooledBT"):
        het.variance_shares(toy)
    with pytest.raises(bp.ModelError, match="this fit is ToyPooledBT"):
        het.membership_by_group(toy, "group")
    with pytest.raises(bp.ModelError, match="ToyPooledBT has no user types"):
        toy.membership()
    with pytest.raises(bp.ModelError, match=r"supports BradleyTerry, Hierarchical.*not ToyPooledBT"):
        sa.grid(toy, sa.preference(str(data.options[0]), str(data.options[1])))


# -- the toy with user-level worths on simulated groups of users ------------------------------------
OPTIONS = 6
BASE = np.array([1.0, 0.6, 0.2, -0.2, -0.6, -1.0])
SHIFT = np.array([-2.0, 0.0, 0.0, 0.0, 2.0, 0.0])  # group B ranks o4 above o0; group A the reverse


def _user_worth_data(n_users=40, per_user=20, seed=7):
    rng = np.random.default_rng(seed)
    g = np.arange(n_users) % 2
    W = BASE + g[:, None] * SHIFT + 0.3 * rng.normal(size=(n_users, OPTIONS))
    user = np.repeat(np.arange(n_users), per_user)
    a = rng.integers(0, OPTIONS, user.size)
    b = (a + rng.integers(1, OPTIONS, user.size)) % OPTIONS
    y = (rng.random(user.size) < _sigmoid(W[user, a] - W[user, b])).astype(float)
    labels = np.array([f"o{i}" for i in range(OPTIONS)])
    ulabels = np.array([f"u{i:02d}" for i in range(n_users)])
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": y, "user": ulabels[user]})
    users = pd.DataFrame({"group": np.where(g == 1, "B", "A")}, index=pd.Index(ulabels, name="user"))
    return bp.Comparisons.from_frame(frame, user="user", user_covariates=users)


@pytest.fixture(scope="module")
def users_fit(toys):
    _, ToyUserWorths = toys
    return _quiet_fit(ToyUserWorths(), _user_worth_data(), SMALL, seed=3)


def test_user_level_toy_group_effects_average_its_users(users_fit):
    fit = users_fit
    eff = het.group_effects(fit, "group")
    assert eff.attrs["method"] == "users" and eff.attrs["family"] == "ToyUserWorths"
    assert set(eff.data_vars) == {"worth"} and list(eff["n_users"].values) == [20, 20]
    # the group level is the average of the group's users' (centred) worths, draw by draw
    uw = fit.idata.posterior[sites.user(sites.WORTH)]
    groups = fit.data.user_table["group"].reindex(uw["user"].values).to_numpy()
    for label in ("A", "B"):
        manual = uw.isel(user=np.flatnonzero(groups == label)).mean("user")
        manual = manual - manual.mean("option")
        np.testing.assert_allclose(eff["worth"].sel(group=label).transpose(*manual.dims).values, manual.values,
                                   atol=1e-5)
    # the simulated reversal: B prefers o4 to o0, A the opposite
    c = het.contrast(eff, "B", "A")
    assert c.loc[("worth", "o4"), "lower"] > 0 and c.loc[("worth", "o0"), "upper"] < 0, c
    with pytest.raises(bp.ModelError, match="method='design' is for Hierarchical fits; ToyUserWorths groups"):
        het.group_effects(fit, "group", method="design")
    with pytest.raises(bp.ModelError, match="Hierarchical fit; this fit is ToyUserWorths"):
        het.variance_shares(fit)


def test_user_level_toy_predicts_known_and_new_users(users_fit, tmp_path):
    fit = users_fit
    new = pd.DataFrame({"a": ["o0", "o0", "o0"], "b": ["o4", "o4", "o4"], "user": ["u00", "u01", "someone new"]})
    pred = fit.predict(new, user_covariates=pd.DataFrame({"group": ["A"]}, index=["someone new"]))
    uw = fit.idata.posterior[sites.user(sites.WORTH)]
    for i, u in enumerate(["u00", "u01"]):
        want = float(_sigmoid(uw.sel(user=u, option="o0") - uw.sel(user=u, option="o4")).mean())
        assert pred["p_a"].iloc[i] == pytest.approx(want, rel=1e-5)
    assert pred["p_a"].iloc[0] > 0.5 > pred["p_a"].iloc[1]  # u00 is in group A, u01 in group B
    # a new user is predicted at the population level: wider than a known user's interval
    width = pred["p_a_upper"] - pred["p_a_lower"]
    assert width.iloc[2] > width.iloc[0]
    # diagnostics and the convergence report include each user's worths (user_effect_sites)
    report = bp.checks.convergence(fit)
    assert any(str(p).startswith("user_worth[") for p in report.table.index)
    back = bp.load_fit(fit.save(tmp_path / "users.nc"))
    assert back.model == fit.model
    np.testing.assert_allclose(het.group_effects(back, "group")["worth"].values,
                               het.group_effects(fit, "group")["worth"].values)


def test_user_level_toy_checks_by_group_and_loo(users_fit):
    fit = users_fit
    checks = bp.checks.check_all(fit, by="group")
    assert "user_agreement" in checks
    wr = checks["win_rates"].to_frame()
    assert set(wr.index.get_level_values(0)) == {"A", "B"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bp.checks.loo(fit, refit=False)
    assert res.n_data_points == fit.data.n_comparisons
    assert -fit.data.n_comparisons * math.log(2) < res.elpd < 0  # better than a coin


@pytest.mark.slow  # the grid's programs compiled for the toy family (~35 s; default-suite budget)
@pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning")  # 150 steps: the contract, not accuracy
def test_user_level_toy_sensitivity(users_fit):
    """The declared ``sensitivity``: the estimand is read from the toy's ``worth`` site, and the
    augmented model at gamma = 0 is the fitted model."""
    fit = users_fit
    res = sa.grid(fit, sa.preference("o0", "o4"), gamma=[0.0, 1.5], delta=[0.0, 1.5], steps=150, warm_steps=300,
                  num_samples=100, anchors=None, benchmark=False)
    w = fit.idata.posterior[sites.WORTH]
    want = _sigmoid((w.sel(option="o0") - w.sel(option="o4")).values.reshape(-1))
    np.testing.assert_allclose(res.reference, want, rtol=1e-5)
    assert res.naive()["mean"] == pytest.approx(want.mean(), rel=1e-5)
    assert np.all(np.isfinite(res.draws))
