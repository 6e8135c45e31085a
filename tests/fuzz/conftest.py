"""Hypothesis profiles of the fuzz suite and the count of its cases.

* ``fuzz`` (the default run, ``pytest tests/fuzz``): 100 cases per test, reproducible
  (``derandomize=True``: the same cases on every run and machine), within the suite's time budget.
* ``fuzz-slow`` (``pytest -m slow tests/fuzz``, or ``BAYESPREF_FUZZ=slow`` with any selection):
  500 cases per test, also reproducible; the fuzz tests then carry the ``slow`` mark, so ``-m slow``
  selects them.

``--hypothesis-profile NAME`` still picks any profile: ``fuzz-explore`` draws 2,000 random cases per
test (new ones on every run) to look for new failures. Each case also runs under a hard time limit
(``fuzzing.CASE_LIMIT_S``); Hypothesis's ``deadline`` reports a case slower than 5 s as a failure.
At the end of the run the cases are counted per test: valid results, bayespref errors by class.
"""

from __future__ import annotations

import os

import fuzzing
import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(derandomize=True, deadline=5000, print_blob=True, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("fuzz", max_examples=100, **_COMMON)
settings.register_profile("fuzz-slow", max_examples=500, **_COMMON)
# for looking for new failures by hand: random cases (a new seed each run, --hypothesis-seed=N to repeat one)
settings.register_profile("fuzz-explore", max_examples=2000, **{**_COMMON, "derandomize": False, "database": None})


def _slow_selected(config) -> bool:
    """Whether the run selects the slow tests (``-m slow``, ``-m "slow or notebooks"``...)."""
    expr = " ".join((config.getoption("markexpr", "") or "").split())
    return "slow" in expr and "not slow" not in expr


def _slow(config) -> bool:
    return os.environ.get("BAYESPREF_FUZZ", "").lower() == "slow" or _slow_selected(config)


def pytest_configure(config):
    # a conftest below the root is configured when it is loaded: before the fuzz modules are
    # imported, so their @given tests see this profile
    if getattr(config.option, "hypothesis_profile", None) is None:
        settings.load_profile("fuzz-slow" if _slow(config) else "fuzz")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With the slow profile the fuzz tests carry the ``slow`` mark (so that ``-m slow`` runs them)."""
    if _slow_selected(config):
        here = os.path.dirname(__file__)
        for item in items:
            if str(item.path).startswith(here):
                item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    if not fuzzing.STATS:
        return
    tr = terminalreporter
    tr.section(f"fuzz cases (profile {settings().max_examples} per test)")
    total = {"cases": 0, "valid": 0, "errors": 0}
    for test, counts in sorted(fuzzing.STATS.items()):
        errors = {k.removeprefix("error:"): v for k, v in counts.items() if k.startswith("error:")}
        n_err = sum(errors.values())
        if test not in fuzzing.FOLLOW_UPS:  # follow-up calls on a case's result are not cases
            total["cases"] += counts["cases"]
            total["valid"] += counts["valid"]
            total["errors"] += n_err
        detail = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
        tr.write_line(f"{test:<42} {counts['cases']:>6} cases: {counts['valid']:>5} valid, {n_err:>5} bayespref "
                      f"errors ({detail}); slowest {fuzzing.SLOWEST[test]:.2f} s")
    other = total["cases"] - total["valid"] - total["errors"]
    tr.write_line(f"{'total generated cases':<42} {total['cases']:>6} cases: {total['valid']:>5} valid, "
                  f"{total['errors']:>5} bayespref errors, {other} other outcomes (other exception types or "
                  "time-outs); the '->' rows are follow-up calls on valid results, not counted")
