r"""Simulation-based calibration (SBC) for any model family (Talts et al. 2018).

For :math:`i = 1..N_{sim}`: draw :math:`\tilde\theta_i \sim p(\theta)` and
:math:`\tilde y_i \sim p(y \mid \tilde\theta_i)` on a fixed design (the comparisons, users, features
and covariates of ``data``; its outcomes are ignored), fit :math:`p(\theta \mid \tilde y_i)` by
NUTS, thin to :math:`L` draws and record, for every scalar parameter, the rank

.. math:: r_i = \#\{\ell : \theta^{(\ell)} < \tilde\theta_i\} \in \{0, \dots, L\}.

If the sampler and the model code are right, :math:`r_i` is uniform on :math:`\{0..L\}`. The ranks
are binned into ``bins`` equal bins and tested with Pearson's chi-square (``bins - 1`` degrees of
freedom); a parameter fails when its p-value is below ``alpha`` (0.01). A model whose simulation
and inference disagree (a sign error in the likelihood, a prior that is not the one simulated
from) gives U-shaped, humped or sloped histograms and small p-values.

All fits reuse one compiled NUTS sampler (bayespref's driver caches it by model and data shape: the
design has the same shapes in every simulation, only the outcomes change, so nothing is compiled
after the first fit). SVI is deliberately not offered: its approximate posteriors fail SBC by construction.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd
import xarray as xr
from numpyro.infer import Predictive
from scipy import stats

from bayespref.checks.plots import rank_histograms
from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError, ModelError
from bayespref.inference.engine import NutsSettings, as_key, latent_sites, run_nuts
from bayespref.inference.fit import sample_checks
from bayespref.models import as_spec as _as_spec
from bayespref.models.plackett_luce import ranking_data

#: simulations between releases of compiled code (about 650 memory maps per run are kept otherwise)
RELEASE_EVERY = 40


@dataclasses.dataclass
class SBCResult:
    """The result of :func:`sbc`.

    Attributes
    ----------
    ranks : xarray.DataArray
        (simulation, parameter) ranks in 0..n_draws.
    n_draws : int
        L, the number of thinned posterior draws the ranks are counted over.
    table : pandas.DataFrame
        Per parameter: ``chi2``, ``p_value``, ``passes`` (p >= alpha), ``mean_rank`` (scaled to
        [0, 1]; 0.5 expected).
    alpha, bins : float, int
    divergences : numpy.ndarray
        Divergent transitions per simulation.
    """

    ranks: xr.DataArray
    n_draws: int
    table: pd.DataFrame
    alpha: float
    bins: int
    divergences: np.ndarray

    @property
    def passes(self) -> bool:
        """True when every parameter's rank histogram passes the uniformity test."""
        return bool(self.table["passes"].all())

    @property
    def min_p(self) -> float:
        return float(self.table["p_value"].min())

    def plot(self, ncols: int = 4):
        """Rank histograms with the 99% band of a uniform histogram; returns the Figure."""

        return rank_histograms(self, ncols=ncols)

    def __repr__(self):
        return (f"<SBCResult {self.ranks.sizes['simulation']} simulations, L = {self.n_draws}, "
                f"{self.bins} bins: {'passes' if self.passes else 'FAILS'} (min p = {self.min_p:.3g}, "
                f"alpha = {self.alpha})>\n" + self.table.round(3).to_string())


def _flatten(name, arr, n_lead):
    """(lead..., *shape) -> (lead..., prod(shape)) and element labels."""
    arr = np.asarray(arr)
    shape = arr.shape[n_lead:]
    flat = arr.reshape(arr.shape[:n_lead] + (-1,))
    if not shape:
        return flat, [name]
    labels = [f"{name}[{', '.join(map(str, idx))}]" for idx in np.ndindex(*shape)]
    return flat, labels


