r"""Sensitivity analysis for an unobserved binary user-level confounder.

A conclusion drawn from preference data ("group B weighs conciseness more than group A", "feature f
raises preference") assumes that nothing unmeasured drives both what a user is exposed to (their
group, the prompts and features they see) and how they judge. This module asks how strong such a
confounder would have to be to overturn the conclusion, in the model's own terms.

The confounder
--------------
Each user u has a hidden binary :math:`U_u`. It is tied to the user's exposure :math:`e_u` (a group
indicator, or how much of a feature the user's comparisons show) by the sensitivity parameter
:math:`\delta`, and shifts the user's preference along the estimand's direction by :math:`\gamma`:

.. math::

    \operatorname{logit} P(U_u = 1 \mid e_u) = \operatorname{logit}(p) + \delta\, \tilde e_u, \qquad
    \operatorname{logit} P(a_n \succ b_n \mid U) = d_n(\theta) + \gamma\, U_{u_n} s_n,

where :math:`d_n(\theta)` is the fitted model's reward difference, :math:`s_n` the comparison's
coordinate along the target effect (the difference of the target feature, or of the target option's
indicator) and :math:`\tilde e_u` the exposure, centred (left in 0/1 units when binary, so
:math:`\delta` is the log odds ratio of U between the two exposure groups; standardised otherwise).
Both :math:`\gamma` and :math:`\delta` are log odds ratios: :math:`\gamma` of the preference, for
U = 1 against U = 0, and :math:`\delta` of U, per unit of exposure. ``prevalence`` is p. U is summed
out exactly, user by user,

.. math::

    \log p(y_u \mid \theta, \gamma, \delta) = \log \sum_{k \in \{0, 1\}} P(U_u = k \mid e_u)
        \prod_{n \in u} p(y_n \mid d_n(\theta) + \gamma k s_n),

(for :class:`~bayespref.LatentTypes` jointly with the user's type), so the augmented model is an
ordinary NumPyro model with continuous parameters; :math:`\gamma = 0` gives back the fitted model.
With (γ, δ) fixed the estimand is identified; the data say nothing about (γ, δ) themselves
(McCandless, Gustafson & Levy 2007).

Two modes
---------
* :func:`grid`: the estimand over a grid of (γ, δ). The augmented model is fitted at every grid
  point at once: stochastic variational inference (NumPyro ``AutoNormal``) vectorised over the grid
  (``jax.vmap`` over chunks of points, one compilation), each point warm-started from the fit at
  γ = 0 and run with the same random numbers (common random numbers, so differences between points
  are not noise). The variational fits give each point's shift and spread of the estimand relative to
  γ = 0; these are applied to the posterior draws of the reference fit (location-scale transport,
  see :func:`grid`). ``method="nuts"`` refits NUTS at every point instead (exact, slow: use it on a
  few points to check the fast mode).
* :func:`prior`: priors on (γ, δ) (McCandless-Gustafson), one NUTS fit of the augmented model; the
  posterior of the estimand integrates over plausible confounding.

Estimands (:func:`group_contrast`, :func:`feature_effect`, :func:`preference`) and summaries
(:meth:`GridSensitivity.tipping_point`, :meth:`GridSensitivity.robustness_value`,
:meth:`GridSensitivity.benchmarks`, :meth:`GridSensitivity.evalue`) are described where defined.

Examples
--------
>>> import bayespref as bp
>>> from bayespref import sensitivity as sa
>>> sim = sa.simulate_confounded(n_users=100, seed=1)
>>> fit = bp.fit(bp.Hierarchical(covariates=["group"]), sim.comparisons(), progress=False)  # doctest: +SKIP
>>> res = sa.grid(fit, sa.group_contrast("group[B]", "x0"))                                 # doctest: +SKIP
>>> res.tipping_point(); res.plot_contour()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import numpy as np
import pandas as pd

from . import _jax  # noqa: F401  (JAX start-up settings)
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import xarray as xr
from jax.scipy.special import logsumexp
from numpyro import handlers
from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO

from .errors import ConvergenceWarning, DataError, FitError, ModelError
from .infer import SviSettings, as_key, run_svi
from .models.likelihood import OBS_SITE, WinFraction

ESTIMANDS = ("group_contrast", "feature_effect", "preference")


# ---------------------------------------------------------------------------------------------------
# estimands
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Estimand:
    """What the sensitivity analysis is about. Build it with :func:`group_contrast`,
    :func:`feature_effect` or :func:`preference`."""

    kind: str
    covariate: str | None = None
    effect: str | None = None
    reference: str | None = None
    a: str | None = None
    b: str | None = None
    group: dict | None = None

    @property
    def null(self) -> float:
        """The value meaning "no effect": 0, or 0.5 for a preference probability."""
        return 0.5 if self.kind == "preference" else 0.0

    @property
    def label(self) -> str:
        if self.kind == "group_contrast":
            ref = f" - {self.reference}" if self.reference is not None else ""
            return f"effect of {self.covariate} on {self.effect}{ref}"
        if self.kind == "feature_effect":
            return f"weight of {self.effect} (population average)"
        grp = "" if not self.group else " for " + ", ".join(f"{k}={v}" for k, v in self.group.items())
        return f"P({self.a} preferred to {self.b}){grp}"

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def group_contrast(covariate: str, effect: str, reference: str | None = None) -> Estimand:
    r"""The effect of a user covariate (a group) on a feature weight or an option's worth.

    For :class:`~bayespref.Hierarchical` fits this is the group coefficient :math:`B_{c,e}` (the
    difference between the group and the reference level, other covariates and U held fixed); with
    ``reference`` (an option) it is :math:`B_{c,e} - B_{c,\text{ref}}`. For
    :class:`~bayespref.LatentTypes` fits with covariates it is the difference in the
    membership-weighted effect, :math:`\sum_k (\pi_k(c^{1}) - \pi_k(c^{0})) v_{k,e}`, with
    :math:`c^1, c^0` the average user's covariates with ``covariate`` set to 1 and 0. The confounder
    shifts the same effect (a weight: :math:`s_n = x_{a_n,e} - x_{b_n,e}`; a worth: the option's
    indicator difference), and its default exposure is the covariate itself.

    Parameters
    ----------
    covariate : str
        A design column of the user covariates, e.g. ``"group[B]"`` (see ``data.covariate_names``).
    effect : str
        A feature name (a weight) or an option label (a worth).
    reference : str, optional
        For worths: the option the worth is measured against (default: the average option).
    """
    return Estimand("group_contrast", covariate=str(covariate), effect=str(effect),
                    reference=None if reference is None else str(reference))


def feature_effect(feature: str) -> Estimand:
    r"""The population-average weight of a feature (its AMCE on the logit scale).

    With U, users with U = 1 weigh the feature by :math:`\gamma` more, so the population-average
    weight is :math:`\bar w_f + \gamma \bar P(U = 1)` where :math:`\bar w_f` is the weight of U = 0
    users averaged over the covariates (and types) of the training users and :math:`\bar P(U=1)`
    the average over users of :math:`P(U_u = 1 \mid e_u)`. For a linear utility this is the average
    marginal component effect of the feature on the logit scale. Default exposure: how much the
    user's comparisons vary in the feature (mean of :math:`s_n^2` per user, standardised).
    """
    return Estimand("feature_effect", effect=str(feature))


def preference(a: str, b: str, group: dict | None = None) -> Estimand:
    r"""P(option ``a`` preferred to ``b``) for a target group, standardised over U.

    .. math::

        P_g(a \succ b) = (1 - \bar P)\, \sigma(\Delta_g) + \bar P\, \sigma(\Delta_g + \gamma),

    with :math:`\Delta_g` the reward difference of a typical user of group g (covariates set by
    ``group``, others at the training users' average; no position effect) at U = 0 and
    :math:`\bar P` the population share of U = 1: the group's preference net of how the group differs
    in U from everyone else. U shifts the a-versus-b logit by :math:`\gamma`. Default exposure: the
    indicator of the target group (without ``group``: the users' exposure to the pair). The null
    value is 0.5.

    Parameters
    ----------
    a, b : str
        Option labels.
    group : dict, optional
        Covariate values of the target group, e.g. ``{"gender": "male"}`` (categorical) or
        ``{"age": 30}`` (numeric).
    """
    return Estimand("preference", a=str(a), b=str(b), group=dict(group) if group else None)


def _estimand_from(obj) -> Estimand:
    if isinstance(obj, Estimand):
        return obj
    if isinstance(obj, dict):
        d = dict(obj)
        kind = d.pop("estimand", d.pop("kind", None))
        if kind not in ESTIMANDS:
            raise ModelError(f"estimand={kind!r}: choose from {ESTIMANDS}.")
        try:
            if kind == "group_contrast":
                return group_contrast(d.pop("covariate"), d.pop("effect"), d.pop("reference", None))
            if kind == "feature_effect":
                return feature_effect(d.pop("feature", d.pop("effect", None)))
            return preference(d.pop("a"), d.pop("b"), d.pop("group", None))
        except KeyError as exc:
            raise ModelError(f"estimand {kind!r} needs the key {exc.args[0]!r}.") from None
    raise ModelError(f"estimand must be built with group_contrast(), feature_effect() or preference(), "
                     f"got {type(obj).__name__}.")


# ---------------------------------------------------------------------------------------------------
# the problem: arrays of the augmented model and the estimand as a function of one posterior draw
# ---------------------------------------------------------------------------------------------------
class _Problem:
    """Everything the augmented model and the estimand need, checked once."""

    def __init__(self, fit, estimand: Estimand, exposure=None, prevalence: float = 0.5):
        self.fit, self.spec, self.data, self.est = fit, fit.model, fit.data, estimand
        family = self.spec.family
        if family not in ("BradleyTerry", "Hierarchical", "LatentTypes", "custom"):
            raise ModelError(f"Sensitivity analysis supports BradleyTerry, Hierarchical and LatentTypes fits "
                             f"(and custom models with their site names), not {family}.")
        if getattr(self.spec, "link", "logit") != "logit":
            raise ModelError("Sensitivity analysis needs link='logit' (gamma is a log odds ratio of the "
                             "preference); refit with the logit link.")
        if self.data.n_users < 2:
            raise DataError("The confounder is per user, but the data have a single user; give "
                            "Comparisons.from_frame(user=...) the annotator column.")
        if not 0 < prevalence < 1:
            raise ModelError(f"prevalence={prevalence}: the share of users with U = 1 must lie in (0, 1).")
        if family == "LatentTypes" and self.spec.user_deviations:
            raise ModelError("Sensitivity analysis for LatentTypes supports user_deviations=False only.")
        self.types = family == "LatentTypes"
        self.features = list(self.spec.feature_names(self.data))
        self.covariates = list(self.spec.covariate_names(self.data))
        self.options = [str(o) for o in self.data.options]
        self.sizes = self.spec.sizes(self.data)
        self.arrays = self.spec.arrays(self.data)
        cov_all = np.asarray(self.data.covariates, dtype=float).reshape(self.data.n_users, -1)
        cidx = [list(self.data.covariate_names).index(c) for c in self.covariates]
        self.cov = cov_all[:, cidx]
        users = np.asarray(self.data.user)
        self.active = np.unique(users[users >= 0])
        self.cbar = self.cov[self.active].mean(0) if self.cov.shape[1] else np.zeros(0)
        self.prevalence = float(prevalence)
        self._check_estimand()
        self.shift = self._shift()
        self.exposure, self.exposure_name, self.binary = self._exposure(exposure)
        self.arrays = {**self.arrays, "sens_shift": jnp.asarray(self.shift, dtype=jnp.float32),
                       "sens_exposure": jnp.asarray(self.exposure, dtype=jnp.float32),
                       "sens_logit_p": jnp.asarray(math.log(prevalence / (1 - prevalence)), dtype=jnp.float32)}

    # -- checks ------------------------------------------------------------------------------------
    def _check_estimand(self):
        e, fam = self.est, self.spec.family
        if e.kind == "group_contrast":
            if fam == "BradleyTerry" or not self.covariates:
                raise ModelError(f"A group contrast needs a model with user covariates (Hierarchical or LatentTypes "
                                 f"with covariates); this {fam} fit has none.")
            if e.covariate not in self.covariates:
                raise ModelError(f"covariate={e.covariate!r} is not a covariate of the model; available: "
                                 f"{self.covariates}.")
            self._effect_kind(e.effect, e.reference)
            if fam in ("Hierarchical", "custom"):
                post = self.fit.idata.posterior
                var = "group_weight" if self._effect_kind(e.effect, e.reference) == "feature" else "group_worth"
                if var not in post:
                    raise ModelError(f"The fit has no {var} (the effect {e.effect!r} does not vary by group); "
                                     f"refit Hierarchical with varying including "
                                     f"{'features' if var == 'group_weight' else 'worths'}.")
        elif e.kind == "feature_effect":
            if e.effect not in self.features:
                raise ModelError(f"feature={e.effect!r} is not a feature of the model; available: {self.features}.")
        else:
            for o in (e.a, e.b):
                if o not in self.options:
                    raise DataError(f"Option {o!r} is unknown; options: {self.options[:10]}"
                                    f"{' ...' if len(self.options) > 10 else ''}.")
            if e.a == e.b:
                raise ModelError("preference(a, b): a and b must differ.")
            if e.group and not self.covariates:
                raise ModelError("preference(..., group=...) needs a model with user covariates.")
            if not self.spec.uses_worths(self.data) and self._option_x() is None:
                raise DataError("The model uses per-comparison features only, so the features of options "
                                f"{e.a!r} and {e.b!r} are unknown; give an option table.")
            self.group_vector()

    def _effect_kind(self, effect, reference=None) -> str:
        if effect in self.features:
            if reference is not None:
                raise ModelError("reference applies to worths (options), not to feature weights.")
            return "feature"
        if effect in self.options and self.spec.uses_worths(self.data):
            if reference is not None and reference not in self.options:
                raise DataError(f"reference={reference!r} is not an option; options: {self.options[:10]}.")
            return "option"
        raise ModelError(f"effect={effect!r} is neither a feature of the model ({self.features}) nor an option "
                         f"with a worth.")

    def _option_x(self):
        from .heterogeneity import _option_features

        return _option_features(self.data, self.features)

    def group_vector(self) -> np.ndarray:
        """Covariate row of the preference estimand's target group (others at the users' average)."""
        c = self.cbar.copy()
        for key, value in (self.est.group or {}).items():
            cols = [i for i, n in enumerate(self.covariates) if n.split("[")[0] == key]
            if not cols:
                raise ModelError(f"group key {key!r} is not a covariate of the model; covariates: {self.covariates}.")
            if len(cols) == 1 and self.covariates[cols[0]] == key:
                try:
                    c[cols[0]] = float(value)
                except (TypeError, ValueError):
                    raise ModelError(f"group[{key!r}] = {value!r}: the covariate is numeric.") from None
                continue
            names = [self.covariates[i] for i in cols]
            known = {n[len(key) + 1:-1] for n in names}
            levels = sorted(known | set(_levels(self.data, key)))
            if str(value) not in levels:
                raise ModelError(f"group[{key!r}] = {value!r} is not a level of {key}; levels: {levels}.")
            for i, n in zip(cols, names):
                c[i] = float(n == f"{key}[{value}]")
        return c

    # -- direction and exposure ----------------------------------------------------------------------
    def _option_direction(self) -> np.ndarray | None:
        e = self.est
        v = np.zeros(len(self.options))
        if e.kind == "group_contrast" and self._effect_kind(e.effect, e.reference) == "option":
            i = self.options.index(e.effect)
            if e.reference is None:
                v[i] = 1.0
            else:
                v[i], v[self.options.index(e.reference)] = 0.5, -0.5
            return v
        if e.kind == "preference" and self.spec.uses_worths(self.data):
            v[self.options.index(e.a)], v[self.options.index(e.b)] = 0.5, -0.5
            return v
        return None

    def _feature_direction(self) -> np.ndarray | None:
        e = self.est
        phi = np.zeros(len(self.features))
        if e.kind == "feature_effect" or (e.kind == "group_contrast" and e.effect in self.features):
            phi[self.features.index(e.effect)] = 1.0
            return phi
        if e.kind == "preference" and not self.spec.uses_worths(self.data):
            X = self._option_x()
            dx = X[self.options.index(e.a)] - X[self.options.index(e.b)]
            if not np.any(dx):
                raise DataError(f"Options {e.a!r} and {e.b!r} have identical features; the model cannot tell them "
                                "apart.")
            return dx / float(dx @ dx)
        return None

    def _shift(self) -> np.ndarray:
        """s_n: the comparison's coordinate along the effect U shifts."""
        s = np.zeros(self.data.n_comparisons)
        v = self._option_direction()
        if v is not None:
            s = s + v[np.asarray(self.data.a)] - v[np.asarray(self.data.b)]
        phi = self._feature_direction()
        if phi is not None:
            dx = np.asarray(self.arrays["xa"]) - np.asarray(self.arrays["xb"])
            s = s + dx @ phi
        return s

    def _exposure(self, exposure):
        e = self.est
        name = None
        if exposure is None:
            if e.kind == "group_contrast":
                exposure, name = e.covariate, e.covariate
            elif e.kind == "preference" and e.group:
                gv = self.group_vector()
                keys = [i for i, n in enumerate(self.covariates) if n.split("[")[0] in e.group]
                raw = np.all(np.isclose(self.cov[:, keys], gv[keys]), axis=1).astype(float)
                name = "in group " + ", ".join(f"{k}={v}" for k, v in e.group.items())
                if raw[self.active].min() == raw[self.active].max():
                    raise DataError(f"No variation in the exposure '{name}' among the users.")
                return self._centre(raw), name, True
            else:
                users = np.asarray(self.data.user)
                raw = np.bincount(users, weights=self.shift ** 2, minlength=self.data.n_users)
                raw = raw / np.maximum(np.bincount(users, minlength=self.data.n_users), 1)
                return self._centre(raw), "mean squared exposure to the effect", False
        if isinstance(exposure, str):
            name = exposure
            if exposure in self.covariates:
                raw = self.cov[:, self.covariates.index(exposure)]
            elif exposure in self.data.covariate_names:
                raw = np.asarray(self.data.covariates, float)[:, list(self.data.covariate_names).index(exposure)]
            else:
                raise ModelError(f"exposure={exposure!r} is not a user covariate column; available: "
                                 f"{list(self.data.covariate_names)} (or pass a Series indexed by user).")
        elif isinstance(exposure, pd.Series):
            missing = self.data.users.difference(exposure.index)
            if len(missing):
                raise DataError(f"exposure lacks {len(missing)} users, e.g. {list(missing[:5])}.")
            raw = exposure.reindex(self.data.users).to_numpy(dtype=float)
            name = exposure.name or "exposure"
        else:
            raise ModelError("exposure must be a covariate name or a pandas Series indexed by user.")
        if not np.all(np.isfinite(raw)):
            raise DataError("exposure has missing or infinite values.")
        if raw[self.active].min() == raw[self.active].max():
            raise DataError(f"exposure {name!r} does not vary among the users.")
        binary = bool(np.all(np.isin(raw[self.active], (0.0, 1.0))))
        return self._centre(raw, binary), name, binary

    def _centre(self, raw, binary=None):
        act = raw[self.active]
        binary = bool(np.all(np.isin(act, (0.0, 1.0)))) if binary is None else binary
        out = raw - act.mean()
        return out if binary else out / act.std()

    def pbar(self, delta):
        """Average over the training users of P(U = 1 | e_u) (JAX, any delta)."""
        e = jnp.asarray(self.exposure[self.active], dtype=jnp.float32)
        lp = math.log(self.prevalence / (1 - self.prevalence))
        return jnp.mean(jax.nn.sigmoid(lp + delta * e))

    # -- the augmented model ---------------------------------------------------------------------------
    def model(self):
        """The U-augmented NumPyro model ``fn(data, gamma, delta)``."""
        if self.types:
            return functools.partial(_augmented_types, self.spec, self.sizes)
        return functools.partial(_augmented, self.spec.bind(self.data), self.sizes["n_users"])

    # -- the estimand --------------------------------------------------------------------------------
    def sites(self) -> list[str]:
        post = self.fit.idata.posterior
        names = ["worth", "weight", "group_worth", "group_weight", "type_share", "type_intercept", "type_coef"]
        return [n for n in names if n in post]

    def value_fn(self):
        """``f(sample, gamma, delta) -> scalar`` for one draw (a dict of the posterior sites)."""
        e = self.est
        nf, no = len(self.features), len(self.options)
        cbar = jnp.asarray(self.cbar, dtype=jnp.float32)
        pbar = self.pbar

        def effect_of(kind, name, ref):
            """The target effect from (weights, worths) arrays with a trailing feature/option axis."""
            if kind == "feature":
                j = self.features.index(name)
                return lambda w, t: w[..., j]
            i = self.options.index(name)
            r = None if ref is None else self.options.index(ref)
            return lambda w, t: t[..., i] - (t.mean(-1) if r is None else t[..., r])

        def membership(sample, c):
            if "type_intercept" in sample:
                return jax.nn.softmax(sample["type_intercept"] + c @ sample["type_coef"], axis=-1)
            if "type_share" in sample:
                return sample["type_share"]
            return jnp.ones(1)

        def pop_effects(sample, c):
            """Population weights (nf,) and worths (no,) of a user with covariates c (U = 0)."""
            w = sample.get("weight", jnp.zeros(nf))
            t = sample.get("worth", jnp.zeros(no))
            if "group_weight" in sample:
                w = w + c @ sample["group_weight"]
            if "group_worth" in sample:
                t = t + c @ sample["group_worth"]
            return w, t

        if e.kind == "group_contrast":
            kind = self._effect_kind(e.effect, e.reference)
            j = self.covariates.index(e.covariate)
            pick = effect_of(kind, e.effect, e.reference)
            if not self.types:
                def f(sample, gamma, delta):
                    gw = sample.get("group_weight", jnp.zeros((len(self.covariates), nf)))
                    gt = sample.get("group_worth", jnp.zeros((len(self.covariates), no)))
                    return pick(gw[j], gt[j])
            else:
                c1, c0 = cbar.at[j].set(1.0), cbar.at[j].set(0.0)

                def f(sample, gamma, delta):
                    diff = membership(sample, c1) - membership(sample, c0)
                    w = sample.get("weight", jnp.zeros((1, nf)))
                    t = sample.get("worth", jnp.zeros((1, no)))
                    return jnp.sum(diff * pick(w, t))
            return f

        if e.kind == "feature_effect":
            j = self.features.index(e.effect)
            cov = jnp.asarray(self.cov[self.active], dtype=jnp.float32)

            def f(sample, gamma, delta):
                if self.types:
                    pi = membership(sample, cov)
                    pi = pi.mean(0) if pi.ndim == 2 else pi
                    base = jnp.sum(pi * sample["weight"][:, j])
                else:
                    base = pop_effects(sample, cbar)[0][j]
                return base + gamma * pbar(delta)
            return f

        # preference
        cg = jnp.asarray(self.group_vector(), dtype=jnp.float32)
        ia, ib = self.options.index(e.a), self.options.index(e.b)
        X = self._option_x()
        dx = jnp.asarray(np.zeros(nf) if X is None or not nf else X[ia] - X[ib], dtype=jnp.float32)

        def f(sample, gamma, delta):
            pb = pbar(delta)
            if self.types:
                pi = membership(sample, cg)
                w = sample.get("weight", jnp.zeros((1, nf)))
                t = sample.get("worth", jnp.zeros((1, no)))
                d = t[:, ia] - t[:, ib] + w @ dx
                p = (1 - pb) * jax.nn.sigmoid(d) + pb * jax.nn.sigmoid(d + gamma)
                return jnp.sum(pi * p)
            w, t = pop_effects(sample, cg)
            d = t[ia] - t[ib] + dx @ w
            return (1 - pb) * jax.nn.sigmoid(d) + pb * jax.nn.sigmoid(d + gamma)
        return f

    def draws_value(self, samples: dict, gamma, delta) -> jnp.ndarray:
        """The estimand for a batch of draws (leading axis)."""
        f = self.value_fn()
        return jax.vmap(lambda s: f(s, gamma, delta))(samples)

    def reference_draws(self) -> np.ndarray:
        """The estimand under the fitted model (gamma = 0), one value per posterior draw."""
        post = self.fit.idata.posterior
        samples = {n: jnp.asarray(post[n].values.reshape((-1,) + post[n].shape[2:]), dtype=jnp.float32)
                   for n in self.sites()}
        return np.asarray(self.draws_value(samples, 0.0, 0.0))


def _levels(data, key) -> list[str]:
    table = data.user_table
    if table is not None and key in table:
        return [str(v) for v in pd.unique(table[key].dropna())]
    return []


def _shifted(fn, shift):
    """The outcome distribution with the reward difference moved by ``shift``."""
    if isinstance(fn, WinFraction):
        return WinFraction(fn.logits + shift)
    if isinstance(fn, dist.BernoulliLogits):
        return dist.Bernoulli(logits=fn.logits + shift)
    if isinstance(fn, dist.CategoricalLogits) and fn.logits.shape[-1] == 3:  # Davidson: (-d/2, d/2, log nu)
        return dist.Categorical(logits=fn.logits + jnp.stack([-shift / 2, shift / 2, jnp.zeros_like(shift)], -1))
    if isinstance(fn, dist.Normal):
        return dist.Normal(fn.loc + shift, fn.scale)
    raise ModelError(f"Cannot shift an outcome model of type {type(fn).__name__}; the sensitivity layer "
                     "supports Bradley-Terry (logit), Davidson ties, ties='half' and Gaussian outcomes.")


def _user_marginal(ll0, ll1, data, delta, n_users):
    """log sum_U P(U | e_u) p(y_u | U) per user, from per-comparison log-likelihoods under U = 0, 1."""
    L0 = jax.ops.segment_sum(ll0, data["user"], num_segments=n_users)
    L1 = jax.ops.segment_sum(ll1, data["user"], num_segments=n_users)
    eta = data["sens_logit_p"] + delta * data["sens_exposure"]
    return jnp.logaddexp(jax.nn.log_sigmoid(-eta) + L0, jax.nn.log_sigmoid(eta) + L1)


def _augmented(base, n_users, data, gamma=0.0, delta=0.0, batch=None):
    """The fitted model with U summed out per user (families that observe the site ``y``).

    The base model runs unchanged; its observation site is hidden from inference and read back
    (its distribution holds the reward differences), then replaced by the per-user mixture over U.
    """
    with handlers.block(hide_fn=lambda site: site["name"] == OBS_SITE), handlers.trace() as tr:
        base(data)
    site = tr[OBS_SITE]
    y = site["value"]
    ll0 = site["fn"].log_prob(y)
    ll1 = _shifted(site["fn"], gamma * data["sens_shift"]).log_prob(y)
    numpyro.factor("sensitivity_ll", _user_marginal(ll0, ll1, data, delta, n_users).sum())


def _augmented_types(spec, sizes, data, gamma=0.0, delta=0.0, batch=None):
    """LatentTypes with U: the user's (type, U) pair is summed out jointly (2K states per user)."""
    from .models.likelihood import half_tie_values, outcome_distribution

    n_options, n_features = sizes["n_options"], sizes["n_features"]
    worth, weight = spec._type_effects(n_options, n_features)
    log_prior = spec._log_prior(data["covariates"], sizes["n_covariates"])
    pos = numpyro.sample("position", dist.Normal(0.0, spec.position_scale)) if spec.position else 0.0
    log_tie = spec.sample_log_tie()
    d = spec._differences(data, worth, weight, pos, None, n_options)  # (N, K)
    d2 = jnp.concatenate([d, d + (gamma * data["sens_shift"])[:, None]], axis=-1)
    y = half_tie_values(data["y"]) if spec.half_ties else data["y"]
    ll = outcome_distribution(d2, link=spec.link, log_tie=log_tie, half_ties=spec.half_ties).log_prob(y[:, None])
    L = jax.ops.segment_sum(ll, data["user"], num_segments=sizes["n_users"])  # (U, 2K)
    eta = data["sens_logit_p"] + delta * data["sens_exposure"]
    lp = log_prior(data["covariates"])
    lp2 = jnp.concatenate([lp + jax.nn.log_sigmoid(-eta)[:, None], lp + jax.nn.log_sigmoid(eta)[:, None]], -1)
    numpyro.factor("sensitivity_ll", logsumexp(lp2 + L, axis=-1).sum())


# ---------------------------------------------------------------------------------------------------
# grid mode
# ---------------------------------------------------------------------------------------------------
def _default_grid(ref: np.ndarray, null: float, kind: str, n: int, bench_gamma=(), bench_delta=()):
    m, s = float(np.mean(ref)), float(np.std(ref))
    if kind == "preference":  # gamma on the logit scale of the pair
        lo = max(min(m, 1 - 1e-3), 1e-3)
        size = abs(math.log(lo / (1 - lo)))
        sign = 1.0 if m >= null else -1.0
        gmax = max(3 * size, 1.0)
    else:
        sign = 1.0 if m >= null else -1.0
        gmax = max(3 * abs(m - null) + 3 * s, 0.5)
    gmax = max([gmax] + [1.2 * abs(g) for g in bench_gamma if np.isfinite(g)])
    dmax = max([4.0] + [1.2 * abs(d) for d in bench_delta if np.isfinite(d)])
    # a positive estimate is pulled towards the null by U with gamma > 0 and delta > 0 (U = 1 users
    # weigh the effect more and are more common among the exposed), a negative one by gamma < 0
    gamma = sign * np.linspace(0, gmax, n)
    return np.sort(gamma), np.linspace(0, dmax, n)


def _as_grid(values, name) -> np.ndarray:
    arr = np.unique(np.asarray(values, dtype=float).ravel())
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ModelError(f"{name} must be a non-empty list of finite numbers.")
    return arr


def grid(fit, estimand, gamma=None, delta=None, *, exposure=None, prevalence: float = 0.5,
         ci_prob: float = 0.9, method: str = "svi", steps: int = 1500, warm_steps: int = 5000,
         lr: float = 0.01, num_samples: int = 1000, chunk: int = 16, n_grid: int = 11, guide: str = "normal",
         anchors: tuple[int, int] | None = (2, 3),
         benchmark: bool = True, seed=0, progress: bool = False, nuts: dict | None = None) -> GridSensitivity:
    r"""The estimand over a grid of sensitivity parameters (γ, δ).

    Parameters
    ----------
    fit : Fit
        A fit of :class:`~bayespref.BradleyTerry` (with users), :class:`~bayespref.Hierarchical` or
        :class:`~bayespref.LatentTypes` (logit link), the reference: γ = 0.
    estimand : Estimand
        From :func:`group_contrast`, :func:`feature_effect` or :func:`preference`.
    gamma, delta : sequence of float, optional
        Grid values (log odds ratios). Default: ``n_grid`` values each, from 0 towards the direction
        that moves the estimate to its null (γ up to about three times the estimate, δ up to 4, both
        extended to cover the observed covariates' benchmarks).
    exposure : str or pandas.Series, optional
        What U is tied to: a user covariate column or a Series of per-user values. Default: see the
        estimand.
    prevalence : float
        P(U = 1) for a user of average exposure.
    ci_prob : float
        Probability of the equal-tailed intervals.
    method : {"svi", "nuts"}
        ``"svi"`` (default): all grid points at once (below). ``"nuts"``: a NUTS refit per point
        (``nuts``: settings for :func:`bayespref.fit`-like runs, default 2 chains x 500 + 500).
    steps, warm_steps, lr, num_samples, chunk, guide : SVI settings
        Adam steps per grid point (the last third averaged), steps of the warm-start fit at γ = 0,
        learning rate, draws per point, grid points per vectorised batch (memory), and the
        autoguide ("normal" or "lowrank").
    anchors : (int, int) or None
        Exact NUTS refits at this many γ values (spread over the grid, the largest included) times
        this many δ values (the smallest and largest included), which calibrate the fast grid (see
        Notes). None: none (the variational transport alone).
    benchmark : bool
        Measure the observed covariates' (γ, δ) (:meth:`GridSensitivity.benchmarks`).

    Notes
    -----
    **How the fast mode works.** With :math:`q_{\gamma\delta}` the variational posterior at a grid
    point and :math:`q_0` at γ = 0 (all fitted together, from the same start and with the same
    random numbers), the reference fit's posterior draws :math:`\psi^{(s)}` of the estimand are
    transported to each point by location and scale,

    .. math::

        \psi^{(s)}_{\gamma\delta} = \bar\psi + (m_{\gamma\delta} - m_0)
            + (\psi^{(s)} - \bar\psi)\, \frac{s_{\gamma\delta}}{s_0},

    where m and s are the mean and SD of the estimand under q. The variational fits thus supply how
    confounding moves and stretches the posterior (which mean-field SVI gets right far more often
    than absolute widths), and the reference posterior supplies its shape and width.

    Mean-field SVI under-shifts when confounding is strong enough that users' U becomes
    identifiable from their own judgements (each user's posterior is then bimodal and the guide
    keeps one mode). The ``anchors`` measure this: at a few grid points the augmented model is
    refitted exactly by NUTS, and the discrepancy (difference of means, log ratio of SDs, zero at
    γ = 0) is interpolated bilinearly in (|γ|, δ) and applied to the whole grid. The measured
    discrepancies are in ``info["anchors"]`` (``discrepancy_sd``: in posterior SDs); a warning is
    given when any exceeds 0.25 SD, since the interpolation between anchors is then coarse. Use
    ``method="nuts"`` to refit the points that matter exactly.

    Returns
    -------
    GridSensitivity
    """
    from .fitting import Fit

    if not isinstance(fit, Fit):
        raise FitError(f"grid() needs a bayespref Fit (from bayespref.fit), got {type(fit).__name__}.")
    if method not in ("svi", "nuts"):
        raise ModelError(f"method={method!r}: use 'svi' or 'nuts'.")
    if not 0 < ci_prob < 1:
        raise ModelError(f"ci_prob={ci_prob}: use a probability in (0, 1).")
    est = _estimand_from(estimand)
    prob = _Problem(fit, est, exposure=exposure, prevalence=prevalence)
    ref = prob.reference_draws()
    bench = _benchmarks(prob) if benchmark else _empty_benchmarks()
    if gamma is None or delta is None:
        g0, d0 = _default_grid(ref, est.null, est.kind, n_grid, bench["gamma"].to_numpy(), bench["delta"].to_numpy())
        gamma = g0 if gamma is None else gamma
        delta = d0 if delta is None else delta
    gamma, delta = _as_grid(gamma, "gamma"), _as_grid(delta, "delta")
    G, D = np.meshgrid(gamma, delta, indexing="ij")
    points = np.column_stack([G.ravel(), D.ravel()])
    nuts = {"chains": 2, "warmup": 500, "draws": 500, **(nuts or {})}
    if method == "svi":
        draws, info = _grid_svi(prob, points, ref, steps=steps, warm_steps=warm_steps, lr=lr, guide=guide,
                                num_samples=num_samples, chunk=chunk, seed=seed, progress=progress)
        if anchors:
            draws, info = _calibrate(prob, gamma, delta, draws, ref, info, anchors, seed=seed, progress=progress,
                                     nuts=nuts)
    else:
        draws, info = _grid_nuts(prob, points, seed=seed, progress=progress, **nuts)
    draws = draws.reshape(len(gamma), len(delta), -1)
    return GridSensitivity(prob, est, gamma, delta, draws, ref, ci_prob, method, info, bench)


def _grid_svi(prob: _Problem, points, ref, *, steps, warm_steps, lr, guide, num_samples, chunk, seed, progress):
    """Variational fits of the augmented model at every point, by continuation in gamma.

    The gamma values are visited outwards from 0 (each sign separately); all delta values of one
    gamma are fitted at once (``jax.vmap``, compiled once), each starting from the fit at the
    previous gamma and the same delta (the first from the fit at gamma = 0). Following the
    solution path keeps each fit in the posterior mode that connects to the fitted model as the
    confounding strengthens, and costs the same as independent warm starts.
    """
    from .infer import GUIDES

    if guide not in ("normal", "lowrank"):
        raise FitError(f"guide={guide!r}: use 'normal' or 'lowrank'.")
    model = prob.model()
    data = prob.arrays
    key = as_key(seed)
    k_warm, k_init, k_run, k_draw = jax.random.split(key, 4)
    # warm start: the augmented model at gamma = 0 is the fitted model
    warm = run_svi(functools.partial(model, gamma=0.0, delta=0.0), data, k_warm,
                   SviSettings(steps=warm_steps, lr=lr, guide=guide, progress=progress))
    auto = GUIDES[guide](model)
    svi = SVI(model, auto, numpyro.optim.Adam(lr), Trace_ELBO())
    state0 = svi.init(k_init, data, gamma=0.0, delta=0.0)
    n_avg = max(steps // 3, 1)
    value = prob.value_fn()
    sites = prob.sites()
    deterministic = [n for n in sites if n not in guide_sites(auto, model, data)]

    def one(g, d, params0, data):
        st0 = state0._replace(optim_state=svi.optim.init(params0), rng_key=k_run)

        def step(carry, t):
            st, acc = carry
            st, loss = svi.update(st, data, gamma=g, delta=d)
            w = (t >= steps - n_avg).astype(jnp.float32)  # Polyak average over the last n_avg steps
            acc = jax.tree.map(lambda a, p: a + w * p, acc, svi.get_params(st))
            return (st, acc), loss

        zero = jax.tree.map(jnp.zeros_like, params0)
        (st, acc), losses = jax.lax.scan(step, (st0, zero), jnp.arange(steps))
        params = jax.tree.map(lambda a: a / n_avg, acc)
        post = auto.sample_posterior(k_draw, params, sample_shape=(num_samples,))
        if deterministic:
            post = {**post, **Predictive(model, posterior_samples=post, return_sites=deterministic)(
                k_draw, data, gamma=g, delta=d)}
        vals = jax.vmap(lambda s: value(s, g, d))({k: post[k] for k in sites})
        tail = losses[steps - n_avg:]
        half = n_avg // 2
        drift = jnp.mean(tail[half:]) - jnp.mean(tail[:half])
        return (jnp.mean(vals), jnp.std(vals), drift, jnp.std(tail)), svi.get_params(st)

    batch = jax.jit(jax.vmap(one, in_axes=(None, 0, 0, None)))  # compiled once
    deltas = np.unique(points[:, 1]).astype(np.float32)
    size = min(chunk, len(deltas))
    n_pad = -len(deltas) % size
    dpad = np.r_[deltas, np.repeat(deltas[-1:], n_pad)]

    def stage(g, params):
        """Fit gamma = g at every delta (chunks of ``size``), each from its own start."""
        outs, news = [], []
        for i in range(0, len(dpad), size):
            p = jax.tree.map(functools.partial(_rows, start=i, size=size), params)
            o, new = batch(jnp.float32(g), jnp.asarray(dpad[i:i + size]), p, data)
            outs.append([np.asarray(x) for x in o])
            news.append(new)
        stats = [np.concatenate([o[j] for o in outs]) for j in range(4)]
        return stats, jax.tree.map(lambda *xs: jnp.concatenate(xs), *news)

    start = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(dpad),) + x.shape), warm.params)
    ref_stats, _ = stage(0.0, start)
    m0, s0 = float(ref_stats[0][0]), max(float(ref_stats[1][0]), 1e-12)
    results = {}
    gammas = np.unique(points[:, 0])
    for branch in (np.sort(gammas[gammas > 0]), np.sort(gammas[gammas < 0])[::-1]):
        params = start
        for g in branch:
            stats, params = stage(float(g), params)
            for j, d in enumerate(deltas):
                results[(float(g), float(d))] = [x[j] for x in stats]
    for j, d in enumerate(deltas):
        results[(0.0, float(d))] = [x[j] for x in ref_stats]
    m, s, drift, noise = (np.array([results[(float(g), float(np.float32(d)))][k] for g, d in points])
                          for k in range(4))
    if not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)):
        raise FitError("The variational fits over the grid returned NaN; lower lr=..., or use method='nuts'.")
    # drift between the two halves of the averaging window against its noise (losses are
    # autocorrelated: a tenth of the steps taken as independent) and a relative tolerance
    se = noise * math.sqrt(2.0 / max(n_avg / 20.0, 1.0))
    bad = np.abs(drift) > np.maximum(2 * se, 1e-4 * np.abs(m))
    rbar = ref.mean()
    draws = rbar + (m - m0)[:, None] + (ref - rbar)[None, :] * (s / s0)[:, None]
    info = {"svi_mean": m, "svi_sd": s, "svi_ref_mean": m0, "svi_ref_sd": s0,
            "warm_converged": bool(warm.converged), "steps": steps, "warm_steps": int(warm.steps),
            "unsettled": int(np.sum(bad))}
    if np.mean(bad) > 0.25:
        warnings.warn(f"The variational fits of {int(np.sum(bad))} of {len(bad)} grid points were still drifting "
                      "at the end; raise steps=... (or check a few points with method='nuts').",
                      ConvergenceWarning, stacklevel=3)
    return draws, info


