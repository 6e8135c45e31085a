"""Interrupting ``bayespref fit`` leaves the output folder whole: SIGINT and SIGTERM, sent while the
run compiles the sampler, while it samples and while it writes the results, leave either the
complete previous results (byte for byte) or no folder at all, and no temporary files or folders
beside it; a re-run into the same folder then succeeds.

Each run is a new process (``bayespref fit``), signalled when its stderr shows that it reached the
point: the CLI's "Fitting ..." line (just before compiling; the compilation cache is off for these
runs), the NUTS progress bar (the sampler has been compiled and runs) and the line printed by the
test hook ``BAYESPREF_TEST_PAUSE_BEFORE_RENAME`` of :mod:`bayespref._io` (the results are complete in
a temporary file or folder that is about to be renamed into place: the first pause is ``fit.nc``
inside the temporary folder, the last one the folder itself).

A signal that lands in a garbage-collector callback (JAX registers one; it runs while compiling)
raises a KeyboardInterrupt that Python prints ("Exception ignored in ...") and drops; the command
line remembers the signal and stops before writing anyway (bayespref._io.interrupts_raise), which
these tests check like any other interrupt.

The default suite interrupts each point once per signal; ``-m slow`` repeats every (point, signal)
20 times (the acceptance test of interrupt safety).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from bayespref._io import PAUSE_ENV, PAUSE_MARKER

#: the points at which a run is interrupted, and what its stderr shows when it is there
POINTS = {"compile": "Fitting BradleyTerry", "sampling": "NUTS:", "writing": PAUSE_MARKER}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
OUTPUTS = {"fit.nc", "summary.csv", "worths.csv", "worths.png", "diagnostics.json", "spec.toml"}
#: a small fit; for the interrupts while it samples, one whose sampling lasts a second or two (a long
#: warm-up, few draws: ``LONG_WARMUP``); the runs interrupted while writing need no long sampling
SPEC = """name = "interrupt"
description = "baseball, for the interrupt tests"

[data]
dataset = "baseball"

[model]
family = "BradleyTerry"

[inference]
method = "nuts"
seed = 3
chains = 2
warmup = {warmup}
draws = 200
"""
LONG_WARMUP, SHORT_WARMUP = 20000, 200
TIMEOUT = 300
#: seconds each atomic write pauses before its rename in the "writing" runs (the signal is sent as
#: soon as the pause starts; a run interrupted at the second pause sits through the first)
PAUSE_S = 3


def _command() -> list[str]:
    exe = pathlib.Path(sys.executable).with_name("bayespref")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from bayespref.cli import main; sys.exit(main())"]


class _Run:
    """A ``bayespref fit`` process whose stderr is collected by a thread (tqdm writes no newlines)."""

    def __init__(self, spec: pathlib.Path, out: pathlib.Path, env: dict):
        self.proc = subprocess.Popen([*_command(), "fit", str(spec), "--out", str(out)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.err = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        fd = self.proc.stderr.fileno()
        while chunk := os.read(fd, 65536):
            with self._lock:
                self.err += chunk

    def text(self) -> str:
        with self._lock:
            return self.err.decode("utf-8", "replace")

    def wait_for(self, marker: str, count: int = 1) -> bool:
        """Wait until ``marker`` appeared ``count`` times on stderr; False if the process ended first."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.text().count(marker) >= count:
                return True
            if self.proc.poll() is not None:
                self._reader.join(5)
                return self.text().count(marker) >= count
            time.sleep(0.002)
        raise TimeoutError(f"no {marker!r} on stderr after {TIMEOUT} s:\n{self.text()[-3000:]}")

    def finish(self) -> int:
        code = self.proc.wait(TIMEOUT)
        self._reader.join(10)
        return code


