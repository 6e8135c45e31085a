r"""Which judgements to collect next: Bayesian experimental design for preference data.

Human judgements are the expensive part of preference learning. A posterior already says where it
is uncertain; this package says which judgements would reduce that uncertainty most *for the
question asked* (the target), and which users or groups to ask.

* :func:`score` -- every candidate judgement (a pair of options, optionally features, a prompt and
  the user or group who would judge it) with its expected information gain (EIG) about a target,
  computed from the posterior draws with the model's own NumPyro function and jitted JAX over
  (draws x candidates) (:mod:`~bayespref.analyses.design.eig` has the estimators and their bias);
* targets (:mod:`~bayespref.analyses.design.targets`): :func:`parameters` (default),
  :func:`contrast` (a group contrast), :func:`top_k` (the ranking of the top k options),
  :func:`membership` (one user's latent type), :func:`weight` (a feature weight), :func:`amce`,
  :func:`predictions` (a named test set), :func:`from_draws` (any estimand as draws);
* :func:`select` -- a batch of n judgements at once (greedy conditional EIG: a linearised ensemble
  update or fantasised outcomes), honouring budgets per user or group and excluding pairs already
  judged (:mod:`~bayespref.analyses.design.batch`); :func:`expected_target_sd` -- what any batch
  would do to a target's SD;
* :class:`Onboarding` -- few-shot onboarding of a new annotator of a latent-types model: the next
  most informative comparison, answer by answer;
* :func:`overlap_breaking` -- for features whose differences move together, one-factor comparisons
  (vary one, hold the other) and the expected reduction of the posterior SD of the weight;
  :func:`one_factor_pairs`, :func:`pool_one_factor`, :func:`feature_overlap`, :func:`most_entangled`;
* :func:`sequential` -- the simulation loop design -> judge (known truth) -> refit -> design for
  EIG, uncertainty sampling and random selection; :func:`plot_sequential`, :func:`plot_scores`.

Reach it as ``bp.design`` (``import bayespref as bp``). Example::

    pool = pd.DataFrame({"a": [...], "b": [...], "user": [...]})          # what could be asked
    ranked = bp.design.score(fit, pool, bp.design.contrast("group", "B", "A", effect="x0"))
    batch = bp.design.select(fit, pool, bp.design.weight("x0"), n=50, budget=5, exclude_judged=True)

The command line: ``bayespref design FIT.nc CANDIDATES.csv --target contrast --by group --levels B A
--effect x0 --out ranked.csv``.
"""

from bayespref.analyses.design.batch import expected_target_sd, select
from bayespref.analyses.design.candidates import Pool, prepare
from bayespref.analyses.design.eig import nested_eig
from bayespref.analyses.design.loop import SequentialResult, sequential
from bayespref.analyses.design.onboarding import Onboarding, TypeState, all_pairs
from bayespref.analyses.design.overlap_breaking import (
    OverlapBreaking,
    feature_overlap,
    most_entangled,
    one_factor_pairs,
    overlap_breaking,
    pool_one_factor,
)
from bayespref.analyses.design.plots import plot_scores, plot_sequential
from bayespref.analyses.design.scoring import problem, score
from bayespref.analyses.design.targets import (
    Target,
    amce,
    contrast,
    from_draws,
    membership,
    parameters,
    predictions,
    top_k,
    weight,
)

__all__ = [
    "Onboarding", "OverlapBreaking", "Pool", "SequentialResult", "Target", "TypeState", "all_pairs", "amce",
    "contrast", "expected_target_sd", "feature_overlap", "from_draws", "membership", "most_entangled", "nested_eig",
    "one_factor_pairs", "overlap_breaking", "parameters", "plot_scores", "plot_sequential", "pool_one_factor",
    "predictions", "prepare", "problem", "score", "select", "sequential", "top_k", "weight",
]
