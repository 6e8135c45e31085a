"""The paper's two experiments, and the checks of the causal layer, on simulators with known truth.

Each function runs one study over a grid and seeds and returns a tidy DataFrame (one row per
setting x seed x model); :func:`summarise_runs` averages over seeds (mean and standard error).
They back the slow tests (``tests/analyses/test_causal_studies.py``), the benchmark scripts
(``benchmarks/bench_causal.py``) and notebook 03. Accuracies are reported twice: against the simulated
outcomes (``acc_*``, the paper's metric) and against the sign of the true reward difference
(``agree_*``, the same quantity without the Bernoulli noise of the outcomes).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayespref import simulate
from bayespref.analyses import causal, overlap
from bayespref.errors import ModelError
from bayespref.inference import fit
from bayespref.models import BradleyTerry, Conditioned, Hierarchical

__all__ = [
    "adjustment_study",
    "amce_study",
    "confounding_study",
    "erasure_study",
    "latent_positivity_study",
    "nonadditive_study",
    "orient",
    "summarise_runs",
    "table2_models",
]


def _quiet_fit(spec, data, method, seed, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(spec, data, method=method, seed=seed, progress=False, **kw)


def _acc_pair(f, data, truth):
    return causal.accuracy(f, data), causal.accuracy(f, data, truth=truth)


def latent_positivity_study(rhos=(0.0, 0.3, 0.6, 0.9), seeds=range(5), n_train: int = 2000,
                            n_test: int = 2000, noise_sd: float = 0.2, chains: int = 2, warmup: int = 400,
                            draws: int = 400, **sim_kw) -> pd.DataFrame:
    """Table 1 analogue: a linear Bradley-Terry reward on the features of
    :func:`bayespref.simulate.latent_positivity`, fitted by NUTS, for each ``rho`` (training
    correlation of the latent factor differences) and seed.

    Columns: ``rho``, ``seed``, ``acc_id``/``acc_ood`` and ``agree_id``/``agree_ood``
    (in-distribution and out-of-distribution test accuracy), ``orientation`` and
    ``orientation_sd`` (posterior mean and SD of atan2(w_x2, w_x1); truth atan2(1 - alpha,
    alpha)), ``share`` (observed share of informative training pairs of the latent factors) and
    ``share_gaussian`` (1/2 - arcsin(rho_hat)/pi from their observed correlation).
    """
    rows = []
    for rho in rhos:
        for seed in seeds:
            sim = simulate.latent_positivity(rho=rho, n_train=n_train, n_test=n_test, noise_sd=noise_sd,
                                             seed=seed, **sim_kw)
            parts = sim.split()
            f = _quiet_fit(BradleyTerry(worths=False), parts["train"], "nuts", seed, chains=chains,
                           warmup=warmup, draws=draws)
            w = f.idata.posterior["weight"]
            ang = np.arctan2(w.sel(feature="x2"), w.sel(feature="x1"))
            fr = sim.frame
            acc_id, agree_id = _acc_pair(f, parts["test_id"], fr.loc[sim.splits["test_id"], "reward_diff"])
            acc_ood, agree_ood = _acc_pair(f, parts["test_ood"], fr.loc[sim.splits["test_ood"], "reward_diff"])
            latent = sim.comparisons(features=["z1", "z2"]).subset(sim.splits["train"])
            info = overlap.informative_pairs(latent).iloc[0]
            rows.append({"rho": rho, "seed": seed, "acc_id": acc_id, "acc_ood": acc_ood, "agree_id": agree_id,
                         "agree_ood": agree_ood, "orientation": float(ang.mean()),
                         "orientation_sd": float(ang.std()), "share": info["share"],
                         "share_gaussian": info["share_gaussian"]})
    return pd.DataFrame(rows)


def table2_models(condition: str = "objective", sparse: bool = False, weighted: bool = False) -> dict:
    """The models compared on the confounding simulator.

    * ``pooled``: ``BradleyTerry(worths=False)``, ignores C;
    * ``base``: C as one more input, interacting with every feature, no pooling learned
      (``Hierarchical(varying="features", covariates=[C], random_effects=False, group_scale=2.5)``);
    * ``multihead``: ``Conditioned(C)``, partially pooled heads;
    * ``balanced``: ``Conditioned(C, balance=True)``, heads on features with C linearly erased;
    * ``sparse`` (with ``sparse=True``): ``Conditioned(C, head_prior="sparse")``, heads pooled
      under a global-local prior on their differences;
    * ``weighted`` (with ``weighted=True``): ``Conditioned(C, balance="weights")``, the multihead model
      fitted with stabilised propensity weights that balance the features' levels and spreads
      across C (:func:`bayespref.causal.balance_weights`).
    """
    out = {
        "pooled": BradleyTerry(worths=False),
        "base": Hierarchical(varying="features", covariates=[condition], random_effects=False, group_scale=2.5),
        "multihead": Conditioned(condition),
        "balanced": Conditioned(condition, balance=True),
    }
    if sparse:
        out["sparse"] = Conditioned(condition, head_prior="sparse")
    if weighted:
        out["weighted"] = Conditioned(condition, balance="weights")
    return out


def confounding_study(rhos=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0), seeds=range(3), models=None, n_users: int = 100,
                      comparisons_per_user: int = 60, n_test: int = 4000, method: str = "svi",
                      fit_kw=None, simulator: str = "objective", **sim_kw) -> pd.DataFrame:
    """Table 2 analogue on :func:`bayespref.simulate.confounded_objective` (``simulator="objective"``)
    or :func:`bayespref.simulate.confounded_shared` (``simulator="shared"``: many features, sparse
    conflict, a shared representation to pool; the default models then include ``sparse`` and
    ``weighted``).

    For every ``rho`` and seed, each model of :func:`table2_models` (or ``models``) is fitted on the
    training split (SVI by default) and scored on the train/test, consistent (t = c) and
    inconsistent (t != c) splits. The overlap diagnostics are run on the training data with the
    (hidden) prompt type: ``warned`` says whether they warned about an empty (group, prompt type)
    cell. Columns: ``rho``, ``seed``, ``model``, ``acc_<split>``, ``agree_<split>`` for the splits
    ``train_consistent``, ``train_inconsistent``, ``test_consistent``, ``test_inconsistent``
    (NaN where a split is empty), ``warned``, ``erased`` (rank of the linear erasure of C fitted by
    the balanced model: 0 when the features carry no linear information about C); for a model with
    ``balance="weights"`` also ``w_ess_share`` (smallest effective sample size share of the weights
    over the levels of C) and ``w_max`` (largest weight).
    """
    sims = {"objective": simulate.confounded_objective, "shared": simulate.confounded_shared}
    if simulator not in sims:
        raise ModelError(f"simulator={simulator!r}: use one of {list(sims)}.")
    shared = simulator == "shared"
    models = table2_models(sparse=shared, weighted=shared) if models is None else models
    fit_kw = dict(fit_kw or {})
    rows = []
    for rho in rhos:
        for seed in seeds:
            sim = sims[simulator](rho=rho, n_users=n_users, comparisons_per_user=comparisons_per_user,
                                  n_test=n_test, seed=seed, **sim_kw)
            parts = sim.split()
            erased = causal.erase(parts["train"], "objective").erased_rank
            train_t = sim.frame.loc[sim.splits["train"], "prompt_type"].to_numpy()
            rep = overlap.diagnose(parts["train"], "objective", prompt_type=train_t, warn=False)
            warned = any("No comparisons" in m for m in rep.messages)
            for name, spec in models.items():
                f = _quiet_fit(spec, parts["train"], method, seed, **fit_kw)
                row = {"rho": rho, "seed": seed, "model": name, "warned": warned, "erased": erased}
                if getattr(spec, "balance_mode", None) == "weights":
                    summ = spec.balance_weights(parts["train"]).summary()
                    row["w_ess_share"], row["w_max"] = float(summ["ess_share"].min()), float(summ["max_weight"].max())
                for split in ("train_consistent", "train_inconsistent", "test_consistent", "test_inconsistent"):
                    if parts[split].n_comparisons == 0:
                        row[f"acc_{split}"] = row[f"agree_{split}"] = np.nan
                        continue
                    truth = sim.frame.loc[sim.splits[split], "reward_diff"]
                    row[f"acc_{split}"], row[f"agree_{split}"] = _acc_pair(f, parts[split], truth)
                rows.append(row)
    return pd.DataFrame(rows)


def erasure_study(rhos=(0.5, 0.8, 0.9, 1.0), seeds=range(5), n_users: int = 100, comparisons_per_user: int = 20,
                  **sim_kw) -> pd.DataFrame:
    r"""What linear erasure of C removes on :func:`bayespref.simulate.confounded_shared` (no fits).

    For every ``rho`` and seed: the rank of the erasure (:func:`bayespref.causal.erase`) fitted on
    the training data, and how well C is predicted before and after erasure (AUC on an independent
    sample of the same size and ``rho``, seed + 10000, of a ridge logistic regression fitted on the
    training data, as in :func:`bayespref.overlap.propensity`) from

    * ``level``: the response features themselves, :math:`(x_a + x_b)/2` (linear information: the
      part erasure targets), and
    * ``spread``: :math:`|x_a - x_b|` (which features vary in a comparison: second moments, out of
      reach of any linear erasure),

    plus ``diff_change``: how much erasure moves the within-prompt feature differences other than
    ``topic`` (what the reward sees): root mean square change over comparisons in units of the
    difference's SD, largest over features.
    """
    rows = []
    for rho in rhos:
        for seed in seeds:
            kw = dict(rho=rho, n_users=n_users, comparisons_per_user=comparisons_per_user, n_test=10, **sim_kw)
            train = simulate.confounded_shared(seed=seed, **kw).split()["train"]
            fresh = simulate.confounded_shared(seed=seed + 10_000, **kw).split()["train"]
            er = causal.erase(train, "objective")
            topic = list(train.feature_names).index("topic")
            xa, xb = np.asarray(train.xa), np.asarray(train.xb)
            diff = np.delete(xa - xb, topic, 1)
            moved = np.delete(er.transform(xa) - er.transform(xb), topic, 1)
            row = {"rho": rho, "seed": seed, "erased": er.erased_rank,
                   "diff_change": float((np.sqrt(np.mean((moved - diff) ** 2, 0)) / diff.std(0)).max())}
            y_tr = (overlap._group_of(train, "objective") == 1).astype(float)
            y_te = (overlap._group_of(fresh, "objective") == 1).astype(float)
            for name, f in (("raw", lambda x: np.asarray(x, float)), ("erased", er.transform)):
                pa, pb = f(train.xa), f(train.xb)
                qa, qb = f(fresh.xa), f(fresh.xb)
                row[f"auc_level_{name}"] = _holdout_auc((pa + pb) / 2, y_tr, (qa + qb) / 2, y_te)
                row[f"auc_spread_{name}"] = _holdout_auc(np.abs(pa - pb), y_tr, np.abs(qa - qb), y_te)
            rows.append(row)
    return pd.DataFrame(rows)


def _holdout_auc(X, y, X_new, y_new):
    """AUC on (X_new, y_new) of a ridge logistic regression of y on X (columns standardised on X)."""
    m, sd = X.mean(0), X.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    beta = overlap._logistic_fit((X - m) / sd, y, 1.0)
    return overlap._auc(beta[0] + ((X_new - m) / sd) @ beta[1:], y_new)


def orient(frame: pd.DataFrame, feature: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Swap a and b (ids and ``*_a``/``*_b`` columns) where ``<feature>_a < <feature>_b``, so that
    ``a`` is the option with the larger feature; returns the frame and the swapped-rows mask."""
    out = frame.copy()
    swap = (out[f"{feature}_a"] < out[f"{feature}_b"]).to_numpy()
    for col in [c for c in out.columns if c.endswith("_a")]:
        other = col[:-2] + "_b"
        va, vb = out[col].to_numpy().copy(), out[other].to_numpy().copy()
        out[col], out[other] = np.where(swap, vb, va), np.where(swap, va, vb)
    a, b = out["a"].to_numpy().copy(), out["b"].to_numpy().copy()
    out["a"], out["b"] = np.where(swap, b, a), np.where(swap, a, b)
    return out, swap


