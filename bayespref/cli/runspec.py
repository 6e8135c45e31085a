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
    method = "nuts"               # "svi", "laplace"
    seed = 1                      # the other keys: the method's settings (bayespref.inference.settings)
    chains = 4
    warmup = 1000
    draws = 1000

    [output]
    reference = "Baltimore"       # report worths relative to this option (optional)
    # report_by = "region"        # also write the group report (bayespref.report) by this covariate
    # report_format = "md"        # "md" (default) or "html"

:func:`run` writes into the output folder, atomically (a temporary folder renamed at the end):
``fit.nc`` (the saved fit), ``summary.csv``, ``worths.csv`` (if the model has worths),
``diagnostics.json``, ``worths.png``, a copy of the spec and, with ``report_by``, the folder
``report/`` (:meth:`bayespref.report.GroupReport.save`: ``report.md`` or ``report.html``, PNGs, CSVs).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import tomllib
from typing import Any

import pandas as pd

from bayespref import report
from bayespref._io import atomic_folder
from bayespref.analyses import sensitivity as sa
from bayespref.data.comparisons import Comparisons
from bayespref.data.datasets import load_dataset
from bayespref.errors import DataError, ModelError
from bayespref.inference import fit
from bayespref.inference.settings import SETTINGS, make_settings, settings_fields
from bayespref.models import FAMILIES, sites
from bayespref.validate import seed as check_seed
from bayespref.validate import typed

# TOML values are typed strictly (bayespref.validate.typed: a bool must be a bool, a whole number an
# int, a string a string); [model] and the method's settings in [inference] are typed by the fields
# of the family's spec and of the settings class, which also check their ranges.
#: [inference] keys besides the method's settings (whose fields are the rest: see inference_keys)
COMMON_INFERENCE_TYPES = {"method": str, "seed": int, "log_likelihood": bool, "posterior_predictive": bool}
COMMON_INFERENCE_KEYS = set(COMMON_INFERENCE_TYPES)
#: short chains / few steps for smoke tests (``quick=True``), per setting name
QUICK = {"chains": 2, "warmup": 200, "draws": 200, "steps": 2000, "num_samples": 200}
TOP_TYPES = {"name": str, "description": str, "data": dict, "model": dict, "inference": dict, "output": dict,
             "sensitivity": dict}
TOP_KEYS = set(TOP_TYPES)
_LABEL = str | int  # an option, user or covariate label
SENSITIVITY_TYPES = {"estimand": str, "covariate": _LABEL, "effect": _LABEL, "reference": _LABEL, "feature": str,
                     "a": _LABEL, "b": _LABEL, "group": _LABEL, "exposure": Any, "prevalence": float,
                     "gamma": list[float] | dict, "delta": list[float] | dict, "n_grid": int, "ci_prob": float,
                     "mode": str, "method": str, "steps": int, "warm_steps": int, "lr": float, "num_samples": int,
                     "anchors": list[int] | bool, "gamma_prior": list[float], "delta_prior": list[float],
                     "seed": int}
SENSITIVITY_KEYS = set(SENSITIVITY_TYPES)
OUTPUT_TYPES = {"reference": _LABEL, "report_by": str, "report_format": str}
OUTPUT_KEYS = set(OUTPUT_TYPES)
#: the folder of the group report inside the output folder ([output] report_by)
REPORT_DIR = "report"
DATA_TYPES = {"dataset": str, "path": str, "a": str, "b": str, "outcome": str, "user": str, "prompt": str,
              "features": str | list[str], "user_covariates": str | list[str], "option_table": str,
              "user_table": str}
DATA_KEYS = set(DATA_TYPES)


