"""A small simulated Chatbot Arena with judge demographics and known per-region preferences
(:func:`bayespref.simulate.arena`: 60 judges in three regions, 15 battles each, Davidson ties)."""

from __future__ import annotations

import pytest

import bayespref as bp


@pytest.fixture(scope="module")
def arena():
    """``(battles, judges)``: the raw tables a user of Arena data has."""
    sim = bp.simulate.arena()
    return sim.battles, sim.judges
