"""``bayespref report SPEC --by COV`` and ``[output] report_by``: the same report from the command line."""

from __future__ import annotations

import pathlib

import pytest

from bayespref.cli import main, runspec
from bayespref.errors import ModelError

pytestmark = [pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::bayespref.errors.DataWarning")]

SPEC = """name = "arena_regions"
[data]
path = "battles.csv"
a = "model_a"
b = "model_b"
outcome = "outcome"
user = "judge"
user_covariates = ["region"]
[model]
family = "Hierarchical"
varying = ["worths"]
correlated = false
[inference]
seed = 4
{output}"""
FIT_FILES = {"fit.nc", "summary.csv", "worths.csv", "worths.png", "diagnostics.json", "spec.toml"}


@pytest.fixture(scope="module")
def spec_dir(arena, tmp_path_factory):
    battles, judges = arena
    decided = battles[battles["winner"] != "tie"]
    frame = decided.assign(outcome=(decided["winner"] == "model_a").astype(int),
                           region=judges.loc[decided["judge"], "region"].to_numpy())
    folder = tmp_path_factory.mktemp("cli")
    frame.to_csv(folder / "battles.csv", index=False)
    return folder


def _spec(folder: pathlib.Path, name: str, output: str = "") -> pathlib.Path:
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(output=output))
    return path


def test_report_command_writes_fit_and_report(spec_dir, tmp_path, capsys):
    spec = _spec(spec_dir, "plain")
    out = tmp_path / "run"
    assert main(["report", str(spec), "--by", "region", "--out", str(out), "--quick", "--no-progress"]) == 0
    names = {p.name for p in out.iterdir()}
    assert FIT_FILES | {"report"} <= names
    rep = out / "report"
    files = {p.name for p in rep.iterdir()}
    assert {"report.md", "rankings.png", "reversals.png", "ppc_calibration.png", "rankings.csv",
            "contrasts.csv", "variance_shares.csv"} <= files
    md = (rep / "report.md").read_text()
    assert md.startswith("# Preferences by region") and "Not available" not in md
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert "report by region in report/" in capsys.readouterr().out


def test_fit_with_report_by_in_the_spec_writes_html(spec_dir, tmp_path):
    spec = _spec(spec_dir, "html", '[output]\nreport_by = "region"\nreport_format = "html"\n')
    out = tmp_path / "run"
    assert main(["fit", str(spec), "--out", str(out), "--quick", "--no-progress"]) == 0
    page = (out / "report" / "report.html").read_text()
    assert "<h2>Per-group rankings</h2>" in page and "src='rankings.png'" in page


def test_report_keys_are_checked(spec_dir, tmp_path, capsys):
    with pytest.raises(ModelError, match="report_format"):
        runspec.load_spec(_spec(spec_dir, "pdf", '[output]\nreport_by = "region"\nreport_format = "pdf"\n'))
    with pytest.raises(ModelError, match="report_by"):
        runspec.load_spec(_spec(spec_dir, "nonstr", "[output]\nreport_by = 3\n"))
    with pytest.raises(ModelError, match="report_by is not"):
        runspec.load_spec(_spec(spec_dir, "fmtonly", '[output]\nreport_format = "md"\n'))
    out = tmp_path / "none"
    assert main(["report", str(_spec(spec_dir, "noby")), "--out", str(out), "--quick"]) == 2
    assert "--by COV" in capsys.readouterr().err
    assert main(["report", str(_spec(spec_dir, "badby")), "--by", "age", "--out", str(out), "--quick"]) == 2
    assert "not a user covariate" in capsys.readouterr().err
    assert not out.exists()