def inference_keys(method: str) -> set[str]:
    """The keys an [inference] table may hold for ``method``: its settings' fields plus the common ones."""
    return COMMON_INFERENCE_KEYS | (set(settings_fields(method)) - {"progress"})


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
    _typed_table(spec, TOP_TYPES, f"{path}: ")
    unknown = set(spec.get("output", {})) - OUTPUT_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown keys in [output]: {sorted(unknown)}; allowed: {sorted(OUTPUT_KEYS)}.")
    check_report_keys(spec.get("output", {}), str(path))
    unknown = set(spec["data"]) - DATA_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown keys in [data]: {sorted(unknown)}; allowed: {sorted(DATA_KEYS)}.")
    method = spec.get("inference", {}).get("method", "nuts")
    if not isinstance(method, str) or method not in SETTINGS:
        raise ModelError(f"{path}: [inference] method = {method!r} is unknown; use one of {sorted(SETTINGS)}.")
    allowed = inference_keys(method)
    unknown = set(spec.get("inference", {})) - allowed
    if unknown:
        raise ModelError(f"{path}: unknown keys in [inference] for method = {method!r}: {sorted(unknown)}; "
                         f"allowed: {sorted(allowed)}.")
    unknown = set(spec.get("sensitivity", {})) - SENSITIVITY_KEYS
    if unknown:
        raise ModelError(f"{path}: unknown keys in [sensitivity]: {sorted(unknown)}; allowed: "
                         f"{sorted(SENSITIVITY_KEYS)}.")
    check_values(spec, str(path))
    spec["_path"] = str(path)
    return spec


def _typed_table(table: dict, types: dict, where: str) -> None:
    for key, value in table.items():
        typed(key, value, types[key], where=where)


def check_values(spec: dict, where: str = "the spec") -> None:
    """Check the spec's values before anything is read or fitted: every value typed strictly (a bool
    must be a bool, a whole number an int: ``draws = 1.5`` and ``position = "yes"`` are refused), the
    seed, and [model] and the method's settings in [inference] built as they will be fitted (so that
    their ranges are checked too: ``chains = 0``, ``warmup = -10``, ``worth_scale = -1.0``). Raises a
    :class:`ModelError` naming the table, the key and the value."""
    for name, types in (("data", DATA_TYPES), ("output", OUTPUT_TYPES), ("sensitivity", SENSITIVITY_TYPES)):
        _typed_table(spec.get(name, {}), types, f"{where}: [{name}] ")
    inf = dict(spec.get("inference", {}))
    common = {k: inf.pop(k) for k in COMMON_INFERENCE_KEYS if k in inf}
    _typed_table(common, COMMON_INFERENCE_TYPES, f"{where}: [inference] ")
    check_seed(common.get("seed", 0), where=f"{where}: [inference] ")
    if "seed" in spec.get("sensitivity", {}):
        check_seed(spec["sensitivity"]["seed"], where=f"{where}: [sensitivity] ")
    try:
        make_settings(common.get("method", "nuts"), **inf)
    except ModelError as err:
        raise ModelError(f"{where}: [inference] {err}") from None
    try:
        build_model(spec)
    except ModelError as err:
        raise ModelError(f"{where}: {err}") from None


def check_report_keys(output: dict, where: str = "the spec") -> None:
    """Check ``[output] report_by`` (a covariate name) and ``report_format`` (one of ``report.FORMATS``)."""
    by = output.get("report_by")
    if by is not None and (not isinstance(by, str) or not by):
        raise ModelError(f"{where}: [output] report_by = {by!r} must name a user covariate (a string), e.g. "
                         "report_by = \"region\".")
    fmt = output.get("report_format", "md")
    if fmt not in report.FORMATS:
        raise ModelError(f"{where}: [output] report_format = {fmt!r}: use one of {list(report.FORMATS)}.")
    if "report_format" in output and by is None:
        raise ModelError(f"{where}: [output] report_format is set but report_by is not; name the covariate "
                         "that defines the groups (report_by = \"...\").")


def build_data(spec: dict):
    """The :class:`Comparisons` (or, for a bundled rankings dataset, the :class:`Rankings`) a spec describes."""

    d = dict(spec["data"])
    if "dataset" in d:
        ds = load_dataset(d.pop("dataset"))
        kw = {k: v for k, v in d.items() if k in ("features", "user_covariates")}
        return ds.rankings(**kw) if ds.kind == "rankings" else ds.comparisons(**kw)
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
    m = dict(spec["model"])
    family = m.pop("family", "BradleyTerry")
    if not isinstance(family, str) or family not in FAMILIES:
        raise ModelError(f"[model] family = {family!r} is unknown; choose from {sorted(FAMILIES)}.")
    try:
        return FAMILIES[family](**m)
    except TypeError as exc:
        raise ModelError(f"[model] options for {family}: {exc}") from exc
    except ModelError as exc:
        raise ModelError(f"[model] {exc}") from None


