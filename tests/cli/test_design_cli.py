"""``bayespref design``: a saved fit and a candidate CSV in, the ranked candidates CSV out (atomically)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.cli import main


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory):
    """A BradleyTerry fit with worths of 5 options and two user groups, draws written by hand, saved."""
    rng = np.random.default_rng(0)
    opts = [f"o{i}" for i in range(5)]
    a = rng.integers(0, 5, 40)
    b = (a + rng.integers(1, 5, 40)) % 5
    frame = pd.DataFrame({"a": np.asarray(opts)[a], "b": np.asarray(opts)[b], "outcome": rng.integers(0, 2, 40)})
    data = bp.Comparisons.from_frame(frame)
    spec = bp.BradleyTerry()
    w = np.linspace(1, -1, 5) + 0.5 * rng.normal(size=(1, 400, 5))
    w -= w.mean(-1, keepdims=True)
    idata = az.from_dict({"posterior": {"worth": w}}, coords=spec.coords(data), dims=spec.dims(spec.sizes(data)))
    path = tmp_path_factory.mktemp("fit") / "fit.nc"
    bp.Fit(idata, spec, data, {"method": "hand"}).save(path)
    return path


@pytest.fixture()
def candidates(tmp_path):
    path = tmp_path / "pool.csv"
    pd.DataFrame({"a": ["o0", "o0", "o3", "o1"], "b": ["o1", "o4", "o4", "o2"]}).to_csv(path, index=False)
    return path


def test_design_writes_the_ranked_candidates(saved_fit, candidates, tmp_path, capsys):
    out = tmp_path / "ranked.csv"
    assert main(["design", str(saved_fit), str(candidates), "--target", "top_k", "--k", "2", "--out", str(out)]) == 0
    ranked = pd.read_csv(out)
    assert list(ranked.columns[:3]) == ["candidate", "a", "b"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4] and ranked["eig"].is_monotonic_decreasing
    assert sorted(ranked["candidate"]) == [0, 1, 2, 3]
    printed = capsys.readouterr().out
    assert "ordered top 2 options" in printed and str(out) in printed
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".ranked.csv.")]   # no temporary left


def test_design_batch_with_default_output_name(saved_fit, candidates):
    assert main(["design", str(saved_fit), str(candidates), "--n", "2", "--seed", "1"]) == 0
    batch = pd.read_csv(candidates.with_name("pool-ranked.csv"))
    assert batch["step"].tolist() == [1, 2] and batch["candidate"].is_unique


def test_design_errors_are_clear(saved_fit, candidates, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["design", str(saved_fit), str(candidates), "--target", "contrast", "--out", str(out)]) == 2
    assert "--target contrast needs --levels" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"a": ["o0"], "b": ["nobody"]}).to_csv(bad, index=False)
    assert main(["design", str(saved_fit), str(bad), "--out", str(out)]) == 2
    assert "unknown option" in capsys.readouterr().err
    assert main(["design", str(saved_fit), str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["design", str(saved_fit), str(candidates), "--target", "membership", "--user", "u1",
                 "--out", str(out)]) == 2
    assert "latent user types" in capsys.readouterr().err
    assert not out.exists()