def _rows(x, start, size):
    return x[start:start + size]


def guide_sites(guide, model, data) -> set[str]:
    """Names of the latent sites an autoguide samples (sites its posterior draws contain)."""
    tr = handlers.trace(handlers.seed(model, 0)).get_trace(data, gamma=0.0, delta=0.0)
    return {n for n, site in tr.items() if site["type"] == "sample" and not site["is_observed"]}


def _anchor_values(values: np.ndarray, k: int, skip_first: bool) -> np.ndarray:
    """k grid values spread over the grid (by |value|), the largest included."""
    v = values[np.argsort(np.abs(values))]
    if skip_first:
        idx = np.round(np.linspace(0, len(v) - 1, k + 1)).astype(int)[1:]
    else:
        idx = np.round(np.linspace(0, len(v) - 1, k)).astype(int)
    return np.unique(v[idx])


def _calibrate(prob, gamma, delta, draws, ref, info, anchors, *, seed, progress, nuts):
    """Correct the transported grid with exact NUTS refits at a few anchor points.

    At each anchor the discrepancy between NUTS and the transported draws (difference of means,
    log ratio of SDs) is measured; it is zero at gamma = 0 (where the transport is the identity) and
    interpolated bilinearly in (|gamma|, delta) between anchors; the draws are then moved and
    rescaled by it. At the anchors the result has the refit's mean and SD.
    """
    from scipy.interpolate import RegularGridInterpolator

    ng, nd = (int(x) for x in anchors)
    ga = _anchor_values(gamma, max(ng, 1), skip_first=True)
    ga = ga[ga != 0]
    da = _anchor_values(delta, max(nd, 1), skip_first=False)
    if ga.size == 0:
        return draws, info
    pts = np.array([(g, d) for g in ga for d in da])
    exact, ninfo = _grid_nuts(prob, pts, seed=jax.random.fold_in(as_key(seed), 7), progress=progress, **nuts)
    G, D = np.meshgrid(gamma, delta, indexing="ij")
    flat = np.column_stack([G.ravel(), D.ravel()])
    dm = np.zeros((ga.size, da.size))
    dl = np.zeros_like(dm)
    rows = []
    for i, (g, d) in enumerate(pts):
        k = int(np.nonzero((flat[:, 0] == g) & (flat[:, 1] == d))[0][0])
        tm, ts = draws[k].mean(), draws[k].std(ddof=1)
        em, es = exact[i].mean(), exact[i].std(ddof=1)
        a, b = np.nonzero(ga == g)[0][0], np.nonzero(da == d)[0][0]
        dm[a, b], dl[a, b] = em - tm, math.log(es / ts)
        rows.append({"gamma": g, "delta": d, "fast_mean": tm, "fast_sd": ts, "nuts_mean": em, "nuts_sd": es,
                     "discrepancy_sd": (em - tm) / es})
    # gamma = 0 row: no discrepancy; interpolate in |gamma|
    ag = np.abs(ga)
    order = np.argsort(ag)
    xg = np.r_[0.0, ag[order]]
    dm = np.vstack([np.zeros(da.size), dm[order]])
    dl = np.vstack([np.zeros(da.size), dl[order]])
    kw = {"method": "linear", "bounds_error": False, "fill_value": None}
    q = np.column_stack([np.abs(flat[:, 0]), flat[:, 1]])
    if da.size == 1:
        shift = np.interp(q[:, 0], xg, dm[:, 0])
        logscale = np.interp(q[:, 0], xg, dl[:, 0])
    else:
        shift = RegularGridInterpolator((xg, da), dm, **kw)(q)
        logscale = RegularGridInterpolator((xg, da), dl, **kw)(q)
    mean = draws.mean(1, keepdims=True)
    out = mean + shift[:, None] + (draws - mean) * np.exp(logscale)[:, None]
    info = {**info, "anchors": pd.DataFrame(rows), "anchor_nuts": ninfo}
    worst = max(abs(r["discrepancy_sd"]) for r in rows)
    if worst > 0.25:
        warnings.warn(f"The fast grid was off by up to {worst:.2f} posterior SD at the NUTS anchors (strong "
                      "confounding); it has been corrected there, but between anchors the correction is "
                      "interpolated. Refit the points that matter with method='nuts' or add anchors.",
                      ConvergenceWarning, stacklevel=3)
    return out, info


