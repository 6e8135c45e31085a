"""What every fuzz test shares: one call per generated case, under a time limit, classified.

:func:`attempt` runs one generated case: it returns ``("ok", result)`` or ``("error", exc)`` when the
call raised a :class:`~bayespref.BayesprefError`; any other exception propagates (Hypothesis then
shrinks the case and reports it: a fuzz failure). A case that runs longer than :data:`CASE_LIMIT_S`
is stopped with :class:`CaseTimeout` (a hang is a failure too). Warnings other than bayespref's own
and deprecations raise, so a pandas or NumPy warning from the package's code is a failure as well.

Every case is counted per test (:data:`STATS`); ``conftest.py`` prints the counts at the end of the
run: cases, valid results, bayespref errors (by class) and the slowest case.
"""

from __future__ import annotations

import collections
import contextlib
import signal
import threading
import time
import warnings

import numpy as np

from bayespref.errors import BayesprefError, BayesprefWarning

#: the most seconds one generated case may run (a hang is stopped and reported after this)
CASE_LIMIT_S = 20.0

#: test name -> Counter of outcomes ("cases", "valid", "error:<class>", ...) and the slowest case
STATS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
SLOWEST: dict[str, float] = collections.defaultdict(float)
#: names of follow-up calls on a generated case's result (e.g. encoding a reader's input back): counted
#: apart from the generated cases
FOLLOW_UPS: set[str] = set()


class CaseTimeout(Exception):
    """A generated case ran past :data:`CASE_LIMIT_S` (what a hang looks like)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`CaseTimeout` in the block after ``seconds`` (main thread only; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise CaseTimeout(f"the case ran longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def attempt(test: str, call, *args, follow_up: bool = False, **kwargs):
    """``("ok", call(*args, **kwargs))`` or ``("error", exc)`` for a bayespref error; see the module.
    ``follow_up``: a call on a generated case's result, counted apart."""
    if follow_up:
        FOLLOW_UPS.add(test)
    STATS[test]["cases"] += 1
    start = time.perf_counter()
    try:
        with time_limit(CASE_LIMIT_S), warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", BayesprefWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            result = call(*args, **kwargs)
    except BayesprefError as exc:
        STATS[test][f"error:{type(exc).__name__}"] += 1
        message = str(exc).strip()
        assert message, f"{type(exc).__name__} with an empty message"
        return "error", exc
    finally:
        SLOWEST[test] = max(SLOWEST[test], time.perf_counter() - start)
    STATS[test]["valid"] += 1
    return "ok", result


def names_one_of(exc: Exception, *names) -> bool:
    """Whether the message of ``exc`` mentions one of ``names`` (as ``str`` or ``repr``)."""
    message = str(exc)
    return any(str(n) in message or repr(n) in message for n in names if n is not None)


# -- invariants of a valid result ----------------------------------------------------------------------------
def expected_outcome(v):
    """The outcome code a raw outcome value must get, or None where it must be refused."""
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, str):
        return 0.5 if v == "tie" else None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x in (0.0, 0.5, 1.0) else None


def check_arrays(data, n: int, *, encoded: bool = False) -> None:
    """The invariants of any Comparisons of ``n`` comparisons: every array has one entry (or row) per
    comparison, indices lie in range (-1 only in ``encoded`` data), a != b, outcomes are 0 / 0.5 / 1
    (NaN only where encoded data have none) with ``y`` coded from them, features and covariates are
    finite, the label indexes are unique."""
    assert data.n_comparisons == n
    low = -1 if encoded else 0
    for name in ("a", "b", "user"):
        arr = getattr(data, name)
        assert arr.dtype == np.int32 and arr.shape == (n,), name
        assert not arr.flags.writeable, name
    assert ((data.a >= low) & (data.a < data.n_options)).all()
    assert ((data.b >= low) & (data.b < data.n_options)).all()
    assert ((data.user >= low) & (data.user < data.n_users)).all()
    known = (data.a >= 0) & (data.b >= 0)
    assert (data.a[known] != data.b[known]).all()
    if data.prompt is not None:
        assert data.prompt.shape == (n,) and ((data.prompt >= low) & (data.prompt < data.n_prompts)).all()
    assert data.outcome.dtype == np.float64 and data.outcome.shape == (n,)
    given = ~np.isnan(data.outcome)
    assert encoded or given.all()
    assert np.isin(data.outcome[given], (0.0, 0.5, 1.0)).all()
    code = np.where(data.outcome == 1, 1, np.where(data.outcome == 0, 0, np.where(given, 2, -1)))
    assert (data.y == code).all()
    assert data.has_ties == bool((data.outcome == 0.5).any())
    d, p = data.n_features, data.n_covariates
    assert data.xa.shape == (n, d) and data.xb.shape == (n, d)
    assert np.isfinite(data.xa).all() and np.isfinite(data.xb).all()
    assert data.covariates.shape == (data.n_users, p) and np.isfinite(data.covariates).all()
    assert data.comparison_covariates.shape == (n, p) and np.isfinite(data.comparison_covariates).all()
    assert len(data.feature_names) == d and len(data.covariate_names) == p
    assert data.options.is_unique and data.users.is_unique
    assert len(data.comparison_ids) == n and len(data.frame) == n
    if not encoded:
        assert data.n_options >= 2 and data.comparison_ids.is_unique
        assert (data.comparison_covariates == data.covariates[data.user]).all()
