r"""Outcome probabilities of candidate judgements under every posterior draw.

For a candidate c and a posterior draw :math:`\theta_s` the model gives the probabilities of the
outcomes :math:`y \in \{a, b, \text{tie}\}`, :math:`P_{scy} = p(y \mid \theta_s, c)` (ties only
when the model has them). They come from the model's own NumPyro function run on the fit's draws
(:meth:`Fit.predict_draws <bayespref.Fit.predict_draws>`), so every family, custom models
included, is scored the same way.

**New users.** A candidate judged by a user the fit has not seen is predicted with a fresh draw of
that user's deviation for every posterior draw (:class:`~bayespref.Hierarchical`). One such draw
would make :math:`P_{s\cdot}` noisy, and that noise would look like information (the conditional
entropy :math:`\frac1S \sum_s H(P_s)` would be too small); so when the model has user-level effects
the new users' probabilities are averaged over ``new_user_draws`` independent draws of the
deviation, :math:`P_{scy} \approx \frac1R \sum_r p(y \mid \theta_s, \eta_r, c)`, the likelihood
of the population parameters marginal over the new user.

**Latent types.** For a new annotator of a :class:`~bayespref.LatentTypes` fit, :func:`type_draws`
gives the probabilities under each type k, :math:`P_{scky}`, and the log prior of the types
(membership model) per draw, from the family's
:meth:`~bayespref.models.LatentTypes.type_differences` capability.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import xarray as xr

from bayespref.errors import ModelError
from bayespref.models import sites
from bayespref.models.likelihood import outcome_distribution

#: the outcome axis: P[..., 0] = P(a preferred), P[..., 1] = P(b preferred), P[..., 2] = P(tie)
OUTCOMES = ("a", "b", "tie")
#: outcome values of the long frame for each position of the outcome axis
OUTCOME_VALUES = (1.0, 0.0, 0.5)
#: outcome codes of the models (``y``) for each position of the outcome axis
OUTCOME_CODES = (1, 0, 2)
#: candidates per call of the model (bounds memory at draws x chunk)
CHUNK = 20000


@dataclasses.dataclass(frozen=True)
class OutcomeDraws:
    """Outcome probabilities ``p`` (S, C, Y) for S = chains x kept draws (chain-major), with the
    chain and draw coordinates of the draws used (to select a target's draws to match)."""

    p: np.ndarray
    chain: np.ndarray
    draw: np.ndarray
    max_draws: int = 1000
    seed: int = 0

    @property
    def n_draws(self) -> int:
        return int(self.p.shape[0])

    def select(self, da: xr.DataArray) -> np.ndarray:
        """The draws of ``da`` (dims chain, draw, ...) that match these outcome draws: (S, ...)."""
        sub = da.sel(chain=self.chain, draw=self.draw).transpose("chain", "draw", ...)
        v = np.asarray(sub.values)
        return v.reshape((-1,) + v.shape[2:])


def has_user_effects(fit) -> bool:
    """Whether the model gives each user effects of their own (new users then get a fresh draw)."""
    s = fit.sizes
    return bool(fit.model.effect_blocks(s["n_options"], s["n_features"]))


def outcome_draws(fit, pool, *, max_draws: int = 1000, seed: int = 0, new_user_draws: int = 8) -> OutcomeDraws:
    """:math:`P_{scy}` for the candidates of a :class:`~bayespref.analyses.design.candidates.Pool`.

    ``max_draws``: about this many posterior draws (every chain thinned evenly); ``new_user_draws``:
    draws of a new user's deviation averaged per posterior draw (see the module docstring).
    """
    data = pool.data
    n = data.n_comparisons
    new = np.flatnonzero(pool.new_user) if has_user_effects(fit) else np.zeros(0, dtype=int)
    reps = max(1, int(new_user_draws)) if new.size else 1
    # one call of the model per chunk: the new users' rows repeated (reps - 1) times more, each copy a
    # fresh draw of the new user's deviation (the model draws one per comparison)
    parts, coords = [], None
    chunk = max(1000, CHUNK // reps)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        extra = np.tile(new[(new >= start) & (new < start + chunk)], reps - 1)
        ds = fit.predict_draws(data.subset(np.r_[rows, extra]), seed=seed, max_draws=max_draws)
        coords = ds
        p = _stack(ds)
        if extra.size:
            pos = {int(r): i for i, r in enumerate(rows)}
            acc = p[:, : rows.size].copy()
            idx = np.array([pos[int(r)] for r in extra])
            np.add.at(acc, (slice(None), idx), p[:, rows.size:])
            counts = np.ones(rows.size)
            np.add.at(counts, idx, 1.0)
            p = acc / counts[None, :, None]
        parts.append(p)
    p = np.concatenate(parts, axis=1)
    return OutcomeDraws(p.astype(np.float32), np.asarray(coords["chain"].values), np.asarray(coords["draw"].values),
                        max_draws, seed)


def _stack(ds: xr.Dataset) -> np.ndarray:
    """(S, C, Y) from a ``predict_draws`` Dataset: P(a), P(b) and, with ties, P(tie)."""
    pa = np.asarray(ds[sites.P_A].transpose("chain", "draw", "comparison").values, dtype=np.float32)
    pa = pa.reshape((-1, pa.shape[-1]))
    if sites.P_TIE in ds:
        pt = np.asarray(ds[sites.P_TIE].transpose("chain", "draw", "comparison").values, dtype=np.float32)
        pt = pt.reshape((-1, pt.shape[-1]))
        out = np.stack([pa, 1.0 - pa - pt, pt], axis=-1)
    else:
        out = np.stack([pa, 1.0 - pa], axis=-1)
    return np.clip(out, 0.0, 1.0)


# -- latent types ----------------------------------------------------------------------------------------
def require_types(fit, what: str) -> None:
    """A ModelError unless the fit's family has latent types without user deviations."""
    spec = fit.model
    if not spec.has_types:
        raise ModelError(f"{what} needs a model with latent user types (e.g. bayespref.LatentTypes(n_types=K)); "
                         f"this fit is {spec.family}, which has no type membership to learn.")
    if has_user_effects(fit):
        raise ModelError(f"{what}: this {spec.family} model gives every user a deviation from their type "
                         "(user_deviations=True), which a new annotator's few judgements cannot separate from "
                         "the type; refit with user_deviations=False to design onboarding judgements.")


def type_draws(fit, data, covariates: np.ndarray, *, max_draws: int = 1000) -> tuple[np.ndarray, np.ndarray, tuple]:
    r"""Per-type outcome probabilities of the comparisons ``data`` for one new user.

    Parameters
    ----------
    data : Comparisons
        Comparisons encoded against ``fit.data`` (their users are ignored: all are the new user's).
    covariates : array (P,)
        The new user's design row of the membership model's covariates (empty without covariates).

    Returns
    -------
    p : array (S, C, K, Y)
        :math:`p(y \mid \theta_s, z = k, c)`.
    log_prior : array (S, K)
        :math:`\log P(z = k \mid \theta_s, \text{covariates})`.
    draws : (chain, draw)
        Coordinates of the posterior draws used.
    """
    require_types(fit, "A membership target")
    spec = fit.model
    sizes = spec.sizes(fit.data)
    post = fit.idata.posterior
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    keep = np.arange(n_draws)
    if n_chains * n_draws > max_draws:
        keep = np.unique(np.linspace(0, n_draws - 1, -(-max_draws // n_chains)).round().astype(int))
    arrays = dict(spec.arrays(data, with_outcome=False))
    arrays["covariates"] = jnp.asarray(np.asarray(covariates, dtype=float).reshape(1, -1))
    names = _type_sites(spec, arrays, sizes)
    samples = {k: jnp.asarray(np.asarray(post[k].transpose("chain", "draw", ...).values)[:, keep].reshape(
        (-1,) + post[k].shape[2:])) for k in names}

    n_draws = len(next(iter(samples.values())))
    batched = n_draws * data.n_comparisons * spec.n_types > 2e7   # bound memory: draws in batches
    p, log_prior = _type_fn(spec, sizes, batched)(arrays, samples)
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum(-1, keepdims=True)
    return p.astype(np.float32), np.asarray(log_prior, dtype=np.float64), (post["chain"].values,
                                                                           post["draw"].values[keep])


#: compiled per-type probability functions, one per (spec, sizes, batched): a new annotator's every
#: question reuses the same compiled code (the arrays and draws are arguments)
_TYPE_FNS: dict = {}


def _type_fn(spec, sizes: dict, batched: bool):
    """``f(arrays, samples) -> (p (S, C, K, Y), log_prior (S, K))``, jitted and cached."""
    try:
        key = (spec, tuple(sorted(sizes.items())), batched)
        hash(key)
    except TypeError:
        key = (id(spec), tuple(sorted(sizes.items())), batched)
    if key not in _TYPE_FNS:
        def one(arrays, draw):
            with numpyro.handlers.seed(rng_seed=0), numpyro.handlers.substitute(data=draw):
                parts = spec.type_differences(arrays, sizes)
            dist = outcome_distribution(parts["d"], link=spec.link, log_tie=parts["log_tie"],
                                        half_ties=spec.half_ties)
            n_out = 3 if parts["log_tie"] is not None else 2
            shape = parts["d"].shape
            probs = [jnp.exp(dist.log_prob(jnp.full(shape, float(code)) if spec.half_ties
                                           else jnp.full(shape, code, dtype=jnp.int32)))
                     for code in OUTCOME_CODES[:n_out]]
            return jnp.stack(probs, -1), parts["log_prior"][0]

        if batched:
            _TYPE_FNS[key] = jax.jit(lambda arrays, samples: jax.lax.map(lambda d: one(arrays, d), samples,
                                                                         batch_size=64))
        else:
            _TYPE_FNS[key] = jax.jit(jax.vmap(one, in_axes=(None, 0)))
    return _TYPE_FNS[key]


def _type_sites(spec, arrays, sizes) -> list[str]:
    """The posterior sites that ``type_differences`` samples."""
    def probe():
        spec.type_differences(arrays, sizes)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(probe, 0)).get_trace()
    return [k for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]]
