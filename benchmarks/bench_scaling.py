"""Strong scaling of the sharded log density: the 1M-judgement hierarchical gradient on 1, 2, 4, 8 devices.

Command::

    python benchmarks/bench_scaling.py [--users 20000 --per-user 50 --features 8] [--json PATH]

One child process with 8 virtual CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``)
simulates the large case (:func:`_common.simulate_large`: 1M judgements of 20,000 users, 8 features),
and times ``value_and_grad`` of ``Hierarchical()``'s potential (grouped layout) with the data on one
device and split by user over 2, 4 and 8 devices (:mod:`bayespref.inference.sharding`), per call
(:func:`_common.median_time`) and inside a compiled loop of dependent evaluations as NUTS evaluates it
(:func:`_common.median_loop_time`). Virtual CPU devices share the machine's cores: on 2 physical
cores the curve flattens from 2 devices on; the numbers measure the partitioned program's overhead as
much as its speed-up. Output: ``benchmarks/results/scaling/grad_strong_scaling.json`` (default).
"""

from __future__ import annotations

import argparse
import os
import sys

from _common import RESULTS_DIR, ROOT, loadavg, median_loop_time, median_time, peak_rss_mb, run_child, write_json

sys.path.insert(0, str(ROOT))


def worker(users, per_user, features):
    import json

    from _common import grad_fn, simulate_large

    import bayespref as bp
    from bayespref.inference import sharding

    _, data = simulate_large(users, per_user, features)
    spec = bp.Hierarchical()
    g, z, arrays = grad_fn(spec, data, grouped=True)
    out = {"N": int(data.n_comparisons), "U": users, "D": features, "cpu_count": os.cpu_count(), "runs": []}
    for n in (1, 2, 4, 8):
        arr = arrays if n == 1 else sharding.shard(spec, data, arrays, n)
        call = median_time(g, z, arr, repeats=10)
        loop = median_loop_time(g, z, arr, steps=10, repeats=7)
        out["runs"].append({"devices": n, "grad_ms": round(1e3 * call, 2), "grad_loop_ms": round(1e3 * loop, 2)})
        print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
    base = out["runs"][0]["grad_loop_ms"]
    for r in out["runs"]:
        r["speedup"] = round(base / r["grad_loop_ms"], 2)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["loadavg_end"] = loadavg()
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--per-user", type=int, default=50)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--json", default=str(RESULTS_DIR / "scaling" / "grad_strong_scaling.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.users, args.per_user, args.features)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    start = loadavg()
    res, proc = run_child([sys.executable, __file__, "--worker", "--users", str(args.users), "--per-user",
                           str(args.per_user), "--features", str(args.features)], env=env)
    if res is None:
        sys.exit(proc.stderr[-3000:])
    res["loadavg_start"] = start
    write_json(args.json, res)
    print(res)


if __name__ == "__main__":
    main()
