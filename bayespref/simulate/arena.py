r"""A simulated Chatbot-Arena-style table with judge demographics and known per-group preferences.

Judge :math:`u` of region :math:`g(u)` holds log-worths

.. math::

    \theta_{u} = \text{base} + \text{shift}_{g(u)} + \eta_u,\qquad \eta_{u,i} \sim N(0, \text{user\_sd}^2),

centred over the models; a battle between models :math:`a` and :math:`b` ends by Davidson's model
with tie parameter :math:`\nu = e^{\text{log\_tie}}`:
:math:`P(a) \propto e^{d/2}`, :math:`P(b) \propto e^{-d/2}`, :math:`P(\text{tie}) \propto \nu`, with
:math:`d = \theta_{u,a} - \theta_{u,b}`. The output is the raw tables a user of Arena data has: the
battles (``model_a``, ``model_b``, ``winner``, ``judge``, ``question_id``) and a judge table indexed
by judge id (``region``), ready for
:meth:`Comparisons.from_arena <bayespref.Comparisons.from_arena>` with ``user_covariates=``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bayespref.errors import DataError

#: the default models, their base log-worths and the regions' shifts (asia prefers the last model and
#: less the first; europe prefers the fourth and less the second; americas is the reference)
MODELS = ("gpt-x", "claude-y", "llama-z", "mistral-w", "gemini-v", "qwen-u")
BASE = (1.0, 0.8, 0.0, -0.3, 0.4, -0.9)
SHIFTS = {"americas": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
          "asia": (-0.6, 0.0, 0.0, 0.0, 0.0, 0.9),
          "europe": (0.0, -0.5, 0.0, 0.7, 0.0, 0.0)}


@dataclasses.dataclass(frozen=True)
class SimulatedArena:
    """``battles`` and ``judges`` (the raw tables) and ``truth``: ``worth`` (judge, model) centred
    log-worths, ``group_worth`` (region, model) centred region means, ``shift`` (region, model)
    the planted shifts, all as labelled DataFrames."""

    battles: pd.DataFrame
    judges: pd.DataFrame
    truth: dict


def arena(n_judges: int = 60, battles_per_judge: int = 15, n_questions: int = 30, *, models=MODELS, base=BASE,
          shifts=None, user_sd: float = 0.2, log_tie: float = -2.0, seed: int = 0) -> SimulatedArena:
    """Simulate Arena battles by judges of several regions (see the module docstring).

    Parameters
    ----------
    n_judges, battles_per_judge, n_questions : int
        Judges (assigned to the regions in turn), battles per judge, distinct question ids.
    models, base : sequences
        Model names and their base log-worths.
    shifts : dict, optional
        Region -> shift of each model's log-worth (default :data:`SHIFTS`).
    user_sd : float
        SD of each judge's own deviations.
    log_tie : float
        Davidson's log tie parameter (``-inf`` for no ties).
    seed : int
        Same seed, same tables.

    Examples
    --------
    >>> sim = arena(n_judges=30, seed=1)
    >>> data = Comparisons.from_arena(sim.battles, user_covariates=sim.judges)   # doctest: +SKIP
    """
    shifts = dict(SHIFTS if shifts is None else shifts)
    base = np.asarray(base, dtype=float)
    models = np.asarray(models, dtype=object)
    if base.shape != (len(models),) or any(np.shape(v) != base.shape for v in shifts.values()):
        raise DataError(f"arena(): base and every shift need one value per model ({len(models)}).")
    if n_judges < 1 or battles_per_judge < 1 or n_questions < 1 or len(models) < 2:
        raise DataError("arena(): n_judges, battles_per_judge and n_questions must be >= 1, with >= 2 models.")
    rng = np.random.default_rng(seed)
    regions = list(shifts)
    judges = pd.DataFrame({"region": [regions[i % len(regions)] for i in range(n_judges)]},
                          index=pd.Index([f"judge{i:03d}" for i in range(n_judges)], name="judge"))
    shift = np.stack([np.asarray(shifts[r], dtype=float) for r in regions])
    group = np.stack([base + s for s in shift])
    group -= group.mean(1, keepdims=True)
    g = np.array([regions.index(r) for r in judges["region"]])
    worth = group[g] + rng.normal(0.0, user_sd, (n_judges, len(models)))
    worth -= worth.mean(1, keepdims=True)
    u = np.repeat(np.arange(n_judges), battles_per_judge)
    a = rng.integers(0, len(models), u.size)
    b = (a + rng.integers(1, len(models), u.size)) % len(models)
    d = worth[u, a] - worth[u, b]
    p = np.exp(np.stack([d / 2, -d / 2, np.full_like(d, log_tie)], -1))
    p /= p.sum(-1, keepdims=True)
    code = (rng.random(u.size)[:, None] > np.cumsum(p, -1)).sum(-1)
    battles = pd.DataFrame({"model_a": models[a], "model_b": models[b],
                            "winner": np.array(["model_a", "model_b", "tie"], dtype=object)[code],
                            "judge": judges.index[u], "question_id": rng.integers(0, n_questions, u.size)})
    cols = pd.Index(models.astype(str), name="model")
    truth = {"worth": pd.DataFrame(worth, index=judges.index, columns=cols),
             "group_worth": pd.DataFrame(group, index=pd.Index(regions, name="region"), columns=cols),
             "shift": pd.DataFrame(shift, index=pd.Index(regions, name="region"), columns=cols)}
    return SimulatedArena(battles=battles, judges=judges, truth=truth)
