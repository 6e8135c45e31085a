"""Declarative analyses: a TOML spec in ``models/`` says what to fit and what to write.

.. code-block:: toml

    name = "baseball"
    description = "BT with home advantage (BradleyTerry2 vignette, section 3.3)"

    [data]
    dataset = "baseball"          # a bundled dataset, or:
    # path = "my_comparisons.csv" # relative to the spec file
    # a = "left"; b = "right"; outcome = "choice"; user = "rater"; features = ["len"]
    # user_covariates = ["group"]  (columns constant within a user)

    [model]
    family = "BradleyTerry"       # or "Hierarchical"; other keys are the spec's options
    position = true

    [inference]
    method = "nuts"               # "svi"
    seed = 1
    chains = 4
    warmup = 1000
    draws = 1000

    [output]
    reference = "Baltimore"       # report worths relative to this option (optional)

:func:`run` writes into the output folder, atomically (a temporary folder renamed at the end):
``fit.nc`` (the saved fit), ``summary.csv``, ``worths.csv`` (if the model has worths),
``diagnostics.json``, ``worths.png`` and a copy of the spec.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
import tomllib

import pandas as pd

from ._io import usual_mode
from .errors import DataError, ModelError

INFERENCE_KEYS = {"method", "seed", "chains", "warmup", "draws", "target_accept", "max_tree_depth", "steps",
                  "lr", "guide", "batch_size", "tol", "num_samples"}
TOP_KEYS = {"name", "description", "data", "model", "inference", "output"}
OUTPUT_KEYS = {"reference"}
DATA_KEYS = {"dataset", "path", "a", "b", "outcome", "user", "prompt", "features", "user_covariates",
             "option_table", "user_table"}


def load_spec(path) -> dict:
    """Read and check a TOML run spec; raises :class:`ModelError` naming what is wrong."""
    path = pathlib.Path(path)
    if not path.exists():
        raise ModelError(f"No spec file at {path}.")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{path} is not valid TOML: {exc}") from exc
    for section in ("data", "model"):
        if section not in spec:
            raise ModelError(f"{path}: the [{section}] table is missing (see models/baseball.toml for an example).")
    unknown = set(spec) - TOP_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown top-level keys or tables: {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}.")
    unknown = set(spec.get("output", {})) - OUTPUT_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown keys in [output]: {sorted(unknown)}; allowed: {sorted(OUTPUT_KEYS)}.")
    unknown = set(spec["data"]) - DATA_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown keys in [data]: {sorted(unknown)}; allowed: {sorted(DATA_KEYS)}.")
    unknown = set(spec.get("inference", {})) - INFERENCE_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown keys in [inference]: {sorted(unknown)}; allowed: {sorted(INFERENCE_KEYS)}.")
    spec["_path"] = str(path)
    return spec


def build_data(spec: dict):
    """The :class:`Comparisons` a spec describes."""
    from .data import Comparisons
    from .datasets import load_dataset

    d = dict(spec["data"])
    if "dataset" in d:
        ds = load_dataset(d.pop("dataset"))
        return ds.comparisons(**{k: v for k, v in d.items() if k in ("features", "user_covariates")})
    if "path" not in d:
        raise DataError("[data] needs either `dataset = <bundled name>` or `path = <csv file>`.")
    base = pathlib.Path(spec.get("_path", ".")).parent
    csv = base / d.pop("path")
    if not csv.exists():
        raise DataError(f"[data] path {csv} does not exist.")
    frame = pd.read_csv(csv)
    for key in ("option_table", "user_table"):
        if key in d:
            d["features" if key == "option_table" else "user_covariates"] = pd.read_csv(base / d.pop(key), index_col=0)
    return Comparisons.from_frame(frame, **d)


def build_model(spec: dict):
    from .models import FAMILIES

    m = dict(spec["model"])
    family = m.pop("family", "BradleyTerry")
    if family not in FAMILIES:
        raise ModelError(f"[model] family = {family!r} is unknown; choose from {sorted(FAMILIES)}.")
    try:
        return FAMILIES[family](**m)
    except TypeError as exc:
        raise ModelError(f"[model] options for {family}: {exc}") from exc


def run(spec: dict, out_dir, quick: bool = False, progress: bool = True):
    """Fit the analysis a spec describes and write its outputs to ``out_dir`` atomically.

    ``quick=True`` uses short chains (2 x 200 + 200) for smoke tests. Returns the :class:`Fit`.
    """
    from .fitting import fit

    data = build_data(spec)
    model = build_model(spec)
    inf = dict(spec.get("inference", {}))
    if quick:
        inf.update(chains=2, warmup=200, draws=200, steps=min(int(inf.get("steps", 2000)), 2000), num_samples=200)
    method = inf.pop("method", "nuts")
    seed = inf.pop("seed", 0)
    result = fit(model, data, method=method, seed=seed, progress=progress, **inf)
    write_outputs(result, spec, out_dir)
    return result


def write_outputs(result, spec: dict, out_dir) -> pathlib.Path:
    """Write a fit's report files into ``out_dir`` via a temporary folder renamed at the end."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = pathlib.Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        usual_mode(tmp, directory=True)
        result.save(tmp / "fit.nc")
        result.summary().to_csv(tmp / "summary.csv")
        ref = spec.get("output", {}).get("reference")
        if "worth" in result.idata.posterior:
            result.worths(reference=ref).to_csv(tmp / "worths.csv")
            fig = result.plot_worths(reference=ref)
            fig.savefig(tmp / "worths.png", dpi=120)
            import matplotlib.pyplot as plt

            plt.close(fig)
        if hasattr(result.model, "history_arrays"):
            result.membership().to_pandas().to_csv(tmp / "membership.csv")
        (tmp / "diagnostics.json").write_text(json.dumps({**result.diagnostics(), **result.info}, indent=2, default=str))
        src = spec.get("_path")
        if src:
            shutil.copy(src, tmp / "spec.toml")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
