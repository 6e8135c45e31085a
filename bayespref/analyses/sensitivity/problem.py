"""The sensitivity problem: the fit's arrays, the confounder's shift direction and exposure, and the
estimand as a function of one posterior draw (checked once, shared by grid and prior mode)."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayespref.analyses.sensitivity.estimands import Estimand
from bayespref.analyses.sensitivity.likelihood import _augmented, _augmented_types
from bayespref.data.features import option_feature_matrix
from bayespref.errors import DataError, ModelError
from bayespref.models import FAMILIES, sites


class _Problem:
    """Everything the augmented model and the estimand need, checked once."""

    def __init__(self, fit, estimand: Estimand, exposure=None, prevalence: float = 0.5):
        self.fit, self.spec, self.data, self.est = fit, fit.model, fit.data, estimand
        family = self.spec.family
        if not self.spec.sensitivity:
            raise ModelError(f"Sensitivity analysis supports {_names(_supported())} fits "
                             f"(and custom models with their site names), not {family}.")
        if getattr(self.spec, "link", "logit") != "logit":
            raise ModelError("Sensitivity analysis needs link='logit' (gamma is a log odds ratio of the "
                             "preference); refit with the logit link.")
        if self.data.obs_dim != "comparison":
            raise ModelError("Sensitivity analysis covers pairwise comparisons; for rankings, fit the implied pairs "
                             "(bp.fit(model, rankings.explode())) and analyse that fit, knowing that exploded "
                             "pairs count each ranking several times (intervals too narrow).")
        if self.data.n_users < 2:
            raise DataError("The confounder is per user, but the data have a single user; give "
                            "Comparisons.from_frame(user=...) the annotator column.")
        if not 0 < prevalence < 1:
            raise ModelError(f"prevalence={prevalence}: the share of users with U = 1 must lie in (0, 1).")
        why = self.spec.sensitivity_support()
        if why:
            raise ModelError(why)
        self.types = bool(self.spec.has_types)
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
            if not self.spec.covariate_effects or not self.covariates:
                raise ModelError(f"A group contrast needs a model with user covariates (Hierarchical or LatentTypes "
                                 f"with covariates); this {fam} fit has none.")
            if e.covariate not in self.covariates:
                raise ModelError(f"covariate={e.covariate!r} is not a covariate of the model; available: "
                                 f"{self.covariates}.")
            self._effect_kind(e.effect, e.reference)
            if not self.types:  # group effects on the preferences (with types: on the membership)
                post = self.fit.idata.posterior
                var = sites.GROUP_WEIGHT if self._effect_kind(e.effect, e.reference) == "feature" else sites.GROUP_WORTH
                if var not in post:
                    raise ModelError(f"The fit has no {var} (the effect {e.effect!r} does not vary by group); "
                                     f"refit Hierarchical with varying including "
                                     f"{'features' if var == sites.GROUP_WEIGHT else 'worths'}.")
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
        return option_feature_matrix(self.data, self.features)

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
        names = [sites.WORTH, sites.WEIGHT, sites.GROUP_WORTH, sites.GROUP_WEIGHT, sites.TYPE_SHARE,
                 sites.TYPE_INTERCEPT, sites.TYPE_COEF]
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
            if sites.TYPE_INTERCEPT in sample:
                return jax.nn.softmax(sample[sites.TYPE_INTERCEPT] + c @ sample[sites.TYPE_COEF], axis=-1)
            if sites.TYPE_SHARE in sample:
                return sample[sites.TYPE_SHARE]
            return jnp.ones(1)

        def pop_effects(sample, c):
            """Population weights (nf,) and worths (no,) of a user with covariates c (U = 0)."""
            w = sample.get(sites.WEIGHT, jnp.zeros(nf))
            t = sample.get(sites.WORTH, jnp.zeros(no))
            if sites.GROUP_WEIGHT in sample:
                w = w + c @ sample[sites.GROUP_WEIGHT]
            if sites.GROUP_WORTH in sample:
                t = t + c @ sample[sites.GROUP_WORTH]
            return w, t

        if e.kind == "group_contrast":
            kind = self._effect_kind(e.effect, e.reference)
            j = self.covariates.index(e.covariate)
            pick = effect_of(kind, e.effect, e.reference)
            if not self.types:
                def f(sample, gamma, delta):
                    gw = sample.get(sites.GROUP_WEIGHT, jnp.zeros((len(self.covariates), nf)))
                    gt = sample.get(sites.GROUP_WORTH, jnp.zeros((len(self.covariates), no)))
                    return pick(gw[j], gt[j])
            else:
                c1, c0 = cbar.at[j].set(1.0), cbar.at[j].set(0.0)

                def f(sample, gamma, delta):
                    diff = membership(sample, c1) - membership(sample, c0)
                    w = sample.get(sites.WEIGHT, jnp.zeros((1, nf)))
                    t = sample.get(sites.WORTH, jnp.zeros((1, no)))
                    return jnp.sum(diff * pick(w, t))
            return f

        if e.kind == "feature_effect":
            j = self.features.index(e.effect)
            cov = jnp.asarray(self.cov[self.active], dtype=jnp.float32)

            def f(sample, gamma, delta):
                if self.types:
                    pi = membership(sample, cov)
                    pi = pi.mean(0) if pi.ndim == 2 else pi
                    base = jnp.sum(pi * sample[sites.WEIGHT][:, j])
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
                w = sample.get(sites.WEIGHT, jnp.zeros((1, nf)))
                t = sample.get(sites.WORTH, jnp.zeros((1, no)))
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


def _supported() -> list[str]:
    """The registered families whose specs declare the ``sensitivity`` capability."""
    return [name for name, cls in FAMILIES.items() if cls.sensitivity]


def _names(names) -> str:
    if len(names) < 2:
        return names[0] if names else "no"
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _levels(data, key) -> list[str]:
    table = data.user_table
    if table is not None and key in table:
        return [str(v) for v in pd.unique(table[key].dropna())]
    return []
