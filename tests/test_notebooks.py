"""Every notebook in notebooks/ runs top to bottom (quick settings) and leaves the repository clean.

The notebooks are executed with nbclient in a ``python3`` kernel running this interpreter
(``sys.executable``, the one with bayespref installed), with ``BAYESPREF_QUICK=1`` (short chains) and
``MPLBACKEND=Agg``. Any cell error fails the test.
"""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"
# caches that test and lint runs beside this one may create at the top of the repository
_TOOL_CACHES = {".pytest_cache", ".ruff_cache", ".import_linter_cache", ".hypothesis"}
# jupyter_client replaces these with sys.executable when it starts the kernel
_PLAIN_PYTHON = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def _use_this_interpreter(monkeypatch, tmp_path):
    """Make the ``python3`` kernel run ``sys.executable``, whatever kernelspecs the machine has."""
    try:
        argv0 = kernelspec.KernelSpecManager().get_kernel_spec(KERNEL).argv[0]
    except kernelspec.NoSuchKernel:
        argv0 = None
    if argv0 in _PLAIN_PYTHON or argv0 == sys.executable:
        return
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (bayespref tests)", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def _snapshot() -> set[str]:
    """Top-level entries of the repository and everything under notebooks/ (where a notebook could write)."""
    top = {p.name for p in ROOT.iterdir() if p.name not in _TOOL_CACHES}
    nbs = {str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").rglob("*")
           if ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}
    return top | nbs


def test_there_are_notebooks():
    assert any(p.name == "01_quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {i} has outputs; clear them"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    _use_this_interpreter(monkeypatch, tmp_path)
    monkeypatch.setenv("BAYESPREF_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    probe = nbformat.v4.new_code_cell("import sys; print(sys.executable, end='')")
    nb.cells.insert(0, probe)  # in memory only
    before = _snapshot()
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=600,
                                     resources={"metadata": {"path": str(ROOT)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the message names the cell and traceback
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    assert probe.outputs[0]["text"] == sys.executable, "the kernel ran another Python"
    created = _snapshot() - before
    assert not created, f"{path.name} wrote into the repository: {sorted(created)}"
