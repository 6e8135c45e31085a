"""Names of the model sites that code outside ``models/`` reads: one place for all of them.

The families sample (or record) their parameters under these names, and the layers above
(inference, checks, analyses, cli) read the posterior by them, never by a string literal of their
own. A new family that names its effects this way gets, without further code, what those layers
do with them (e.g. :meth:`Fit.worths <bayespref.Fit.worths>` reads :data:`WORTH`, the heterogeneity
analysis reads :func:`group` and :func:`user` sites of the blocks in
:meth:`ModelSpec.effect_blocks <bayespref.models.base.ModelSpec.effect_blocks>`).

Effect blocks
-------------
Effects come in two blocks, :data:`WORTH` (one value per option, ArviZ dim ``option``) and
:data:`WEIGHT` (one per option feature, dim ``feature``); :data:`BLOCK_DIMS` maps a block to its
dim. For a block ``b``:

* ``b`` itself: the population-level (pooled) effect, or per type with a ``type`` dim;
* :func:`group` (``group_<b>``, dims ``covariate`` x block): effects of the user covariates;
* :func:`user` (``user_<b>``, dims ``user`` x block): each training user's effect;
* :func:`sd` (``sd_<b>``, dim of the block): SD of the users' deviations.
"""

from __future__ import annotations

#: observed outcome of each comparison (inside the ``comparison`` plate)
OBS = "y"
#: per-user log-likelihood factor of families whose likelihood does not factor over comparisons
#: (types summed out per user)
USER_LL = "user_ll"
#: predictions (``model(..., predict=True)``): P(a preferred) and P(tie)
P_A = "p_a"
P_TIE = "p_tie"
#: predictions for rankings: P(each shown item is chosen first), (ranking, slot)
P_FIRST = "p_first"

#: effect blocks
WORTH = "worth"
WEIGHT = "weight"
BLOCK_DIMS = {WORTH: "option", WEIGHT: "feature"}

#: shared nuisance parameters
POSITION = "position"
LOG_TIE = "log_tie"

#: standard-normal user deviations (user, effect) and the Cholesky factor of their correlation
Z = "z"
CORR_CHOL = "corr_chol"

#: latent types (families with ``has_types``): shares without covariates, or the multinomial-logit
#: membership model with covariates; and the prediction-time sites
TYPE_SHARE = "type_share"
TYPE_INTERCEPT = "type_intercept"
TYPE_COEF = "type_coef"
MEMBERSHIP = "membership"
USER_LOG_LIK = "user_log_lik"
TYPE_DRAW = "type_draw"

GROUP_WORTH = f"group_{WORTH}"
GROUP_WEIGHT = f"group_{WEIGHT}"
USER_WORTH = f"user_{WORTH}"
USER_WEIGHT = f"user_{WEIGHT}"
SD_WORTH = f"sd_{WORTH}"
SD_WEIGHT = f"sd_{WEIGHT}"


def group(block: str) -> str:
    """Site of the user-covariate (group) effects on ``block``: ``group_worth``, ``group_weight``."""
    return f"group_{block}"


def user(block: str) -> str:
    """Site of the per-user effects of ``block``: ``user_worth``, ``user_weight``."""
    return f"user_{block}"


def sd(block: str) -> str:
    """Site of the SD of the users' deviations in ``block``: ``sd_worth``, ``sd_weight``."""
    return f"sd_{block}"


def block_dim(block: str) -> str:
    """ArviZ dim of an effect block: ``option`` for worths, ``feature`` for weights."""
    return BLOCK_DIMS[block]