def _grid_nuts(prob: _Problem, points, *, seed, progress, chains=2, warmup=500, draws=500, target_accept=0.8):
    """NUTS refits of the augmented model at each point (compiled once, data carry (gamma, delta))."""
    from . import _jax as jx

    model = prob.model()
    method, _ = jx.devices_for_chains(chains)

    def fixed(data):
        model(data, gamma=data["sens_gamma"], delta=data["sens_delta"])

    mcmc = MCMC(NUTS(fixed, target_accept_prob=target_accept), num_warmup=warmup, num_samples=draws,
                num_chains=chains, chain_method=method, progress_bar=progress, jit_model_args=True)
    out, n_div = [], 0
    for i, (g, d) in enumerate(points):
        data = {**prob.arrays, "sens_gamma": jnp.float32(g), "sens_delta": jnp.float32(d)}
        mcmc.run(jax.random.fold_in(as_key(seed), i), data, extra_fields=("diverging",))
        samples = {k: v for k, v in mcmc.get_samples().items() if k in prob.sites()}
        out.append(np.asarray(prob.draws_value(samples, float(g), float(d))))
        n_div += int(np.sum(mcmc.get_extra_fields()["diverging"]))
    if n_div:
        warnings.warn(f"{n_div} divergent transitions over the NUTS refits; raise target_accept.",
                      ConvergenceWarning, stacklevel=3)
    return np.stack(out), {"chains": chains, "warmup": warmup, "draws": draws, "divergences": n_div}


