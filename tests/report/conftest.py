"""A small simulated Chatbot Arena with judge demographics and known per-region preferences
(:func:`bayespref.simulate.arena`: 60 judges in three regions, 15 battles each, Davidson ties), and
the README's alignment snippet run on it once per session (its fit also serves test_group_report)."""

from __future__ import annotations

import os
import pathlib
import re

import pytest

import bayespref as bp

ROOT = pathlib.Path(__file__).resolve().parents[2]
START = "<!-- readme-snippet: alignment"
END = "<!-- /readme-snippet -->"


@pytest.fixture(scope="session")
def arena():
    """``(battles, judges)``: the raw tables a user of Arena data has."""
    sim = bp.simulate.arena()
    return sim.battles, sim.judges


@pytest.fixture(scope="session")
def readme_snippet() -> str:
    """The code of README.md's alignment snippet, read between its marker comments (so the README
    cannot drift from what is tested)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(START) == 1, "README.md must hold the alignment snippet once"
    start = text.index(START)
    assert text.find(END, start) > start, "the alignment snippet must be closed by " + END
    block = text[start:text.index(END, start)]
    code = re.search(r"```python\n(.*?)```", block, re.S)
    assert code, "the snippet markers must enclose a ```python block"
    return code.group(1)


@pytest.fixture(scope="session")
def readme_run(readme_snippet, arena, tmp_path_factory):
    """``(folder, namespace)``: the snippet executed as it is shown, in a fresh folder, on copies of the
    Arena tables. test_group_report checks what it wrote and reports on its fit (the same model on
    the same data as that module's report); the tests that use it are in that one module, so that
    test workers, which share nothing, compile and sample the hierarchical model once."""
    battles, judges = arena
    folder = tmp_path_factory.mktemp("readme")
    cwd = pathlib.Path.cwd()
    namespace = {"battles": battles.copy(), "judges": judges.copy()}
    os.chdir(folder)
    try:
        exec(compile(readme_snippet, "README.md (alignment snippet)", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return folder, namespace
