"""One settings object per inference method, each validated when it is made.

:func:`bayespref.fit` takes a method's settings either as keyword arguments
(``bp.fit(model, data, method="svi", steps=5000)``) or as the object
(``bp.fit(model, data, method="svi", settings=bp.inference.SviSettings(steps=5000))``). Each field's
type and range are checked here, before anything is compiled, and the CLI's ``[fit]`` table is read
from the same fields (:func:`settings_fields`), so a spec can set exactly what a call can.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import ClassVar

from bayespref.errors import ModelError
from bayespref.validate import FLAG, NON_NEGATIVE, POSITIVE, OneOf, Real, Whole, check_fields


@dataclasses.dataclass(frozen=True)
class NutsSettings:
    """NUTS settings: ``chains`` chains of ``warmup`` + ``draws`` iterations.

    ``dense_mass``: False (default) adapts a diagonal mass matrix, True a dense one; a list of tuples
    of site names gives dense blocks over those sites (NumPyro's convention). A dense block over the
    population weights and SDs of hierarchical BT did not change the ESS per gradient (measured over
    4 seeds, benchmarks/RESULTS.md), so the default stays diagonal. ``chain_method`` None chooses
    from the devices (:func:`bayespref.config.devices_for_chains`).

    ``devices``: None or 1 (default) runs each chain on one device (chains in parallel over
    devices); N > 1 splits one chain's log density over N devices (:mod:`bayespref.inference.sharding`;
    families with ``shardable``), the chains then run one after another (``chain_method`` None or
    "sequential") or in lock-step ("vectorized") on that mesh, not with "parallel".

    ``target_accept``: NUTS's target acceptance rate. None (default): :data:`SMALL_DATA_ACCEPT` for a
    model with random effects (a scale of user or option effects, where a funnel can cause
    divergences) on at most :data:`SMALL_DATA_OBS` observations, where the smaller steps cost little
    (:func:`resolve_target_accept`), else 0.8.

    ``draws``: draws per chain after warm-up. None (default): :data:`MIXTURE_DRAWS` for a mixture
    (:class:`~bayespref.LatentTypes` with K > 1) on at most :data:`SMALL_DATA_OBS` observations,
    :data:`DEFAULT_DRAWS` otherwise (:func:`resolve_draws`).

    ``extend``: how many times sampling may go on, each time for another ``draws`` draws per chain
    continued from where the chains stopped (no new warm-up or compilation), when the automatic
    convergence check finds R-hat above ``config.RHAT_MAX`` or a bulk ESS below ``config.min_ess``
    that more draws can plausibly mend (:func:`bayespref.inference.convergence.draw_on_reason`: no
    divergences, R-hat at most :data:`~bayespref.inference.convergence.DRAW_ON_RHAT_MAX`). None
    (default): once when ``draws`` is left to the default, never when ``draws`` is given
    (:func:`resolve_extend`); 0 never. ``fit.info["extensions"]`` says how often it did and why.

    ``init_modes``: number of random starts from which the posterior mode is searched before sampling
    (:func:`bayespref.inference.engine.init_from_modes`); the chains start around the best mode and
    warm-up from the curvature there. None (default): 8 for families whose posterior has several
    modes (:class:`~bayespref.LatentTypes` with K > 1), 0 (NumPyro's initialisation) otherwise.
    Ignored when ``init=`` gives another fit to start from.
    """

    chains: int = 4
    warmup: int = 1000
    draws: int | None = None
    target_accept: float | None = None
    max_tree_depth: int = 10
    dense_mass: bool | list | tuple = False
    chain_method: str | None = None
    devices: int | None = None
    init_modes: int | None = None
    extend: int | None = None
    progress: bool = True

    #: field -> what it may be (bayespref.validate); the other fields are checked by their annotation
    rules: ClassVar[dict] = {
        "chains": Whole(1), "warmup": Whole(0), "draws": Whole(1, none=True), "init_modes": Whole(0, none=True),
        "extend": Whole(0, none=True),
        "target_accept": Real(0, 1, open_low=True, open_high=True, none=True), "max_tree_depth": Whole(1),
        "chain_method": OneOf(("parallel", "vectorized", "sequential"), none=True), "devices": Whole(1, none=True),
        "progress": FLAG,
    }

    def __post_init__(self):
        if not isinstance(self.dense_mass, (bool, list, tuple)):
            raise ModelError(f"dense_mass={self.dense_mass!r}: use True, False or a list of tuples of site names.")
        check_fields(self, self.rules)
        if self.devices is not None and self.devices > 1 and self.chain_method == "parallel":
            raise ModelError(f"devices={self.devices} splits each chain over {self.devices} devices, so chains "
                             "cannot also run one per device: use chain_method='sequential' (or None), or "
                             "devices=None for chain_method='parallel'.")


#: target acceptance for small data with random effects, and what counts as small
SMALL_DATA_ACCEPT, SMALL_DATA_OBS = 0.95, 5000
#: draws per chain by default, and for mixtures (several posterior modes) on small data
DEFAULT_DRAWS, MIXTURE_DRAWS = 1000, 2000
#: extensions of the draws allowed by default (when ``draws`` is not given)
DEFAULT_EXTEND = 1
#: NumPyro's default target acceptance, for everything else
DEFAULT_ACCEPT = 0.8


def resolve_target_accept(settings: NutsSettings, spec, data) -> tuple[NutsSettings, str]:
    """The settings with ``target_accept`` chosen when it is None, and why.

    Small data with random effects get :data:`SMALL_DATA_ACCEPT`: on simulated random residual
    worths (30 options, 300 comparisons, SD 0.1) 0.8 gave 2 divergences and 0.95 none, at under a
    second more (benchmarks/RESULTS.md, "Fast, well-behaved defaults").
    """
    if settings.target_accept is not None:
        return settings, "given"
    if spec.has_random_effects(data) and data.n_obs <= SMALL_DATA_OBS:
        why = f"random effects on {data.n_obs:,} {data.obs_dim}s (<= {SMALL_DATA_OBS:,})"
        return dataclasses.replace(settings, target_accept=SMALL_DATA_ACCEPT), why
    return dataclasses.replace(settings, target_accept=DEFAULT_ACCEPT), "default"


def resolve_draws(settings: NutsSettings, spec, data) -> tuple[NutsSettings, str]:
    """The settings with ``draws`` chosen when it is None, and why.

    A mixture's chains move slowly between the tails of its types (a type of few users has skewed,
    heavy-tailed worths), so its R-hat over 4 x 1000 draws is itself noisy around 1.01; on small data
    the extra draws cost seconds. On LatentTypes K = 4 (192 users x all 10 pairs of 5 options) seeds 2
    and 3 gave R-hat 1.015 and 1.006 with 1000 draws, and 1.004 and 1.004 with 2000
    (benchmarks/RESULTS.md, "LatentTypes K = 4").
    """
    if settings.draws is not None:
        return settings, "given"
    if spec.multimodal() and data.n_obs <= SMALL_DATA_OBS:
        why = f"a mixture on {data.n_obs:,} {data.obs_dim}s (<= {SMALL_DATA_OBS:,}): more draws for its slower mixing"
        return dataclasses.replace(settings, draws=MIXTURE_DRAWS), why
    return dataclasses.replace(settings, draws=DEFAULT_DRAWS), "default"


def resolve_extend(settings: NutsSettings, draws_reason: str) -> NutsSettings:
    """The settings with ``extend`` chosen when it is None: :data:`DEFAULT_EXTEND` when the number of
    draws was chosen by the package (a data-driven count: as many as the diagnostics need, within one
    extension), 0 when the user gave ``draws`` (that count is kept).

    On the Arena-style medium design (12 models, 300 judges, 15,106 battles) the judges' SDs reach
    R-hat 1.009-1.020 with 4 x 1000 draws and 1.005 with 4 x 2000, for 10-20 s more
    (benchmarks/RESULTS.md, "More draws when the check asks for them").
    """
    if settings.extend is not None:
        return settings
    return dataclasses.replace(settings, extend=0 if draws_reason == "given" else DEFAULT_EXTEND)


@dataclasses.dataclass(frozen=True)
class SviSettings:
    """SVI settings.

    An autoguide (``guide`` in {"normal", "mvn", "lowrank", "laplace"}, or ``"hierarchical"`` for
    :class:`~bayespref.Hierarchical`: :class:`bayespref.inference.guides.HierarchicalGuide`) fitted
    with Adam (``lr``) for at most ``steps`` steps, optionally on minibatches of ``batch_size``
    comparisons or ``user_batch_size`` users, then ``num_samples`` draws. The run is split into
    chunks of ``check_every`` steps compiled once (``lax.scan``). After each chunk the mean loss is
    compared with the previous chunk's; the run stops when the decrease stays below ``tol``
    (relative) or below the loss's own noise for two checks in a row (or at ``steps``). The
    parameters returned are the average over the last chunk (Polyak averaging). The rule watches
    the loss, which cannot show small offsets in a few of many coordinates: a full-rank guide
    (``"mvn"``) on 200 users x 3 effects stopped at 2,500 steps with population weights 0.34
    posterior SD from NUTS's, and 0.13 at ``lr=0.002, tol=1e-7`` (benchmarks/RESULTS.md); lower
    ``lr`` and ``tol`` where the means must be that close. ``devices``: None
    or 1 (default) one device; N > 1 splits the log density over N devices as for NUTS
    (:mod:`bayespref.inference.sharding`), across hosts too (:func:`bayespref.config.setup_distributed`).

    ``chunk_users``: Parquet input only (:class:`~bayespref.data.readers.parquet_stream.ParquetComparisons`,
    :func:`bayespref.inference.engine.run_svi_stream`): users per chunk held in memory (None:
    ``max(user_batch_size, min(n_users, 20000))``); ``steps`` then counts minibatch steps over all
    epochs and the stopping rule compares whole epochs.
    """

    steps: int = 20000
    lr: float = 0.01
    guide: object = "normal"
    batch_size: int | None = None
    user_batch_size: int | None = None
    chunk_users: int | None = None
    tol: float = 1e-4
    check_every: int = 500
    num_samples: int = 1000
    devices: int | None = None
    progress: bool = True

    #: field -> what it may be (bayespref.validate); ``guide`` may also be a guide object
    rules: ClassVar[dict] = {
        "steps": Whole(1), "lr": POSITIVE, "batch_size": Whole(1, none=True),
        "user_batch_size": Whole(1, none=True), "chunk_users": Whole(1, none=True), "tol": NON_NEGATIVE, "check_every": Whole(1),
        "num_samples": Whole(1), "devices": Whole(1, none=True), "progress": FLAG,
    }
    guides: ClassVar[tuple] = ("normal", "mvn", "lowrank", "laplace", "hierarchical")

    def __post_init__(self):
        if isinstance(self.guide, str) or not callable(self.guide):
            OneOf(self.guides).check("guide", self.guide)
        check_fields(self, self.rules)
        if self.devices is not None and self.devices > 1 and self.batch_size is not None:
            raise ModelError(f"devices={self.devices} splits the comparisons by user over devices; minibatches "
                             "of comparisons (batch_size) are not split. Use user_batch_size=... or "
                             "batch_size=None.")


@dataclasses.dataclass(frozen=True)
class LaplaceSettings:
    """Settings of the importance-corrected Laplace method (:mod:`bayespref.inference.laplace`).

    ``importance`` draws per user for the importance correction (None: 8 on the dense design, 0, the
    plain Laplace formula, on the paired design of many options' worths, where K draws in E ~ 100
    dimensions gave noisy scores and judge SDs biased up, :mod:`bayespref.inference.laplace_pairs`),
    ``widen`` the scale of their proposal (in every one of the E dimensions: keep it at 1 on the paired
    design), ``max_newton``/``newton_tol`` the per-user Newton solve, ``covariance`` of the global
    Gaussian ("auto", "hessian" or "opg"), ``max_iter``/``gtol``/``ftol`` the L-BFGS run,
    ``num_samples`` draws, ``opg_from_users`` users above which "auto" takes the outer-product
    covariance, ``user_block`` users per block of the per-user computations.

    ``chunk_users``: Parquet input only (:class:`~bayespref.data.readers.parquet_stream.ParquetComparisons`,
    :func:`bayespref.inference.laplace.run_laplace_stream`): users per chunk held in memory (None:
    ``min(n_users, 20000)``); every L-BFGS evaluation is one pass over the chunks.

    ``devices``: None or 1 (default) one device; N > 1 splits the users (their comparisons, modes
    and importance draws) over N devices (:mod:`bayespref.inference.sharding`): each evaluation's
    per-user Newton searches run on every device's block and the sums meet in one all-reduce.
    """

    importance: int | None = None
    widen: float = 1.5
    max_newton: int = 12
    newton_tol: float = 1e-3
    covariance: str = "auto"
    max_iter: int = 500
    gtol: float = 1e-3
    ftol: float = 2.2e-9
    num_samples: int = 1000
    opg_from_users: int = 5000
    user_block: int = 5000
    chunk_users: int | None = None
    devices: int | None = None
    progress: bool = True

    #: field -> what it may be (bayespref.validate)
    rules: ClassVar[dict] = {
        "devices": Whole(1, none=True), "importance": Whole(0, none=True), "widen": POSITIVE, "max_newton": Whole(1), "newton_tol": POSITIVE,
        "covariance": OneOf(("auto", "hessian", "opg")), "max_iter": Whole(1), "gtol": POSITIVE,
        "ftol": POSITIVE, "num_samples": Whole(1), "opg_from_users": Whole(1), "user_block": Whole(1),
        "chunk_users": Whole(1, none=True), "progress": FLAG,
    }

    def __post_init__(self):
        check_fields(self, self.rules)


#: method name -> its settings class
SETTINGS = {"nuts": NutsSettings, "svi": SviSettings, "laplace": LaplaceSettings}


def settings_fields(method: str) -> dict[str, type]:
    """Field name -> annotated type of ``method``'s settings (the CLI's ``[fit]`` keys)."""
    hints = typing.get_type_hints(SETTINGS[method])
    return {f.name: hints[f.name] for f in dataclasses.fields(SETTINGS[method])}


def make_settings(method: str, settings=None, **options):
    """The settings object of ``method`` from an object and/or keyword options, validated.

    Options of another method (``steps`` with NUTS, ``chains`` with SVI) are refused with the method
    they belong to, rather than silently ignored.
    """
    if method not in SETTINGS:
        raise ModelError(f"method={method!r} is unknown; use one of {tuple(SETTINGS)}.")
    cls = SETTINGS[method]
    if settings is not None and not isinstance(settings, cls):
        raise ModelError(f"settings= for method={method!r} must be a {cls.__name__}, got {type(settings).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in options if k not in names]
    if unknown:
        owners = {k: [m for m, c in SETTINGS.items() if k in {f.name for f in dataclasses.fields(c)}] for k in unknown}
        hints = "; ".join(f"{k} is a setting of method={' / '.join(map(repr, v))}" if v else f"{k} is not a setting"
                          for k, v in owners.items())
        raise ModelError(f"method={method!r} does not take {unknown} ({hints}). Its settings: {sorted(names)}.")
    base = settings if settings is not None else cls()
    return dataclasses.replace(base, **options) if options else base