# ---------------------------------------------------------------------------------------------------
# benchmarks against observed covariates
# ---------------------------------------------------------------------------------------------------
def _empty_benchmarks() -> pd.DataFrame:
    return pd.DataFrame({"gamma": pd.Series(dtype=float), "delta": pd.Series(dtype=float)},
                        index=pd.Index([], name="covariate"))


def _logistic_slope(x: np.ndarray, e: np.ndarray) -> float:
    """Slope of a logistic regression of the binary x on e (Newton's method, a tiny ridge)."""
    A = np.column_stack([np.ones_like(e), e])
    beta = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-A @ beta))
        H = A.T @ (A * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        step = np.linalg.solve(H, A.T @ (x - p) - 1e-3 * beta)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(beta[1])


def _benchmarks(prob: _Problem) -> pd.DataFrame:
    r"""(γ, δ) of confounders as strong as each observed user covariate.

    For covariate column :math:`x_k` (binary; a numeric one is split at its median):
    :math:`\delta_k` is the slope of a logistic regression of :math:`x_k` on the centred exposure
    (the same scale as δ) and :math:`\gamma_k` the posterior mean of its effect on the estimand's
    direction (its group coefficient; for a numeric covariate, per interquartile range).
    Covariates that define the exposure itself are skipped.
    """
    e = prob.est
    if not prob.covariates or prob.spec.family == "BradleyTerry":
        return _empty_benchmarks()
    skip = set()
    if e.kind == "group_contrast":
        skip.add(e.covariate.split("[")[0])
    if e.kind == "preference" and e.group:
        skip |= set(e.group)
    rows = {}
    ex = prob.exposure[prob.active]
    for j, name in enumerate(prob.covariates):
        if name.split("[")[0] in skip:
            continue
        x = prob.cov[prob.active, j]
        binary = np.all(np.isin(x, (0.0, 1.0)))
        scale = 1.0
        if not binary:
            q1, q3 = np.quantile(x, [0.25, 0.75])
            scale = float(q3 - q1) or float(np.std(x))
            x = (x > np.median(x)).astype(float)
        if x.min() == x.max():
            continue
        delta_k = _logistic_slope(x, ex)
        gamma_k = scale * _covariate_effect(prob, j)
        rows[name] = (gamma_k, delta_k)
    if not rows:
        return _empty_benchmarks()
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["gamma", "delta"])
    out.index.name = "covariate"
    return out