def run(spec: dict, out_dir, quick: bool = False, progress: bool = True):
    """Fit the analysis a spec describes and write its outputs to ``out_dir`` atomically.

    ``quick=True`` uses short chains (2 x 200 + 200) for smoke tests. Returns the :class:`Fit`.
    """

    data = build_data(spec)
    by = spec.get("output", {}).get("report_by")
    table = data.user_table
    if by is not None and (table is None or by not in table.columns):  # before the fit, not after it
        avail = [] if table is None else [str(c) for c in table.columns]
        raise DataError(f"[output] report_by = {by!r} is not a user covariate of the data; available: "
                        f"{avail or 'none'} ([data] user_covariates = [...]).")
    model = build_model(spec)
    inf = dict(spec.get("inference", {}))
    method = inf.pop("method", "nuts")
    if quick:
        fields = settings_fields(method)
        inf.update({k: min(v, inf.get(k, v)) for k, v in QUICK.items() if k in fields})
    seed = inf.pop("seed", 0)
    if progress:  # before the compilation, which shows no progress bar
        print(f"Fitting {model.family} to {data.n_obs} {data.obs_dim}s ({method}) ...", file=sys.stderr, flush=True)
    result = fit(model, data, method=method, seed=seed, progress=progress, **inf)
    write_outputs(result, spec, out_dir)
    return result