def adjustment_study(seeds=range(10), rho: float = 0.9, group: int = 0, prompts_of: int = 1,
                     n_users: int = 60, comparisons_per_user: int = 50, method: str = "nuts", ci_prob: float = 0.9,
                     fit_kw=None, **sim_kw) -> pd.DataFrame:
    r"""Confounder adjustment with C observed: the preference of group ``group`` on the prompts of
    group ``prompts_of``, for pairs oriented so that ``a`` is the more compliant response,

    .. math::

        \tau = \frac{1}{N'} \sum_{n: C_{u_n} = c'} \sigma\big(r_c(a_n) - r_c(b_n)\big),

    estimated by the conditioned model (adjusted: head c) and by the pooled model (naive: ignores
    C, so it answers with the preferences of the users who wrote those prompts). Columns: ``seed``,
    ``model``, ``truth``, ``mean``, ``lower``, ``upper``, ``covers``, ``bias`` (mean - truth).
    """
    fit_kw = dict({"chains": 2, "warmup": 500, "draws": 500} if method == "nuts" else {}, **(fit_kw or {}))
    rows = []
    for seed in seeds:
        sim = simulate.confounded_objective(rho=rho, n_users=n_users, comparisons_per_user=comparisons_per_user,
                                            n_test=10, seed=seed, **sim_kw)
        train = sim.split()["train"]
        fr = sim.frame[sim.splits["train"]].reset_index(drop=True)
        fr = fr[fr["objective"] == prompts_of]
        pairs, swap = orient(fr, "comply")
        d = fr[f"reward_diff_c{group}"].to_numpy()
        truth = float(np.mean(1 / (1 + np.exp(-np.where(swap, -d, d)))))
        for name, spec in (("adjusted", Conditioned("objective")), ("naive", BradleyTerry(worths=False))):
            f = _quiet_fit(spec, train, method, seed, **fit_kw)
            est = causal.interventional(f, pairs, condition="objective" if name == "adjusted" else None,
                                        group=group if name == "adjusted" else None)
            s = causal.summary(est, ci_prob).iloc[0]
            rows.append({"seed": seed, "model": name, "truth": truth, "mean": s["mean"], "lower": s["lower"],
                         "upper": s["upper"], "covers": bool(s["lower"] <= truth <= s["upper"]),
                         "bias": s["mean"] - truth})
    return pd.DataFrame(rows)


