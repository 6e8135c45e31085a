"""A small simulated Chatbot Arena with judge demographics and known per-region preferences
(:func:`bayespref.simulate.arena`: 60 judges in three regions, 15 battles each, Davidson ties), and
the README's alignment snippet run on it once per session (its fit also serves test_group_report)."""

from __future__ import annotations

import functools
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


#: the sampler settings of the default run's snippet: shorter chains than the library's defaults
#: (4 x (1,000 + 1,000)), which the slow profile runs (test_group_report)
QUICK_FIT = {"chains": 2, "warmup": 500, "draws": 500}


def run_snippet(snippet: str, arena, folder: pathlib.Path, fit_settings: dict | None = None) -> dict:
    """The snippet executed line for line in ``folder`` on copies of the Arena tables; its namespace.
    ``fit_settings``: sampler settings that ``bp.fit`` takes on top of the snippet's arguments while it
    runs (None: the library's defaults, as a user runs it)."""
    battles, judges = arena
    cwd = pathlib.Path.cwd()
    namespace = {"battles": battles.copy(), "judges": judges.copy()}
    os.chdir(folder)
    try:
        with pytest.MonkeyPatch.context() as mp:
            if fit_settings:
                mp.setattr(bp, "fit", functools.partial(bp.fit, **fit_settings))
            exec(compile(snippet, "README.md (alignment snippet)", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


@pytest.fixture(scope="session")
def snippet_runner():
    """:func:`run_snippet`, for the tests that run the snippet with other settings."""
    return run_snippet


@pytest.fixture(scope="session")
def readme_run(readme_snippet, arena, tmp_path_factory):
    """``(folder, namespace)``: the snippet executed line for line, in a fresh folder, with shorter
    chains (:data:`QUICK_FIT`; the slow profile runs it with the library's defaults).
    test_group_report checks what it wrote and reports on its fit (the same model on the same data
    as that module's report); the tests that use it are in that one module, so that test workers,
    which share nothing, compile and sample the hierarchical model once."""
    folder = tmp_path_factory.mktemp("readme")
    return folder, run_snippet(readme_snippet, arena, folder, QUICK_FIT)
