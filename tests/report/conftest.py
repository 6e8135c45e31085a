"""A small simulated Chatbot Arena with judge demographics and known per-region preferences
(:func:`bayespref.simulate.arena`)."""

from __future__ import annotations

import numpy as np
import pytest

import bayespref as bp
from bayespref.simulate.arena import BASE, MODELS, SHIFTS

REGIONS = list(SHIFTS)
BASE = np.asarray(BASE)
SHIFT = {r: np.asarray(v) for r, v in SHIFTS.items()}
MODELS = list(MODELS)


def simulate_arena(n_judges=60, battles_per_judge=15, n_questions=30, user_sd=0.2, log_tie=-2.0, seed=0):
    """``(battles, judges)``: the raw tables of :func:`bayespref.simulate.arena`."""
    sim = bp.simulate.arena(n_judges, battles_per_judge, n_questions, user_sd=user_sd, log_tie=log_tie, seed=seed)
    return sim.battles, sim.judges


@pytest.fixture(scope="module")
def arena():
    return simulate_arena()
