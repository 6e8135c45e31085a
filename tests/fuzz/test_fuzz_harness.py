"""The fuzz harness itself: a hang is stopped and reported, another exception type propagates, a
bayespref error is classified (and must have a message)."""

from __future__ import annotations

import time

import fuzzing
import pytest

import bayespref as bp


def test_a_hang_is_stopped():
    start = time.perf_counter()
    with pytest.raises(fuzzing.CaseTimeout), fuzzing.time_limit(0.2):
        while True:
            pass
    assert time.perf_counter() - start < 5


def test_outcomes_are_classified():
    def refuse():
        raise bp.DataError("Comparisons.from_frame: no")

    def crash():
        raise KeyError("x")

    status, exc = fuzzing.attempt("harness", refuse)
    assert status == "error" and isinstance(exc, bp.DataError)
    assert fuzzing.attempt("harness", lambda: 3) == ("ok", 3)
    with pytest.raises(KeyError):
        fuzzing.attempt("harness", crash)
    with pytest.raises(AssertionError, match="empty message"):
        fuzzing.attempt("harness", lambda: (_ for _ in ()).throw(bp.ModelError("")))
    fuzzing.STATS.pop("harness", None)  # not a generated case
    fuzzing.SLOWEST.pop("harness", None)
