"""Prior mode: priors on (gamma, delta) and one NUTS fit of the augmented model
(McCandless-Gustafson)."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import xarray as xr
from numpyro.infer import MCMC, NUTS

from bayespref import config
from bayespref.analyses.sensitivity.estimands import _estimand_from
from bayespref.analyses.sensitivity.problem import _Problem
from bayespref.config import devices_for_chains
from bayespref.errors import ConvergenceWarning, FitError, ModelError
from bayespref.inference.engine import as_key
from bayespref.inference.result import Fit
from bayespref.intervals import interval_bounds


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
            lo, hi = interval_bounds(np.asarray(d), self.ci_prob)
            rows[name] = {"mean": float(np.mean(d)), "sd": float(np.std(d, ddof=1)), "lower": float(lo),
                          "upper": float(hi)}
        return pd.DataFrame.from_dict(rows, orient="index")

    def interval(self) -> tuple[float, float]:
        lo, hi = interval_bounds(self.draws.values.ravel(), self.ci_prob)
        return float(lo), float(hi)


def prior(fit, estimand, gamma=(0.0, 1.0), delta=(0.0, 1.0), *, exposure=None, prevalence: float = 0.5,
          ci_prob: float | None = None, chains: int = 4, warmup: int = 1000, draws: int = 1000,
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
    ci_prob = config.ci_prob(ci_prob)
    import arviz as az


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

    method, _ = devices_for_chains(chains)
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