def nonadditive_study(seeds=range(3), n_prompts: int = 1000, n_test: int = 2000, chains: int = 2,
                      warmup: int = 400, draws: int = 400, **sim_kw) -> pd.DataFrame:
    """Non-additive prompt effects: the additive model (``len``, ``len2`` and the prompt feature
    ``task``) against the interaction model (``len``, ``len2``, ``len_task``), NUTS.

    Columns: ``seed``, ``model``, ``acc_test``/``agree_test``, ``acc_between``/``agree_between``
    (test pairs with both lengths between the two ideal points), ``task_mean``/``task_sd``
    (posterior of the additive model's prompt term; prior N(0, 2.5^2): it cancels and stays there).
    """
    rows = []
    models = {"additive": BradleyTerry(worths=False, features=["len", "len2", "task"]),
              "interaction": BradleyTerry(worths=False, features=["len", "len2", "len_task"])}
    for seed in seeds:
        sim = simulate.nonadditive_prompt(n_prompts=n_prompts, n_test=n_test, seed=seed, **sim_kw)
        parts = sim.split()
        for name, spec in models.items():
            f = _quiet_fit(spec, parts["train"], "nuts", seed, chains=chains, warmup=warmup, draws=draws)
            row = {"seed": seed, "model": name}
            for split, key in (("test", "test"), ("test_between", "between")):
                row[f"acc_{key}"], row[f"agree_{key}"] = _acc_pair(
                    f, parts[split], sim.frame.loc[sim.splits[split], "reward_diff"])
            if name == "additive":
                t = f.idata.posterior["weight"].sel(feature="task")
                row["task_mean"], row["task_sd"] = float(t.mean()), float(t.std())
            rows.append(row)
    return pd.DataFrame(rows)


