"""Reading and validating large Arena-style tables: ``Comparisons.from_arena`` with judge covariates.

Simulates ``--battles`` battles (default 2M) between ``--models`` models (100) judged by ``--judges``
judges (50k) with a per-judge covariate table (region, age band), and times
``Comparisons.from_arena(battles, judge="judge", prompt="question_id", user_covariates=judges)``:
every column checked, ids encoded, covariates joined and validated. Each repeat runs in a fresh
child process, so its peak RSS is its own (it includes the simulated input frame, reported apart).

    python benchmarks/bench_readers.py                      # 2M battles, 3 repeats, prints JSON
    python benchmarks/bench_readers.py --battles 200000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import loadavg, peak_rss_mb, run_child, use_checkout

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


def simulate(battles: int, models: int, judges: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    a = rng.integers(0, models, battles)
    b = (a + rng.integers(1, models, battles)) % models  # never the same model twice
    names = np.array([f"model-{i:03d}" for i in range(models)], dtype=object)
    frame = pd.DataFrame({
        "model_a": names[a], "model_b": names[b],
        "winner": np.array(WINNERS, dtype=object)[rng.choice(4, battles, p=[0.4, 0.4, 0.15, 0.05])],
        "judge": rng.integers(0, judges, battles),
        "question_id": rng.integers(0, battles // 10 + 1, battles),
    })
    table = pd.DataFrame({
        "region": np.array(["EU", "NA", "AS", "SA", "AF"], dtype=object)[rng.integers(0, 5, judges)],
        "age_band": np.array(["18-29", "30-49", "50+"], dtype=object)[rng.integers(0, 3, judges)],
    }, index=pd.Index(np.arange(judges), name="judge"))
    return frame, table


def child(args) -> dict:
    use_checkout()
    import bayespref as bp

    battles, judges = simulate(args.battles, args.models, args.judges, args.seed)
    input_mb = peak_rss_mb()
    t0 = time.perf_counter()
    data = bp.Comparisons.from_arena(battles, judge="judge", prompt="question_id", user_covariates=judges)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "peak_rss_after_input_mb": input_mb,
            "n_comparisons": int(data.n_comparisons), "n_users": int(data.n_users),
            "n_options": int(data.n_options)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--battles", type=int, default=2_000_000)
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--judges", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return 0
    runs = []
    for r in range(args.repeats):
        cmd = [sys.executable, __file__, "--child", "--battles", str(args.battles), "--models", str(args.models),
               "--judges", str(args.judges), "--seed", str(args.seed + r)]
        result, proc = run_child(cmd, marker="RESULT ")
        if result is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        runs.append(result)
    summary = {
        "battles": args.battles, "models": args.models, "judges": args.judges, "repeats": args.repeats,
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "median_input_rss_mb": statistics.median(r["peak_rss_after_input_mb"] for r in runs),
        "loadavg": loadavg(), "runs": runs,
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
