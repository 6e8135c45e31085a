"""Two processes on localhost (CPU, gloo) run one SVI, Laplace (Hessian or OPG covariance) or NUTS fit
over their devices (``jax.distributed``).

Each process (2 virtual CPU devices each, 4 in all) returns the same fit; it is compared with the
one-process, one-device fit of the same data and seed. The two runs differ in the order of the
float32 sums (and nothing else: same keys, same steps), so they agree far inside the posterior's
Monte Carlo error; the test allows a tenth of a posterior SD plus 0.02 (the SVI draws' Monte Carlo
error of a mean with 500 draws is about 0.045 SD). The Laplace method's L-BFGS search may take
another path to the same optimum (its gradient tolerance), well inside that bound. NUTS runs in
float64 and must give the one-device draws to 1e-9 (the one-host bound of test_sharding.py); it is
kept short and shallow because every leapfrog step waits for an all-reduce between the processes.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("multihost_worker.py")
ROOT = pathlib.Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _result(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):]) if lines else None


def _launch(method):
    """Two worker processes of one ``jax.distributed`` run (2 CPU devices each), their output going to
    files; and the environment without the distributed variables. Files, not pipes: a worker blocked
    on a full pipe (64 KB) that the test is not yet reading would keep the other worker waiting for
    it at shutdown, and the test waiting for that one."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BAYESPREF_") or k == "BAYESPREF_CACHE_DIR"}
    base.pop("XLA_FLAGS", None)
    port = _free_port()
    procs = []
    for pid in range(2):
        env = {**base, "BAYESPREF_COORDINATOR": f"127.0.0.1:{port}", "BAYESPREF_NUM_PROCESSES": "2",
               "BAYESPREF_PROCESS_ID": str(pid), "BAYESPREF_HOST_DEVICES": "2"}
        out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        proc = subprocess.Popen([sys.executable, str(WORKER), method], env=env, cwd=ROOT, stdout=out, stderr=err)
        procs.append((proc, out, err))
    return base, procs


def _fits(method):
    """The two processes' results (checked to come from both processes, 4 devices in all) and the
    one-process, one-device reference's."""
    base, procs = _launch(method)
    ref = subprocess.run([sys.executable, str(WORKER), method], env={**base, "BAYESPREF_HOST_DEVICES": "1"}, cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    outs = []
    for p, out, err in procs:
        p.wait(timeout=900)
        out.seek(0)
        err.seek(0)
        assert p.returncode == 0, err.read()[-3000:]
        outs.append(_result(out.read()))
    assert ref.returncode == 0, ref.stderr[-3000:]
    assert sorted(o["process"] for o in outs) == [0, 1]
    assert all(o["processes"] == 2 and o["devices"] == 4 for o in outs)
    return outs, _result(ref.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["svi", "laplace", "laplace_opg"])
def test_two_process_fit_equals_one_process(method):
    outs, one = _fits(method)
    assert outs[0]["weight"] == outs[1]["weight"]  # every process returns the same fit
    for k in ("weight", "sd_weight"):
        m1, m2, sd = (np.asarray(one[k]["mean"]), np.asarray(outs[0][k]["mean"]), np.asarray(one[k]["sd"]))
        assert np.all(np.abs(m1 - m2) < 0.1 * sd + 0.02), (k, m1, m2, sd)


@pytest.mark.slow
def test_two_process_nuts_gives_the_one_process_draws():
    """NUTS, 2 chains x (10 + 10), tree depth <= 4, float64: each chain's log density split over the
    4 devices of the two processes. The draws equal the one-device draws up to the order of the
    float sums (the bound of the one-host test, tests/inference/test_sharding.py)."""
    outs, one = _fits("nuts")
    for k in ("weight", "sd_weight"):
        assert outs[0][k]["draws"] == outs[1][k]["draws"]  # every process returns the same fit
        diff = np.max(np.abs(np.asarray(one[k]["draws"]) - np.asarray(outs[0][k]["draws"])))
        assert diff < 1e-9, (k, diff)