def _covariate_effect(prob: _Problem, j: int) -> float:
    """Posterior mean effect of covariate column j on the estimand's direction (logit scale)."""
    post = prob.fit.idata.posterior
    v = prob._option_direction()
    phi = prob._feature_direction()
    if prob.types:
        cbar = prob.cbar
        c1, c0 = cbar.copy(), cbar.copy()
        c1[j], c0[j] = 1.0, 0.0
        samples = {n: post[n].values.reshape((-1,) + post[n].shape[2:]) for n in prob.sites()}
        if "type_intercept" not in samples:
            return 0.0

        def pi(c):
            z = samples["type_intercept"] + np.einsum("p,spk->sk", c, samples["type_coef"])
            z = np.exp(z - z.max(-1, keepdims=True))
            return z / z.sum(-1, keepdims=True)
        eff_k = np.zeros(pi(c1).shape)
        if v is not None and "worth" in samples:
            eff_k = eff_k + samples["worth"] @ v
        if phi is not None and "weight" in samples:
            eff_k = eff_k + samples["weight"] @ phi
        return float(np.mean(np.sum((pi(c1) - pi(c0)) * eff_k, -1)))
    total = 0.0
    if v is not None and "group_worth" in post:
        total += float((post["group_worth"].mean(("chain", "draw")).values[j] * v).sum())
    if phi is not None and "group_weight" in post:
        total += float((post["group_weight"].mean(("chain", "draw")).values[j] * phi).sum())
    return total