def amce_study(seeds=range(5), effects=(1.0, -0.5, 0.5), interaction: float = 0.8, probs=(0.5, 0.3, 0.5),
               n_comparisons: int = 2000, chains: int = 2, warmup: int = 400, draws: int = 400,
               ci_prob: float = 0.9) -> pd.DataFrame:
    r"""AMCE of ``f1`` on :func:`bayespref.simulate.binary_factors` under the uniform and the
    empirical reference distributions, against the analytic value
    :math:`(1 - m_2)\sigma(\beta_1) + m_2 \sigma(\beta_1 + \gamma)` (m_2 = 1/2 uniform, p_2
    empirical). The model has the features f1, f2, f3 and f1f2 (NUTS); the AMCE's ``design``
    recomputes the product for every profile. Columns: ``seed``, ``reference``, ``truth``,
    ``mean``, ``lower``, ``upper``, ``covers``.
    """
    rows = []
    b1, p2 = effects[0], probs[1]
    sig = lambda v: 1 / (1 + np.exp(-v))
    K = len(effects)
    factors = [f"f{k + 1}" for k in range(K)]
    uniform = pd.DataFrame(np.array(np.meshgrid(*[[0.0, 1.0]] * K)).reshape(K, -1).T, columns=factors)

    def design(prof):
        return prof.assign(f1f2=prof["f1"] * prof["f2"])

    for seed in seeds:
        sim = simulate.binary_factors(effects, interaction, probs, n_comparisons=n_comparisons, seed=seed)
        data = sim.comparisons()
        f = _quiet_fit(BradleyTerry(worths=False), data, "nuts", seed, chains=chains, warmup=warmup, draws=draws)
        observed = pd.DataFrame(np.vstack([np.asarray(data.xa)[:, :K], np.asarray(data.xb)[:, :K]]), columns=factors)
        emp_m2 = float(observed["f2"].mean())
        for ref, profiles, m2 in (("uniform", uniform, 0.5), ("empirical", observed, emp_m2)):
            est = causal.amce(f, "f1", reference=profiles, design=design)
            s = causal.summary(est, ci_prob).iloc[0]
            truth = (1 - m2) * sig(b1) + m2 * sig(b1 + interaction)
            rows.append({"seed": seed, "reference": ref, "truth": truth, "truth_population":
                         (1 - (0.5 if ref == "uniform" else p2)) * sig(b1) + (0.5 if ref == "uniform" else p2)
                         * sig(b1 + interaction), "mean": s["mean"], "lower": s["lower"], "upper": s["upper"],
                         "covers": bool(s["lower"] <= truth <= s["upper"])})
    return pd.DataFrame(rows)


def summarise_runs(runs: pd.DataFrame, by, columns=None) -> pd.DataFrame:
    """Mean and standard error over seeds of the numeric ``columns``, grouped by ``by``."""
    columns = columns or [c for c in runs.columns if c not in (by if isinstance(by, list) else [by]) + ["seed"]
                          and pd.api.types.is_numeric_dtype(runs[c])]
    g = runs.groupby(by)[columns]
    mean, se = g.mean(), g.std(ddof=1) / np.sqrt(g.count())
    return pd.concat({"mean": mean, "se": se}, axis=1)
