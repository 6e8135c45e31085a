"""Built-in text features at scale: ``TextFeatures`` on 200k responses resampled from HH-RLHF.

Resamples ``--responses`` (default 200k) response texts, with replacement, from the 4,565 distinct
responses of the bundled HH-RLHF harmless test split, and times ``TextFeatures(builtins=...).fit(texts)``
(every built-in computed once over all texts, then the standardisation learned) and
``fitted.transform(texts)``, for the default built-ins and for every built-in except ``readability``
(the optional extra). Each repeat runs in a fresh child process, so its peak RSS is its own (it
includes the texts, reported apart). Not a test: the target is <= 30 s for the default built-ins on
2 cores.

    python benchmarks/bench_text.py                         # 200k responses, 3 repeats, prints JSON
    python benchmarks/bench_text.py --json benchmarks/results/text/builtins_200k.json
    python benchmarks/bench_text.py --responses 20000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

from _common import loadavg, peak_rss_mb, run_child, use_checkout, write_json

SETS = ("default", "all")


def child(args) -> dict:
    use_checkout()
    import numpy as np

    import bayespref as bp
    from bayespref.data.text import BUILTINS, DEFAULT_BUILTINS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.DataWarning)  # text options: a disconnected graph by nature
        options = np.asarray(bp.load_dataset("hh_rlhf_harmless").comparisons().options, dtype=object)
    texts = list(options[np.random.default_rng(args.seed).integers(0, len(options), args.responses)])
    input_mb = peak_rss_mb()
    builtins = DEFAULT_BUILTINS if args.set == "default" else tuple(b for b in BUILTINS if b != "readability")
    spec = bp.TextFeatures(builtins=builtins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.DataWarning)  # constant columns (no Markdown headers) are dropped
        t0 = time.perf_counter()
        fitted = spec.fit(texts)
        fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = fitted.transform(texts)
    transform_s = time.perf_counter() - t0
    return {"fit_seconds": fit_s, "transform_seconds": transform_s, "peak_rss_mb": peak_rss_mb(),
            "peak_rss_after_input_mb": input_mb, "n_texts": len(texts), "builtins": list(builtins),
            "kept": list(table.columns), "mean_chars": float(np.mean([len(t) for t in texts[:10000]]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--responses", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS),
                   help="built-in sets: the default ones, and all but readability")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the summary to this file")
    p.add_argument("--set", choices=SETS, default="default", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return 0
    summary = {"responses": args.responses, "repeats": args.repeats, "loadavg_start": loadavg()}
    for which in args.sets:
        runs = []
        for r in range(args.repeats):
            cmd = [sys.executable, __file__, "--child", "--set", which, "--responses", str(args.responses),
                   "--seed", str(args.seed + r)]
            result, proc = run_child(cmd, marker="RESULT ")
            if result is None:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                return 1
            runs.append(result)
        summary[which] = {
            "builtins": runs[0]["builtins"], "kept": runs[0]["kept"],
            "median_fit_seconds": statistics.median(r["fit_seconds"] for r in runs),
            "median_transform_seconds": statistics.median(r["transform_seconds"] for r in runs),
            "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "median_input_rss_mb": statistics.median(r["peak_rss_after_input_mb"] for r in runs),
            "runs": runs,
        }
    summary["loadavg_end"] = loadavg()
    print(json.dumps(summary, indent=1))
    if args.json:
        write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
