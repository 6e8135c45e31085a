"""The estimands of the sensitivity analysis and how they are named."""

from __future__ import annotations

import dataclasses

from bayespref.errors import ModelError

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
