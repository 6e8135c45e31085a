"""The command line (``bayespref``), the run specs in models/ and atomic result folders.

Fits are run in-process through :func:`bayespref.cli.main` (one JAX start-up for the whole module)
with ``--quick`` chains; only the console-script test starts a new interpreter.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import bayespref as bp
from bayespref.cli import (
    main,  # noqa: E402
    runspec,  # noqa: E402
)
from bayespref.inference.result import Fit  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "models").glob("*.toml"))
OUTPUTS = {"fit.nc", "summary.csv", "worths.csv", "worths.png", "diagnostics.json", "spec.toml"}

# quick chains are short, so convergence warnings are expected; flatlizards' contest graph is
# disconnected (a DataWarning, by design of the data)
pytestmark = [
    pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::bayespref.errors.DataWarning"),
]


def _leftovers(parent: pathlib.Path, name: str) -> list[str]:
    """Temporary folders a run into ``parent / name`` may leave behind (``.name.*``)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# -- help and listing -------------------------------------------------------------------------------
def test_help_explains_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("fit", "demo", "datasets"):
        assert command in out
    assert "models/baseball.toml" in out  # an example


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: bayespref" in capsys.readouterr().out


def test_console_script_help():
    exe = pathlib.Path(sys.executable).with_name("bayespref")
    cmd = [str(exe)] if exe.exists() else [shutil.which("bayespref") or "bayespref"]
    res = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage: bayespref" in res.stdout
    assert "fit" in res.stdout and "demo" in res.stdout