def write_outputs(result, spec: dict, out_dir) -> pathlib.Path:
    """Write a fit's report files into ``out_dir`` via a temporary folder renamed at the end."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = pathlib.Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        result.save(tmp / "fit.nc")
        result.summary().to_csv(tmp / "summary.csv")
        ref = spec.get("output", {}).get("reference")
        if sites.WORTH in result.idata.posterior:
            result.worths(reference=ref).to_csv(tmp / "worths.csv")
            fig = result.plot_worths(reference=ref)
            fig.savefig(tmp / "worths.png", dpi=120)
            import matplotlib.pyplot as plt

            plt.close(fig)
        if result.model.has_types:
            result.membership().to_pandas().to_csv(tmp / "membership.csv")
        by = spec.get("output", {}).get("report_by")
        if by is not None:
            seed = spec.get("inference", {}).get("seed", 0)
            rep = report.group_report(result, by, reference=ref, seed=seed)
            rep.save(tmp / REPORT_DIR, format=spec.get("output", {}).get("report_format", "md"))
        (tmp / "diagnostics.json").write_text(json.dumps({**result.diagnostics(), **result.info}, indent=2, default=str))
        src = spec.get("_path")
        if src:
            shutil.copy(src, tmp / "spec.toml")
    return out_dir


# -- sensitivity analysis ------------------------------------------------------------------------------
def _grid_values(value, name):
    """A grid from a list of numbers or {min, max, n}."""
    import numpy as np

    if value is None:
        return None
    if isinstance(value, dict):
        try:
            return np.linspace(float(value["min"]), float(value["max"]), int(value.get("n", 11)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"[sensitivity] {name} = {{min, max, n}} is incomplete or not numeric ({exc}).") from None
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return np.asarray(value, dtype=float)
    raise ModelError(f"[sensitivity] {name} must be a list of numbers or {{min = .., max = .., n = ..}}.")


def run_sensitivity(spec: dict, out_dir, quick: bool = False, progress: bool = True):
    """Fit the spec's model, run the sensitivity analysis of its ``[sensitivity]`` table and write a
    report folder atomically: ``sensitivity.csv`` (the grid), ``summary.json`` (fitted estimate,
    tipping point, robustness value, E-value, anchors), ``benchmarks.csv``, ``contour.png``,
    ``intervals.png``, ``prior.csv`` (prior mode), ``fit.nc`` and the spec.

    ``[sensitivity]`` keys: ``estimand`` ("group_contrast" with ``covariate``, ``effect``,
    ``reference``; "feature_effect" with ``feature``; "preference" with ``a``, ``b``, ``group``),
    ``exposure``, ``prevalence``, ``gamma``/``delta`` (lists or ``{min, max, n}``), ``n_grid``,
    ``ci_prob``, ``mode`` ("grid", "prior" or "both"), ``method`` ("svi" or "nuts"), ``steps``,
    ``warm_steps``, ``lr``, ``num_samples``, ``anchors`` ([n_gamma, n_delta] or false),
    ``gamma_prior``/``delta_prior`` ([loc, scale]), ``seed``. Returns (fit, grid result, prior result).
    """

    if "sensitivity" not in spec:
        raise ModelError(f"{spec.get('_path', 'the spec')}: no [sensitivity] table (see models/sensitivity_*.toml).")
    sens = dict(spec["sensitivity"])
    est = sa._estimand_from({k: sens.pop(k) for k in ("estimand", "covariate", "effect", "reference", "feature",
                                                      "a", "b", "group") if k in sens})
    mode = sens.pop("mode", "grid")
    if mode not in ("grid", "prior", "both"):
        raise ModelError(f"[sensitivity] mode = {mode!r}: use 'grid', 'prior' or 'both'.")
    gamma = _grid_values(sens.pop("gamma", None), "gamma")
    delta = _grid_values(sens.pop("delta", None), "delta")
    anchors = sens.pop("anchors", [2, 3])
    anchors = None if anchors is False or anchors == [] else tuple(int(a) for a in anchors)
    g_prior = tuple(sens.pop("gamma_prior", (0.0, 1.0)))
    d_prior = tuple(sens.pop("delta_prior", (0.0, 1.0)))
    common = {k: sens.pop(k) for k in ("exposure", "prevalence", "ci_prob") if k in sens}
    seed = sens.pop("seed", spec.get("inference", {}).get("seed", 0))
    grid_kw = {k: sens.pop(k) for k in ("method", "steps", "warm_steps", "lr", "num_samples", "n_grid") if k in sens}

    data = build_data(spec)
    model = build_model(spec)
    inf = dict(spec.get("inference", {}))
    nuts = {"chains": 2, "warmup": 500, "draws": 500}
    if quick:  # the quick settings that the fit's method takes
        fields = settings_fields(inf.get("method", "nuts"))
        short = dict(chains=2, warmup=200, draws=200, steps=min(int(inf.get("steps", 2000)), 2000), num_samples=200)
        inf.update({k: v for k, v in short.items() if k in fields})
        grid_kw.update(steps=min(int(grid_kw.get("steps", 300)), 300), warm_steps=min(int(grid_kw.get("warm_steps",
                       1500)), 1500), num_samples=min(int(grid_kw.get("num_samples", 400)), 400))
        nuts = {"chains": 2, "warmup": 150, "draws": 150}
    method = inf.pop("method", "nuts")
    fseed = inf.pop("seed", 0)
    result = fit(model, data, method=method, seed=fseed, progress=progress, **inf)
    grid_res = prior_res = None
    if mode in ("grid", "both"):
        grid_res = sa.grid(result, est, gamma, delta, anchors=anchors, seed=seed, progress=progress, nuts=nuts,
                           **common, **grid_kw)
    if mode in ("prior", "both"):
        pk = {"chains": 2, "warmup": 200, "draws": 200} if quick else {}
        prior_res = sa.prior(result, est, gamma=g_prior, delta=d_prior, seed=seed, progress=progress, **common, **pk)
    write_sensitivity(result, grid_res, prior_res, spec, out_dir)
    return result, grid_res, prior_res


def write_sensitivity(result, grid_res, prior_res, spec: dict, out_dir) -> pathlib.Path:
    """Write a sensitivity report folder via a temporary folder renamed at the end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = pathlib.Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        result.save(tmp / "fit.nc")
        summary = {}
        if grid_res is not None:
            grid_res.table().to_csv(tmp / "sensitivity.csv", index=False)
            grid_res.benchmarks(multiples=(1, 2, 3)).to_csv(tmp / "benchmarks.csv")
            summary = grid_res.report()
            for name, fig in (("contour.png", grid_res.plot_contour()), ("intervals.png", grid_res.plot_intervals())):
                fig.savefig(tmp / name, dpi=120)
                plt.close(fig)
        if prior_res is not None:
            prior_res.summary().to_csv(tmp / "prior.csv")
            summary["prior"] = {"priors": prior_res.priors, "interval": prior_res.interval(),
                                "estimand": prior_res.estimand.to_dict()}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable))
        src = spec.get("_path")
        if src:
            shutil.copy(src, tmp / "spec.toml")
    return out_dir


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