def sbc(model, data, n_sims: int = 100, var_names=None, chains: int = 2, warmup: int = 300, draws: int = 500,
        n_ranks: int = 99, bins: int = 10, alpha: float = 0.01, target_accept: float = 0.9, seed: int = 0,
        simulate_from=None, progress: bool = False) -> SBCResult:
    """Simulation-based calibration of a model on the design of ``data``.

    Parameters
    ----------
    model : ModelSpec or callable
        The model fitted (a family spec or a NumPyro function under the model-function contract).
    data : Comparisons
        The design (comparisons, users, features, covariates); outcomes are replaced by simulations.
        Keep it small: SBC fits the model ``n_sims`` times.
    n_sims : int
        Number of simulations (>= 100 for a test with some power).
    var_names : list of str, optional
        Parameters whose ranks are computed (every element of each). Default: the spec's
        summary variables (``summary_vars``), or every latent site of a custom model.
    chains, warmup, draws, target_accept : NUTS settings of each fit.
    n_ranks : int
        L + 1 ... the posterior draws are thinned to ``n_ranks`` draws (less autocorrelated);
        must not exceed chains x draws.
    bins, alpha : int, float
        Histogram bins of the chi-square test and its level.
    simulate_from : ModelSpec or callable, optional
        Simulate from this model's prior instead (a prior-mismatch check: SBC should fail).
    progress : bool
        Show a progress bar over simulations.

    Returns
    -------
    SBCResult
    """

    if not (isinstance(data, Comparisons) or ranking_data(data)):
        raise DataError(f"sbc needs a bayespref.Comparisons or Rankings design as `data`, got {type(data).__name__}.")
    if not isinstance(n_sims, (int, np.integer)) or n_sims < 2:
        raise ModelError(f"n_sims={n_sims!r}: use an integer >= 2 (>= 100 for a real test).")
    total = chains * draws
    if not 2 <= n_ranks <= total:
        raise ModelError(f"n_ranks={n_ranks} must be between 2 and chains x draws = {total}.")
    if not 2 <= bins <= n_ranks + 1:
        raise ModelError(f"bins={bins} must be between 2 and n_ranks + 1.")
    spec = _as_spec(model)
    sim_spec = spec if simulate_from is None else _as_spec(simulate_from)
    spec.check(data)
    fn = spec.bind(data)
    sim_fn = sim_spec.bind(data)
    arrays = spec.arrays(data, with_outcome=False)
    sim_arrays = sim_spec.arrays(data, with_outcome=False)
    outcome = "level" if ranking_data(data) else "y"  # the outcome array of the model's inputs
    names = list(var_names) if var_names is not None else (spec.summary_vars(spec.sizes(data))
                                                           or latent_sites(fn, spec.arrays(data)))
    key_prior, key_fit = jax.random.split(as_key(seed))
    prior = Predictive(sim_fn, num_samples=int(n_sims))(key_prior, sim_arrays)
    missing = [v for v in names if v not in prior]
    if missing:
        raise ModelError(f"var_names {missing} are not sites of the simulating model; it has {sorted(prior)}.")
    truth, labels = [], []
    for v in names:
        flat, lab = _flatten(v, prior[v], 1)
        truth.append(flat)
        labels += lab
    truth = np.concatenate(truth, axis=1)  # (n_sims, P)
    y_sim = np.asarray(prior["y"])

    settings = NutsSettings(chains=chains, warmup=warmup, draws=draws, target_accept=target_accept, progress=False)
    keep = np.linspace(0, total - 1, n_ranks).round().astype(int)
    ranks = np.zeros((n_sims, len(labels)), dtype=int)
    div = np.zeros(n_sims, dtype=int)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_sims, desc="SBC", unit="fit")
    keys = jax.random.split(key_fit, n_sims)
    for i in range(n_sims):  # one fit per simulation, one compiled sampler for all
        if i and i % RELEASE_EVERY == 0:
            # each MCMC.run also compiles a few small helpers (initialisation, post-processing)
            # whose machine code XLA keeps; release it now and then, or a long run exhausts the
            # process's memory maps
            jax.clear_caches()
        y = y_sim[i]
        if y.dtype.kind == "f":  # ties="half" simulations are 0/1 win fractions
            y = y.astype(np.float32)
        with sample_checks(spec):
            run = run_nuts(fn, {**arrays, outcome: jax.numpy.asarray(y)}, keys[i], settings, log_likelihood=False)
        post = {v: run.samples[v].reshape((-1,) + run.samples[v].shape[2:]) for v in names}
        draws_i = np.concatenate([_flatten(v, post[v], 1)[0] for v in names], axis=1)[keep]  # (L, P)
        ranks[i] = (draws_i < truth[i]).sum(0)
        div[i] = int(run.stats["diverging"].sum())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    L = n_ranks
    edges = np.linspace(0, L + 1, bins + 1)
    counts = np.stack([np.histogram(ranks[:, j], bins=edges)[0] for j in range(len(labels))])
    chi2, p = stats.chisquare(counts, axis=1)
    table = pd.DataFrame({"chi2": chi2, "p_value": p, "passes": p >= alpha, "mean_rank": ranks.mean(0) / L},
                         index=pd.Index(labels, name="parameter"))
    da = xr.DataArray(ranks, dims=("simulation", "parameter"), coords={"parameter": labels})
    return SBCResult(ranks=da, n_draws=L, table=table, alpha=float(alpha), bins=int(bins), divergences=div)