@pytest.mark.slow  # a fresh interpreter importing JAX (~5 s); keeps the default suite within 10 min (CI-like runs: 10:07-10:31 before)
def test_bp_fit_stays_the_function():
    """bp.fit is the function even after the module holding it was imported (no name clash)."""
    code = ("import bayespref as bp\n"
            "from bayespref.cli import main\n"
            "import bayespref.inference.result, bayespref.cli.runspec\n"
            "bp.load_fit\n"
            "assert callable(bp.fit), type(bp.fit)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]


def test_datasets_lists_the_bundled_data(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("baseball", "cems", "citations", "flatlizards", "football", "pudding", "topmodel2007"):
        assert name in out


# -- the specs in models/ ---------------------------------------------------------------------------
def test_models_folder_has_the_named_analyses():
    names = {p.stem for p in SPECS}
    assert {"baseball", "citations", "pudding", "cems", "cems_hierarchical", "topmodel2007",
            "flatlizards", "football"} <= names


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_parses_and_builds(path):
    spec = runspec.load_spec(path)
    assert spec["name"] == path.stem
    assert len(spec.get("description", "")) > 40, "describe the analysis and cite its reference"
    data = runspec.build_data(spec)
    model = runspec.build_model(spec)
    model.check(data)
    sizes = model.sizes(data)
    assert sizes["n_options"] == data.n_options
    assert model.summary_vars(sizes)
    ref = spec.get("output", {}).get("reference")
    if ref is not None:
        assert ref in list(data.options), f"reference {ref!r} is not an option of {path.name}"


def test_a_bundled_rankings_dataset_is_fitted_as_rankings():
    """beans holds rankings: a spec naming it fits the rankings, not the pairs they imply."""
    data = runspec.build_data(runspec.load_spec(ROOT / "models" / "beans_rankings.toml"))
    assert isinstance(data, bp.Rankings) and data.n_rankings == 3368


# -- fit: outputs, reload, atomicity ----------------------------------------------------------------
@pytest.fixture(scope="module")
def baseball_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "baseball"
    code = main(["fit", str(ROOT / "models" / "baseball.toml"), "--quick", "--no-progress", "--out", str(out)])
    return code, out


def test_fit_writes_the_results_folder(baseball_run):
    code, out = baseball_run
    assert code == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert not _leftovers(out.parent, out.name)
    diag = json.loads((out / "diagnostics.json").read_text())
    assert {"max_rhat", "min_ess_bulk", "divergences", "method"} <= set(diag)
    assert diag["chains"] == 2 and diag["draws"] == 200  # --quick
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert "position" in summary.index
    worths = pd.read_csv(out / "worths.csv", index_col=0)
    assert worths.loc["Baltimore", "mean"] == 0.0
    published = bp.load_dataset("baseball").reference["log_worth"]
    for team, value in published.items():
        assert abs(worths.loc[team, "mean"] - value) < 0.35, team
    assert (out / "worths.png").stat().st_size > 1000
    assert (out / "spec.toml").read_text() == (ROOT / "models" / "baseball.toml").read_text()


def test_saved_fit_loads(baseball_run):
    _, out = baseball_run
    result = bp.load_fit(out / "fit.nc")
    assert result.model.family == "BradleyTerry" and result.model.position
    assert set(result.data.options) == set(bp.load_dataset("baseball").options)
    new = pd.DataFrame({"a": ["Boston"], "b": ["Baltimore"]})
    p = result.predict(new)
    assert 0.5 < p.loc[0, "p_a"] < 1.0


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Topmodel" in text and "Worths of the average user" in text and "Barbara" in text
    assert {"fit.nc", "summary.csv", "worths.csv", "worths.png", "diagnostics.json"} <= {p.name for p in out.iterdir()}
    result = bp.load_fit(out / "fit.nc")
    assert result.model.family == "Hierarchical"


def test_failure_midway_leaves_no_folder(tmp_path, monkeypatch):
    def broken_save(self, path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Fit, "save", broken_save)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="disk full"):
        main(["fit", str(ROOT / "models" / "baseball.toml"), "--quick", "--no-progress", "--out", str(out)])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder either


def test_interrupt_midway_keeps_the_existing_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("previous results")

    def interrupted(self, *args, **kwargs):  # fit.nc, summary.csv and worths.csv are written by now
        raise KeyboardInterrupt

    monkeypatch.setattr(Fit, "plot_worths", interrupted)
    code = main(["fit", str(ROOT / "models" / "baseball.toml"), "--quick", "--no-progress", "--out", str(out)])
    assert code == 130
    assert "no results were written" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert (out / "old.txt").read_text() == "previous results"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


# -- bad specs: exit code 2 and a readable message --------------------------------------------------
BAD_SPECS = {
    "missing_data": ('[model]\nfamily = "BradleyTerry"\n', "[data] table is missing"),
    "unknown_family": ('[data]\ndataset = "baseball"\n[model]\nfamily = "Thurstone"\n', "Thurstone"),
    "unknown_key": ('[data]\ndataset = "baseball"\ncolour = "red"\n[model]\nfamily = "BradleyTerry"\n', "colour"),
    "missing_csv": ('[data]\npath = "no_such_file.csv"\n[model]\nfamily = "BradleyTerry"\n', "no_such_file.csv"),
    "bad_option": ('[data]\ndataset = "baseball"\n[model]\nfamily = "BradleyTerry"\nhome = true\n', "home"),
    "not_toml": ("[data\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_exits_2_with_a_message(case, tmp_path, capsys):
    text, expected = BAD_SPECS[case]
    spec = tmp_path / f"{case}.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    assert main(["fit", str(spec), "--quick", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bayespref: error:")
    assert expected in err
    assert "Traceback" not in err
    assert not out.exists()


def test_missing_spec_file_exits_2(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "out")]) == 2
    assert "No spec file" in capsys.readouterr().err


def test_spec_with_csv_path(tmp_path, capsys):
    """A spec reading its own CSV (relative to the spec file) with a column mapping."""
    pd.DataFrame({"left": ["x", "y", "z", "x", "y", "z"] * 5,
                  "right": ["y", "z", "x", "z", "x", "y"] * 5,
                  "choice": [1, 1, 0, 1, 0, 1] * 5}).to_csv(tmp_path / "mine.csv", index=False)
    spec = tmp_path / "mine.toml"
    spec.write_text('name = "mine"\n[data]\npath = "mine.csv"\na = "left"\nb = "right"\noutcome = "choice"\n'
                    '[model]\nfamily = "BradleyTerry"\n')
    s = runspec.load_spec(spec)
    data = runspec.build_data(s)
    assert data.n_comparisons == 30 and list(data.options) == ["x", "y", "z"]