def _snapshot(folder: pathlib.Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` (relative path -> bytes), or None when there is no folder."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The specs (short and long sampling), a compilation cache primed by one complete run of the short
    one, and that run's results folder."""
    root = tmp_path_factory.mktemp("interrupts")
    spec, long_spec = root / "interrupt.toml", root / "interrupt_long.toml"
    spec.write_text(SPEC.format(warmup=SHORT_WARMUP))
    long_spec.write_text(SPEC.format(warmup=LONG_WARMUP))
    env = {**os.environ, "MPLBACKEND": "Agg", "BAYESPREF_CACHE_DIR": str(root / "jax-cache")}
    env.pop(PAUSE_ENV, None)
    env.pop("BAYESPREF_NO_JAX_CACHE", None)
    previous = root / "previous" / "results"
    run = _Run(spec, previous, env)
    assert run.finish() == 0, run.text()[-3000:]
    assert {p.name for p in previous.iterdir()} == OUTPUTS
    return {"spec": spec, "long_spec": long_spec, "env": env, "previous": previous}


def _interrupt(setup, tmp: pathlib.Path, point: str, sig: int, with_previous: bool, pause_at: int = 1) -> str:
    """Run, interrupt at ``point`` with ``sig`` and check the folder; returns the run's stderr."""
    parent = tmp / "runs"
    if parent.exists():
        shutil.rmtree(parent)
    parent.mkdir()
    out = parent / "results"
    if with_previous:
        shutil.copytree(setup["previous"], out)
    before = _snapshot(out)
    env = dict(setup["env"])
    if point == "compile":  # compile for real (a cache hit takes well under a second)
        env["BAYESPREF_NO_JAX_CACHE"] = "1"
    if point == "writing":
        env[PAUSE_ENV] = str(PAUSE_S)
    run = _Run(setup["spec" if point == "writing" else "long_spec"], out, env)
    try:
        reached = run.wait_for(POINTS[point], pause_at if point == "writing" else 1)
        assert reached, f"the run ended before reaching {point}:\n{run.text()[-3000:]}"
        run.proc.send_signal(sig)
        code = run.finish()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    err = run.text()
    assert code == 130, f"exit code {code} after {signal.Signals(sig).name} at {point}:\n{err[-3000:]}"
    assert "interrupted; no results were written" in err, err[-3000:]
    assert _snapshot(out) == before, f"{point}/{signal.Signals(sig).name}: the folder changed"
    assert sorted(p.name for p in parent.iterdir()) == (["results"] if with_previous else []), \
        f"leftovers beside the output folder after {point}/{signal.Signals(sig).name}"
    return err


def _rerun(setup, tmp: pathlib.Path) -> None:
    """A run into the folder of the interrupted runs completes and leaves only its results."""
    parent = tmp / "runs"
    out = parent / "results"
    run = _Run(setup["spec"], out, setup["env"])
    assert run.finish() == 0, run.text()[-3000:]
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert [p.name for p in parent.iterdir()] == ["results"]
    import bayespref as bp

    assert bp.load_fit(out / "fit.nc").model.family == "BradleyTerry"


def _cases(reps: int, points=None):
    for point in points or POINTS:
        for name in SIGNALS:
            yield pytest.param(point, name, reps, id=f"{point}-{name}")


# SIGINT (at the file) runs by default; SIGTERM (at the folder, ~15 s) with the slow profile, which
# also interrupts 20 times at every point: keeps the default suite within 10 min
@pytest.mark.parametrize("point, name, reps", [
    pytest.param(*c.values, marks=pytest.mark.slow, id=c.id) if "SIGTERM" in c.id else c
    for c in _cases(1, points=("writing",))])
def test_interrupt_leaves_previous_results_or_none(setup, tmp_path, point, name, reps):
    """The writing point once per signal: at the file (SIGINT) and at the folder (SIGTERM), with and
    without previous results, after which a re-run succeeds. Compile and sampling interruptions run
    in the slow profile (``test_interrupt_20_times``), which keeps the default suite's budget."""
    with_previous = (list(POINTS).index(point) + list(SIGNALS).index(name)) % 2 == 0
    _interrupt(setup, tmp_path, point, SIGNALS[name], with_previous, pause_at=1 + (name == "SIGTERM"))
    if point == "writing" and name == "SIGTERM":
        _rerun(setup, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("point, name, reps", list(_cases(20)))
def test_interrupt_20_times(setup, tmp_path, point, name, reps):
    """The acceptance test: every (point, signal) 20 times, with and without previous results
    (alternately), the writing point alternately at the file and at the folder; then a re-run."""
    passed = dropped = 0
    for rep in range(reps):
        err = _interrupt(setup, tmp_path, point, SIGNALS[name], with_previous=rep % 2 == 0, pause_at=1 + rep % 2)
        passed += 1
        dropped += "Exception ignored" in err  # Python dropped the KeyboardInterrupt; bayespref stopped anyway
    _rerun(setup, tmp_path)
    print(f"\n{point}/{name}: {passed} of {reps} interrupted runs left the folder whole "
          f"({dropped} after Python dropped the KeyboardInterrupt); the re-run succeeded")
    assert passed == reps
