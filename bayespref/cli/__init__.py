"""Command line: ``bayespref demo | fit | report | sensitivity | design | datasets``.

Every run writes its results atomically to an output folder (nothing half-written on failure,
Ctrl-C or SIGTERM, which is handled like Ctrl-C) and shows progress.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from bayespref import _io
from bayespref.errors import BayesprefError

DEMO_SPEC = {
    "name": "demo",
    "description": ("Germany's Next Topmodel 2007: 192 viewers compared 6 finalists in all 15 pairs. "
                    "Hierarchical Bradley-Terry model: each viewer has their own worths, partially "
                    "pooled, shifted by gender and by whether they watched the show (q2)."),
    "data": {"dataset": "topmodel2007", "user_covariates": ["gender", "q2"]},
    "model": {"family": "Hierarchical", "varying": ["worths"], "correlated": False},
    "inference": {"method": "nuts", "seed": 2007, "chains": 4, "warmup": 1000, "draws": 1000},
    "output": {"reference": "Barbara"},
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bayespref",
        description=("Hierarchical Bayesian Bradley-Terry models for pairwise preferences. "
                     "Fit a bundled demo, or a TOML spec from models/, and write a results folder "
                     "(saved fit, summary tables, plots)."),
        epilog="Examples:\n  bayespref demo\n  bayespref fit models/baseball.toml --out results/baseball\n"
               "  bayespref report models/topmodel2007_groups.toml --by gender\n"
               "  bayespref sensitivity models/sensitivity_topmodel2007.toml\n"
               "  bayespref design fit.nc candidates.csv --target weight --feature x1 --out ranked.csv\n"
               "  bayespref datasets",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="fit the bundled Topmodel 2007 data and print a readable summary")
    d.add_argument("--out", default="bayespref-results/demo", help="output folder (default: %(default)s)")
    d.add_argument("--quick", action="store_true", help="short chains, for a smoke test")
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    f = sub.add_parser("fit", help="run the analysis described by a TOML spec (see models/)")
    f.add_argument("spec", help="path to a TOML spec, e.g. models/baseball.toml")
    f.add_argument("--out", default=None, help="output folder (default: bayespref-results/<spec name>)")
    f.add_argument("--quick", action="store_true", help="short chains, for a smoke test")
    f.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r = sub.add_parser("report", help="fit a TOML spec and write the group report (rankings, contrasts, rank "
                                      "reversals, pooled vs groups, variance shares, convergence, checks)")
    r.add_argument("spec", help="path to a TOML spec, e.g. models/topmodel2007_groups.toml")
    r.add_argument("--by", default=None, help="the user covariate whose levels are the groups (default: the "
                                              "spec's [output] report_by)")
    r.add_argument("--out", default=None, help="output folder (default: bayespref-results/<spec name>); the "
                                               "report is its report/ folder")
    r.add_argument("--format", choices=("md", "html"), default=None,
                   help="report.md or report.html (default: the spec's [output] report_format, else md)")
    r.add_argument("--quick", action="store_true", help="short chains, for a smoke test")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sa = sub.add_parser("sensitivity", help="sensitivity analysis for an unobserved confounder ([sensitivity] "
                                            "table of a TOML spec, see models/sensitivity_*.toml)")
    sa.add_argument("spec", help="path to a TOML spec with a [sensitivity] table")
    sa.add_argument("--out", default=None,
                    help="output folder (default: bayespref-results/<spec name>-sensitivity)")
    sa.add_argument("--quick", action="store_true", help="short chains and few SVI steps, for a smoke test")
    sa.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _design_parser(sub)
    sub.add_parser("datasets", help="list the bundled datasets")
    return p


DESIGN_TARGETS = ("parameters", "contrast", "top_k", "membership", "weight", "amce", "predictions")


def _design_parser(sub) -> None:
    g = sub.add_parser(
        "design", help="rank candidate comparisons by what judging them would teach (expected information gain "
                       "about a target) and write them to a CSV",
        description="Read a saved fit (fit.nc of 'bayespref fit') and a CSV of candidate comparisons (the training "
                    "frame's columns: a, b, features, optionally user or the user covariates), score every "
                    "candidate by its expected information gain about the target, and write the ranked "
                    "candidates (or, with --n, a batch chosen together) to a CSV, atomically.",
        epilog="Examples:\n  bayespref design fit.nc pool.csv --out ranked.csv\n"
               "  bayespref design fit.nc pool.csv --target contrast --by group --levels B A --effect x0 --n 50 "
               "--budget 5\n  bayespref design fit.nc pool.csv --target weight --feature x1 --exclude-judged",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("fit", help="a saved fit (NetCDF written by Fit.save or 'bayespref fit')")
    g.add_argument("candidates", help="CSV of candidate comparisons")
    g.add_argument("--out", default=None, help="CSV to write (default: <candidates>-ranked.csv beside the candidates)")
    g.add_argument("--target", choices=DESIGN_TARGETS, default="parameters",
                   help="what to learn about (default: %(default)s, every parameter)")
    g.add_argument("--by", default=None, help="contrast: the user covariate whose levels are the groups")
    g.add_argument("--levels", nargs=2, metavar=("FIRST", "SECOND"), default=None,
                   help="contrast: the two groups (first minus second)")
    g.add_argument("--effect", default=None, help="contrast: the feature or option whose effect is contrasted")
    g.add_argument("--feature", default=None, help="weight / amce: the feature")
    g.add_argument("--k", type=int, default=3, help="top_k: how many options (default: %(default)s)")
    g.add_argument("--type", type=int, default=None, help="top_k / weight of a latent-types fit: the type")
    g.add_argument("--user", default=None, help="membership: the user (a training user or a new one)")
    g.add_argument("--judgements", default=None, help="membership: CSV of the user's answers so far")
    g.add_argument("--test", default=None, help="predictions: CSV of the test comparisons")
    g.add_argument("--user-covariates", default=None,
                   help="CSV of covariates of users the fit has not seen (first column: the user id)")
    g.add_argument("--n", type=int, default=None, help="select a batch of N judgements chosen together "
                                                       "(default: score every candidate on its own)")
    g.add_argument("--budget", type=int, default=None, help="batch: at most this many judgements per unit")
    g.add_argument("--budget-by", default="user", help="batch: the unit of the budget, 'user' or a user covariate "
                                                       "(default: %(default)s)")
    g.add_argument("--exclude-judged", action="store_true", help="leave out pairs the fit's data already hold")
    g.add_argument("--max-draws", type=int, default=1000, help="posterior draws used (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")


def _report(result, spec, out):
    import pandas as pd

    from bayespref.models import sites  # deferred like runspec: models import JAX and NumPyro (1-2 s)

    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 3):
        print(f"\n{spec.get('description', '')}\n")
        print(result)
        print("\nPosterior summary (90% intervals):")
        print(result.summary().to_string())
        if sites.WORTH in result.idata.posterior:
            ref = spec.get("output", {}).get("reference")
            average = " of the average user" if sites.GROUP_WORTH in result.idata.posterior else ""
            print(f"\nWorths{average} (log scale{', relative to ' + str(ref) if ref is not None else ''}):")
            print(result.worths(reference=ref).sort_values("rank").to_string())
        diag = result.diagnostics()
        print(f"\nDiagnostics: max R-hat {diag['max_rhat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}, "
              f"divergences {diag['divergences']}")
        _print_convergence(result)
    written = "fit.nc, summary.csv, worths.csv, worths.png, diagnostics.json"
    by = spec.get("output", {}).get("report_by")
    if by is not None:
        written += f"; report by {by} in report/ (report.{spec['output'].get('report_format', 'md')}, PNGs, CSVs)"
    print(f"\nResults written to {out}/ ({written})")


def _print_convergence(result) -> None:
    """The convergence problems of a fit, each naming its parameters, and the remedy (nothing when OK)."""
    rep = result.convergence()
    if rep.ok:
        return
    print(f"Convergence: {len(rep.problems)} problem(s) (the 'flag' column above marks the parameters):")
    for problem in rep.problems:
        print(f"  ! {problem}")
    if rep.advice:
        print(f"  Remedy: {rep.advice}.")


def _with_report(spec: dict, args) -> dict:
    """The spec with ``[output] report_by`` / ``report_format`` from ``--by`` / ``--format``."""
    output = dict(spec.get("output", {}))
    if args.by is not None:
        output["report_by"] = args.by
    if args.format is not None:
        output["report_format"] = args.format
    if "report_by" not in output:
        raise BayesprefError(f"bayespref report: name the covariate that defines the groups: --by COV, or "
                             f"report_by = \"...\" in the [output] table of {spec.get('_path', 'the spec')}.")
    return {**spec, "output": output}


def _sensitivity_report(grid_res, prior_res, spec, out):
    import pandas as pd

    print(f"\n{spec.get('description', '')}\n")
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 3):
        if grid_res is not None:
            nv = grid_res.naive()
            pct = round(100 * grid_res.ci_prob)
            print(f"Estimand: {grid_res.estimand.label}")
            print(f"Fitted model (no confounding): {nv['mean']:.3g} [{nv['lower']:.3g}, {nv['upper']:.3g}] ({pct}%)")
            print(f"Confounder U tied to: {grid_res.exposure}; prevalence {grid_res.prevalence:g}")
            tp = grid_res.tipping_point()
            print(f"Tipping point (gamma = delta = t at which the interval reaches {grid_res.estimand.null:g}): "
                  f"t = {tp['t']:.3g}, odds ratio {tp['odds_ratio']:.3g}")
            rv = grid_res.robustness_value()
            print(f"Robustness value (latent-utility scale): RV = {rv['rv_q']:.3f}, RV_alpha = {rv['rv_q_alpha']:.3f}")
            ev = grid_res.evalue()
            print(f"E-value (odds scale, RR ~ sqrt(OR)): {ev['evalue']:.3g}; for the interval bound: "
                  f"{ev['evalue_bound']:.3g}")
            b = grid_res.benchmarks(multiples=(1, 2, 3))
            if len(b):
                print("\nConfounders as strong as observed covariates (k times):")
                print(b.to_string())
            if "anchors" in grid_res.info:
                print("\nFast grid vs exact NUTS refits at the anchors (discrepancy in posterior SDs, corrected):")
                print(grid_res.info["anchors"].to_string(index=False))
        if prior_res is not None:
            print("\nPrior mode (normal priors on gamma, delta):")
            print(prior_res.summary().to_string())
    print(f"\nResults written to {out}/ (sensitivity.csv, summary.json, benchmarks.csv, contour.png, "
          "intervals.png, fit.nc)")


def _folder_state(path: pathlib.Path):
    """What identifies the folder at ``path`` (None when there is none): replaced folders differ."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    target = {}  # the output folder and what identified it before the run
    try:
        # SIGTERM is handled like Ctrl-C; both are remembered, so that one whose KeyboardInterrupt
        # Python dropped (raised in a garbage-collector callback) still stops the run (see _io)
        with _io.interrupts_raise():
            code = _command(args, target)
            _io.check_interrupted()
            return code
    except BayesprefError as exc:
        print(f"bayespref: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = target.get("out")
        if out is not None and _folder_state(out) != target["before"]:
            print(f"bayespref: interrupted after the results were written to {out}/.", file=sys.stderr)
        else:
            kept = f" ({out}/ is as it was before the run)" if out is not None and target["before"] else ""
            print(f"bayespref: interrupted; no results were written{kept}.", file=sys.stderr)
        return 130


def _command(args, target: dict) -> int:
    if args.command == "datasets":
        from bayespref.data.datasets import list_datasets  # deferred: pandas only, no JAX

        print(list_datasets().to_string(index=False))
        return 0
    # Deferred on purpose: runspec imports JAX and NumPyro (1-2 s), which `--help` and
    # `datasets` should not pay.
    from bayespref.cli import runspec

    if args.command == "design":
        return _design(args, target)
    if args.command == "sensitivity":
        spec = runspec.load_spec(args.spec)
        name = spec.get("name", pathlib.Path(args.spec).stem)
        out = pathlib.Path(args.out or f"bayespref-results/{name}-sensitivity")
        target.update(out=out, before=_folder_state(out))
        _, grid_res, prior_res = runspec.run_sensitivity(spec, out, quick=args.quick, progress=not args.no_progress)
        _sensitivity_report(grid_res, prior_res, spec, out)
        return 0
    if args.command == "demo":
        spec, out = DEMO_SPEC, pathlib.Path(args.out)
    else:
        spec = runspec.load_spec(args.spec)
        out = pathlib.Path(args.out or f"bayespref-results/{spec.get('name', pathlib.Path(args.spec).stem)}")
    if args.command == "report":
        spec = _with_report(spec, args)
    target.update(out=out, before=_folder_state(out))
    result = runspec.run(spec, out, quick=args.quick, progress=not args.no_progress)
    _report(result, spec, out)
    return 0


def _read_csv(path, what: str, index: bool = False):
    import pandas as pd

    path = pathlib.Path(path)
    if not path.is_file():
        raise BayesprefError(f"bayespref design: the {what} file {path} does not exist.")
    try:
        return pd.read_csv(path, index_col=0 if index else None)
    except Exception as exc:  # unreadable, empty, not CSV
        raise BayesprefError(f"bayespref design: {path} is not a readable CSV of {what} ({exc}).") from exc


def _design_target(args, design):
    """The target named by the design verb's options (a BayesprefError naming a missing one)."""
    def need(option, value):
        if value is None:
            raise BayesprefError(f"bayespref design --target {args.target} needs {option}.")
        return value

    if args.target == "parameters":
        return design.parameters()
    if args.target == "contrast":
        first, second = need("--levels FIRST SECOND", args.levels)
        return design.contrast(need("--by COV", args.by), first, second, need("--effect NAME", args.effect))
    if args.target == "top_k":
        return design.top_k(args.k, type=args.type)
    if args.target == "weight":
        return design.weight(need("--feature F", args.feature), type=args.type)
    if args.target == "amce":
        return design.amce(need("--feature F", args.feature))
    if args.target == "membership":
        judgements = None if args.judgements is None else _read_csv(args.judgements, "judgements")
        cov = None if args.user_covariates is None else _read_csv(args.user_covariates, "user covariates", True)
        return design.membership(need("--user ID", args.user), judgements, cov)
    return design.predictions(_read_csv(need("--test CSV", args.test), "test comparisons"))


def _design(args, target: dict) -> int:
    """``bayespref design``: rank (or select) candidate comparisons and write them to a CSV."""
    import pandas as pd

    from bayespref.analyses import design  # deferred like runspec (JAX)
    from bayespref.inference.result import load_fit

    fit = load_fit(args.fit)
    candidates = _read_csv(args.candidates, "candidate comparisons")
    cov = None if args.user_covariates is None else _read_csv(args.user_covariates, "user covariates", True)
    goal = _design_target(args, design)
    out = pathlib.Path(args.out) if args.out else pathlib.Path(args.candidates).with_name(
        pathlib.Path(args.candidates).stem + "-ranked.csv")
    target.update(out=out, before=_folder_state(out))
    options = dict(user_covariates=cov, exclude_judged=args.exclude_judged, max_draws=args.max_draws, seed=args.seed)
    if args.n is None:
        if args.budget is not None:
            raise BayesprefError("bayespref design: --budget applies to a batch; pass --n N as well.")
        table = design.score(fit, candidates, goal, **options)
    else:
        table = design.select(fit, candidates, goal, n=args.n, budget=args.budget, budget_by=args.budget_by,
                              **options)
    label = table.attrs.get("target", goal.label)
    table = table.rename_axis("candidate").reset_index()
    with _io.atomic_file(out) as tmp:
        table.to_csv(tmp, index=False)
    kind = f"a batch of {len(table)}" if args.n is not None else f"{len(table)} candidates ranked"
    print(f"Target: {label}")
    with pd.option_context("display.width", 120, "display.max_columns", 12, "display.precision", 4):
        print(table.head(10).to_string(index=False))
    print(f"\n{kind} (expected information gain in nats) written to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