# ---------------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------------
def _interval(draws: np.ndarray, ci_prob: float, axis=-1):
    lo, hi = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    return np.quantile(draws, lo, axis=axis), np.quantile(draws, hi, axis=axis)


def _plain(obj):
    """Nested dicts/lists with numpy scalars turned into Python numbers (JSON-ready)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _evalue_from_or(odds_ratio: float) -> float:
    """E-value of an odds ratio of a common outcome: RR = sqrt(OR), E = RR + sqrt(RR (RR - 1))."""
    rr = math.sqrt(max(odds_ratio, 1 / odds_ratio))
    return rr + math.sqrt(rr * (rr - 1))


class GridSensitivity:
    """The estimand over a grid of (γ, δ), with tipping point, robustness value, benchmarks and plots.

    Attributes
    ----------
    estimand : Estimand
    gamma, delta : numpy arrays, the grid
    draws : xarray.DataArray (gamma, delta, sample)
        Posterior draws of the estimand at every grid point.
    reference : numpy array
        Draws under the fitted model (γ = 0, no confounding).
    """

    def __init__(self, prob, est, gamma, delta, draws, ref, ci_prob, method, info, bench):
        self._prob = prob
        self.estimand = est
        self.gamma, self.delta = np.asarray(gamma), np.asarray(delta)
        self.draws = xr.DataArray(draws, dims=("gamma", "delta", "sample"),
                                  coords={"gamma": self.gamma, "delta": self.delta}, name="estimand")
        self.reference = np.asarray(ref)
        self.ci_prob = ci_prob
        self.method = method
        self.info = info
        self._bench = bench
        self.exposure = prob.exposure_name
        self.prevalence = prob.prevalence

    # -- tables --------------------------------------------------------------------------------------
    @property
    def summary(self) -> xr.Dataset:
        """Dataset (gamma, delta) with ``mean``, ``sd``, ``lower``, ``upper`` of the estimand."""
        d = self.draws.values
        lo, hi = _interval(d, self.ci_prob)
        dims = ("gamma", "delta")
        return xr.Dataset({"mean": (dims, d.mean(-1)), "sd": (dims, d.std(-1, ddof=1)),
                           "lower": (dims, lo), "upper": (dims, hi)},
                          coords={"gamma": self.gamma, "delta": self.delta},
                          attrs={"estimand": self.estimand.label, "null": self.estimand.null,
                                 "ci_prob": self.ci_prob, "method": self.method, "exposure": self.exposure})

    def table(self) -> pd.DataFrame:
        """Tidy table: one row per grid point, with whether the interval includes the null."""
        t = self.summary.to_dataframe().reset_index()
        null = self.estimand.null
        t["includes_null"] = (t["lower"] <= null) & (t["upper"] >= null)
        return t

    def naive(self) -> dict:
        """The estimand under the fitted model (no confounding): mean, sd and interval."""
        lo, hi = _interval(self.reference, self.ci_prob)
        return {"mean": float(self.reference.mean()), "sd": float(self.reference.std(ddof=1)),
                "lower": float(lo), "upper": float(hi)}

    # -- tipping -------------------------------------------------------------------------------------
    def _sign(self) -> float:
        return 1.0 if self.reference.mean() >= self.estimand.null else -1.0

    def _near_bound(self) -> xr.DataArray:
        s = self.summary
        return s["lower"] if self._sign() > 0 else s["upper"]

    def tipping_curve(self, what: str = "interval") -> xr.DataArray:
        """For each δ, the weakest γ (smallest |γ|, interpolated) that moves the interval's bound
        nearer the null onto the null (``what="interval"``) or the mean across it (``"mean"``);
        NaN where the grid holds none."""
        field = self._near_bound() if what == "interval" else self.summary["mean"]
        null, sign = self.estimand.null, self._sign()
        order = np.argsort(np.abs(self.gamma))
        g = self.gamma[order]
        out = np.full(len(self.delta), np.nan)
        for j in range(len(self.delta)):
            v = sign * (field.values[order, j] - null)
            hit = np.nonzero(v <= 0)[0]
            if not hit.size:
                continue
            k = hit[0]
            if k == 0:
                out[j] = g[0]
            else:
                out[j] = g[k - 1] + (g[k] - g[k - 1]) * v[k - 1] / (v[k - 1] - v[k])
        return xr.DataArray(out, dims="delta", coords={"delta": self.delta}, name=f"tipping_gamma_{what}")

    def tipping_point(self, what: str = "interval") -> dict:
        r"""The weakest confounding, equally strong with exposure and preference, that tips the result.

        Along the diagonal :math:`|\gamma| = |\delta| = t` (both log odds ratios) in the grid's
        direction, the smallest t at which the interval reaches the null (``what="interval"``) or
        the mean crosses it (``"mean"``), by linear interpolation on the grid. Returns ``t``, the
        odds ratio ``exp(t)`` and the points; ``t`` is inf when the grid holds no such point (widen
        it).
        """
        field = self._near_bound() if what == "interval" else self.summary["mean"]
        sg = np.sign(self.gamma[np.argmax(np.abs(self.gamma))]) or 1.0
        sd = np.sign(self.delta[np.argmax(np.abs(self.delta))]) or 1.0
        tmax = min(np.abs(self.gamma).max(), np.abs(self.delta).max())
        ts = np.linspace(0, tmax, 401)
        f = field.sortby("gamma").sortby("delta")
        vals = f.interp(gamma=xr.DataArray(sg * ts, dims="t"), delta=xr.DataArray(sd * ts, dims="t")).values
        v = self._sign() * (vals - self.estimand.null)
        hit = np.nonzero(np.isfinite(v) & (v <= 0))[0]
        if not hit.size:
            return {"t": math.inf, "odds_ratio": math.inf, "gamma": math.nan, "delta": math.nan}
        k = hit[0]
        t = ts[0] if k == 0 else ts[k - 1] + (ts[k] - ts[k - 1]) * v[k - 1] / (v[k - 1] - v[k])
        return {"t": float(t), "odds_ratio": float(math.exp(t)), "gamma": float(sg * t), "delta": float(sd * t)}

    # -- robustness value and E-value ----------------------------------------------------------------
    def robustness_value(self, q: float = 1.0, alpha: float | None = None) -> dict:
        r"""Cinelli-Hazlett robustness value, read on the latent-utility scale.

        The posterior mean over SD of the estimand (on the logit scale; a probability through the
        delta method) plays the role of the t statistic, with ``dof`` the residual degrees of
        freedom of the exposure's level (users minus user-level parameters for user-level exposures,
        comparisons minus features otherwise). With partial Cohen's :math:`f = t/\sqrt{dof}`,

        .. math::

            RV_q = \tfrac12\left(\sqrt{f_q^4 + 4 f_q^2} - f_q^2\right),\quad f_q = q |f|,

        the share of residual variance of both exposure and latent utility that a confounder must
        explain to reduce the estimate by 100q %; :math:`RV_{q,\alpha}` uses
        :math:`f_q - z_{1-\alpha/2}/\sqrt{dof - 1}` (interval reaches the reduced value). This is
        an approximation: the model is a logit, not OLS.
        """
        from scipy.stats import norm

        alpha = 1 - self.ci_prob if alpha is None else alpha
        r = self.reference
        null = self.estimand.null
        m, s = r.mean(), r.std(ddof=1)
        if self.estimand.kind == "preference":
            m_c = min(max(m, 1e-6), 1 - 1e-6)
            t = math.log(m_c / (1 - m_c)) / (s / (m_c * (1 - m_c)))
        else:
            t = (m - null) / s
        prob = self._prob
        user_level = self.estimand.kind == "group_contrast" or (self.estimand.kind == "preference"
                                                                and bool(self.estimand.group))
        dof = (len(prob.active) - len(prob.covariates) - 1) if user_level else (
            prob.data.n_comparisons - len(prob.features) - 1)
        dof = max(dof, 2)
        f = abs(t) / math.sqrt(dof)

        def rv(fq):
            return 0.0 if fq <= 0 else 0.5 * (math.sqrt(fq ** 4 + 4 * fq ** 2) - fq ** 2)
        fa = q * f - norm.ppf(1 - alpha / 2) / math.sqrt(dof - 1)
        return {"t": float(t), "dof": int(dof), "partial_f": float(f), "rv_q": float(rv(q * f)),
                "rv_q_alpha": float(rv(fa)),
                "q": q, "alpha": alpha}

    def evalue(self) -> dict:
        r"""E-value-style summary on the odds scale.

        The fitted estimate as an odds ratio (for a logit-scale effect :math:`OR = e^{|m|}`; for a
        preference probability :math:`OR = m / (1 - m)`), converted to a risk ratio for a common
        outcome (:math:`RR \approx \sqrt{OR}`) and to the E-value
        :math:`E = RR + \sqrt{RR (RR - 1)}` (VanderWeele & Ding 2017): the strength (risk ratio)
        that a confounder needs with both exposure and outcome to explain the estimate away; the
        same for the interval's bound nearer the null (1 when the interval includes it). Also the
        grid's equal-strength tipping point as an odds ratio.
        """
        nv = self.naive()
        null = self.estimand.null

        def to_or(x):
            if self.estimand.kind == "preference":
                x = min(max(x, 1e-9), 1 - 1e-9)
                return x / (1 - x)
            return math.exp(abs(x - null))
        bound = nv["lower"] if self._sign() > 0 else nv["upper"]
        crosses = self._sign() * (bound - null) <= 0
        return {"odds_ratio": to_or(nv["mean"]), "evalue": _evalue_from_or(to_or(nv["mean"])),
                "evalue_bound": 1.0 if crosses else _evalue_from_or(to_or(bound)),
                "tipping_odds_ratio": self.tipping_point()["odds_ratio"]}

    # -- benchmarks ----------------------------------------------------------------------------------
    def benchmarks(self, multiples=(1,)) -> pd.DataFrame:
        """Observed user covariates as yardsticks: the (γ, δ) of a confounder as strong as covariate
        k (times each multiple, with the signs of the grid's direction) and the estimand there
        (interpolated on the grid; NaN outside it). See :func:`_benchmarks` for how (γ_k, δ_k) are
        measured."""
        b = self._bench
        if b.empty:
            return pd.DataFrame(columns=["multiple", "gamma", "delta", "mean", "lower", "upper", "tips"])
        sg = np.sign(self.gamma[np.argmax(np.abs(self.gamma))]) or 1.0
        sd = np.sign(self.delta[np.argmax(np.abs(self.delta))]) or 1.0
        s = self.summary.sortby("gamma").sortby("delta")
        rows = []
        for name, r in b.iterrows():
            for k in multiples:
                g, d = sg * k * abs(r["gamma"]), sd * k * abs(r["delta"])
                at = s.interp(gamma=g, delta=d)
                lo, hi = float(at["lower"]), float(at["upper"])
                null = self.estimand.null
                tips = bool(lo <= null <= hi) if np.isfinite(lo) else None
                rows.append({"covariate": name, "multiple": k, "gamma": g, "delta": d, "mean": float(at["mean"]),
                             "lower": lo, "upper": hi, "tips": tips})
        return pd.DataFrame(rows).set_index("covariate")

    # -- plots ---------------------------------------------------------------------------------------
    def plot_contour(self, ax=None, benchmarks: bool = True, levels: int = 12, title: str | None = None):
        """Filled contours of the estimand's posterior mean over (δ, γ), with the tipping curve (the
        interval's bound at the null, dashed), the sign-flip curve (mean at the null, solid), the
        fitted estimate (star) and the observed covariates' benchmarks; returns the Figure."""
        from .plots import _new_axes

        fig, ax = _new_axes(ax, (6.4, 4.8))
        s = self.summary
        null = self.estimand.null
        cf = ax.contourf(self.delta, self.gamma, s["mean"].values, levels=levels, cmap="RdBu_r" if null == 0 else "PuOr")
        fig.colorbar(cf, ax=ax, label=f"posterior mean of {self.estimand.label}")
        bound = self._near_bound().values
        for field, style, lab in ((bound, "--", f"{round(100 * self.ci_prob)}% interval reaches {null:g}"),
                                  (s["mean"].values, "-", f"mean = {null:g}")):
            if np.nanmin(field) <= null <= np.nanmax(field):
                ax.contour(self.delta, self.gamma, field, levels=[null], colors="k", linestyles=style, linewidths=2)
                ax.plot([], [], "k" + style, label=lab)
        ax.plot([0], [0], "*", color="gold", ms=14, mec="k", label="fitted model (no confounding)", clip_on=False)
        if benchmarks:
            b = self.benchmarks()
            for name, r in b.iterrows():
                ax.plot(r["delta"], r["gamma"], "s", color="k", ms=6, clip_on=False)
                ax.annotate(f"{name} (1x)", (r["delta"], r["gamma"]), textcoords="offset points", xytext=(5, 4),
                            fontsize=8)
        ax.set_xlabel(f"δ: log odds ratio of U with exposure ({self.exposure})")
        ax.set_ylabel("γ: log odds ratio of preference, U = 1 vs 0")
        ax.set_title(title or f"Sensitivity of {self.estimand.label}")
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        return fig

    def plot_intervals(self, at_gamma=None, at_delta=None, title: str | None = None):
        """Posterior mean and interval of the estimand against γ (δ fixed at ``at_delta``) and
        against δ (γ fixed at ``at_gamma``); defaults: the middle grid values. Returns the Figure."""
        import matplotlib.pyplot as plt

        s = self.summary
        at_delta = self.delta[len(self.delta) // 2] if at_delta is None else at_delta
        at_gamma = self.gamma[np.argsort(np.abs(self.gamma))[len(self.gamma) // 2]] if at_gamma is None else at_gamma
        sd_ = s.sel(delta=at_delta, method="nearest")
        sg_ = s.sel(gamma=at_gamma, method="nearest")
        nv = self.naive()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        for ax, part, x, lab in ((axes[0], sd_, self.gamma, f"γ (δ = {float(sd_['delta']):.2g})"),
                                 (axes[1], sg_, self.delta, f"δ (γ = {float(sg_['gamma']):.2g})")):
            ax.fill_between(x, part["lower"], part["upper"], color="C0", alpha=0.3,
                            label=f"{round(100 * self.ci_prob)}% interval")
            ax.plot(x, part["mean"], "C0-", lw=2, label="posterior mean")
            ax.axhspan(nv["lower"], nv["upper"], color="0.5", alpha=0.15, label="fitted model")
            ax.axhline(self.estimand.null, color="k", lw=1, ls=":")
            ax.set_xlabel(lab)
        axes[0].set_ylabel(self.estimand.label)
        axes[0].legend(fontsize=8)
        fig.suptitle(title or f"Sensitivity of {self.estimand.label}")
        fig.tight_layout()
        return fig

    def report(self) -> dict:
        """Every scalar summary in one JSON-ready dict."""
        return _plain({"estimand": self.estimand.to_dict(), "label": self.estimand.label, "null": self.estimand.null,
                "exposure": self.exposure, "prevalence": self.prevalence, "ci_prob": self.ci_prob,
                "method": self.method, "naive": self.naive(), "tipping_point": self.tipping_point(),
                "tipping_point_mean": self.tipping_point("mean"), "robustness_value": self.robustness_value(),
                "evalue": self.evalue(),
                "info": {k: (v.to_dict(orient="records") if isinstance(v, pd.DataFrame) else v)
                         for k, v in self.info.items() if not isinstance(v, np.ndarray)}})

    def __repr__(self):
        nv = self.naive()
        tp = self.tipping_point()
        return (f"<GridSensitivity of {self.estimand.label}: {len(self.gamma)} x {len(self.delta)} grid ({self.method}); "
                f"fitted {nv['mean']:.3g} [{nv['lower']:.3g}, {nv['upper']:.3g}]; tipping point t = {tp['t']:.3g} "
                f"(OR {tp['odds_ratio']:.3g})>")


# ---------------------------------------------------------------------------------------------------
# prior mode
# ---------------------------------------------------------------------------------------------------
class PriorSensitivity:
    """Posterior of the estimand with priors on (γ, δ): ``draws`` (chain, draw) DataArrays of the
    estimand, ``gamma`` and ``delta``; :meth:`summary` compares it with the fitted model."""

    def __init__(self, est, draws, gamma, delta, ref, ci_prob, priors, idata):
        self.estimand = est
        self.draws = draws
        self.gamma, self.delta = gamma, delta
        self.reference = ref
        self.ci_prob = ci_prob
        self.priors = priors
        self.idata = idata

    def summary(self) -> pd.DataFrame:
        rows = {}
        for name, d in (("fitted model", self.reference), ("with confounding prior", self.draws.values.ravel()),
                        ("gamma", self.gamma.values.ravel()), ("delta", self.delta.values.ravel())):
            lo, hi = _interval(np.asarray(d), self.ci_prob)
            rows[name] = {"mean": float(np.mean(d)), "sd": float(np.std(d, ddof=1)), "lower": float(lo),
                          "upper": float(hi)}
        return pd.DataFrame.from_dict(rows, orient="index")

    def interval(self) -> tuple[float, float]:
        lo, hi = _interval(self.draws.values.ravel(), self.ci_prob)
        return float(lo), float(hi)


def prior(fit, estimand, gamma=(0.0, 1.0), delta=(0.0, 1.0), *, exposure=None, prevalence: float = 0.5,
          ci_prob: float = 0.9, chains: int = 4, warmup: int = 1000, draws: int = 1000,
          target_accept: float = 0.9, seed=0, progress: bool = False) -> PriorSensitivity:
    r"""Bayesian sensitivity analysis with priors on the sensitivity parameters.

    .. math::

        \gamma \sim N(\mu_\gamma, \sigma_\gamma^2), \qquad \delta \sim N(\mu_\delta, \sigma_\delta^2),

    and the U-augmented model (module docstring) fitted by NUTS, so the posterior of the estimand
    averages over the confounding the priors deem plausible (McCandless, Gustafson & Levy 2007).
    The data barely inform (γ, δ), so their posteriors stay close to the priors; the estimand's
    interval widens with the priors' width.

    Parameters
    ----------
    gamma, delta : (loc, scale)
        Normal priors. Centre them on what the grid or the benchmarks suggest is plausible.
    Other parameters as in :func:`grid` and :func:`bayespref.fit`.
    """
    import arviz as az

    from . import _jax as jx
    from .fitting import Fit

    if not isinstance(fit, Fit):
        raise FitError(f"prior() needs a bayespref Fit, got {type(fit).__name__}.")
    for name, p in (("gamma", gamma), ("delta", delta)):
        if len(p) != 2 or not p[1] > 0:
            raise ModelError(f"{name}={p!r}: give (loc, scale) of a normal prior with scale > 0.")
    est = _estimand_from(estimand)
    prob = _Problem(fit, est, exposure=exposure, prevalence=prevalence)
    model = prob.model()
    g_loc, g_scale = (float(x) for x in gamma)
    d_loc, d_scale = (float(x) for x in delta)

    def with_priors(data):
        g = numpyro.sample("gamma", dist.Normal(g_loc, g_scale))
        d = numpyro.sample("delta", dist.Normal(d_loc, d_scale))
        model(data, gamma=g, delta=d)

    method, _ = jx.devices_for_chains(chains)
    mcmc = MCMC(NUTS(with_priors, target_accept_prob=target_accept), num_warmup=warmup, num_samples=draws,
                num_chains=chains, chain_method=method, progress_bar=progress)
    mcmc.run(as_key(seed), prob.arrays, extra_fields=("diverging",))
    samples = mcmc.get_samples(group_by_chain=True)
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items() if k in prob.sites()}
    vals = np.asarray(jax.vmap(prob.value_fn())(flat, samples["gamma"].reshape(-1), samples["delta"].reshape(-1)))
    shape = samples["gamma"].shape
    da = xr.DataArray(vals.reshape(shape), dims=("chain", "draw"), name="estimand")
    idata = az.from_numpyro(mcmc)
    n_div = int(np.sum(mcmc.get_extra_fields()["diverging"]))
    if n_div:
        warnings.warn(f"{n_div} divergent transitions in the prior-mode fit; raise target_accept.",
                      ConvergenceWarning, stacklevel=2)
    return PriorSensitivity(est, da, idata.posterior["gamma"], idata.posterior["delta"], prob.reference_draws(),
                            ci_prob, {"gamma": (g_loc, g_scale), "delta": (d_loc, d_scale)}, idata)


# ---------------------------------------------------------------------------------------------------
# a simulator with a hidden confounder
# ---------------------------------------------------------------------------------------------------
def simulate_confounded(n_users: int = 200, comparisons_per_user: int = 30, n_options: int = 30,
                        n_features: int = 2, effect: float = 0.5, gamma: float = 1.5, delta: float = 2.0,
                        prevalence: float = 0.5, weight_mean=None, user_sd: float = 0.3,
                        observed: tuple[float, float] | None = (0.7, 1.0), seed: int = 0):
    r"""Hierarchical preferences confounded by a hidden binary user trait U.

    Users alternate between groups A and B (:math:`g_u \in \{0, 1\}`, covariate ``group``); the
    hidden :math:`U_u` follows :math:`\operatorname{logit} P(U_u = 1) = \operatorname{logit}(p) +
    \delta (g_u - \bar g)`; weights of the options' features :math:`x_i \sim N(0, I)` are

    .. math::

        w_u = \mu + \beta\, g_u e_0 + \gamma\, U_u e_0 + \lambda\, o_u e_0 + \eta_u,\quad
        \eta_u \sim N(0, \text{user\_sd}^2 I),

    so U and the observed covariate ``trait`` (:math:`o_u`, "yes"/"no", with logit P(o = 1) =
    :math:`\delta_o (g_u - \bar g)` and effect :math:`\lambda`; ``observed = (λ, δ_o)``, None for
    none) shift the weight of feature ``x0`` like the group does. The group contrast of ``x0``
    (``group_contrast("group[B]", "x0")``) is :math:`\beta` = ``effect``; a model blind to U
    estimates about :math:`\beta + \gamma\,(P(U=1 \mid B) - P(U=1 \mid A))`. U is returned in
    ``truth["U"]`` but not in the data.
    """
    from .simulate import Simulated, _labels, _option_labels, _outcomes, _pairs

    rng = np.random.default_rng(seed)
    mu = np.asarray(weight_mean if weight_mean is not None else np.linspace(1.0, -0.5, n_features), float)
    X = rng.normal(size=(n_options, n_features))
    g = (np.arange(n_users) % 2).astype(float)
    gc = g - g.mean()
    lp = math.log(prevalence / (1 - prevalence))
    U = (rng.random(n_users) < 1 / (1 + np.exp(-(lp + delta * gc)))).astype(float)
    o = np.zeros(n_users)
    lam = 0.0
    if observed is not None:
        lam, d_o = observed
        o = (rng.random(n_users) < 1 / (1 + np.exp(-d_o * gc))).astype(float)
    shift = effect * g + gamma * U + lam * o
    W = mu + rng.normal(size=(n_users, n_features)) * user_sd
    W[:, 0] += shift
    user = np.repeat(np.arange(n_users), comparisons_per_user)
    a, b = _pairs(rng, user.size, n_options)
    d = np.sum((X[a] - X[b]) * W[user], -1)
    labels = _option_labels(n_options)
    ulabels = _labels("u", n_users)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": _outcomes(rng, d, None), "user": ulabels[user]})
    table = pd.DataFrame(X, index=pd.Index(labels, name="option"), columns=[f"x{j}" for j in range(n_features)])
    users = pd.DataFrame({"group": np.where(g == 1, "B", "A")}, index=pd.Index(ulabels, name="user"))
    if observed is not None:
        users["trait"] = np.where(o == 1, "yes", "no")
    truth = {"effect": effect, "gamma": gamma, "delta": delta, "prevalence": prevalence, "U": U,
             "weight": mu, "user_weight": W, "naive_bias": gamma * (U[g == 1].mean() - U[g == 0].mean())}
    return Simulated(frame, table, users, truth)
