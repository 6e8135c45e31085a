"""XLA-CPU's preferred vector width: gradient time per model, 256 (XLA's default) against 512 bits.

``XLA_FLAGS=--xla_cpu_prefer_vector_width=512`` is an option for AVX-512 CPUs that bayespref does not
set (README, start-up settings). This script times the log-density gradient that NUTS evaluates
(value and gradient of the potential, in one jitted loop of dependent evaluations, as inside NUTS,
so Python's dispatch is not counted; median of 15 loops; the grouped layout where ``fit`` uses it)
for the peers' data of ``bench_peers.py`` (bt, hier, types K = 3; small and medium) and the 1M
hierarchical case, each in a fresh process without and with the flag, alternating, over several
rounds; it reports the medians and the ratio 256 / 512 (above 1: 512 bits faster).

    taskset -c 1 python benchmarks/bench_vector_width.py --rounds 3 --json benchmarks/scale_results/vector_width.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
CASES = ("bt/small", "bt/medium", "hier/small", "hier/medium", "types/small", "types/medium", "hier/1M")


def _worker(case: str) -> dict:
    sys.path.insert(0, str(HERE))
    import bayespref as bp
    from bench_scale import _grad_fn, _median_loop_time, _simulate

    model, size = case.split("/")
    if size == "1M":
        _, data = _simulate(20_000, 50, 8)
    else:
        from bench_peers import make_data

        data, _ = make_data(model, size)
    spec = {"bt": bp.BradleyTerry(), "hier": bp.Hierarchical(correlated=False),
            "types": bp.LatentTypes(n_types=3)}[model] if size != "1M" else bp.Hierarchical()
    grouped = model == "hier" and spec.by_user_arrays(data) is not None
    g, z, arrays = _grad_fn(spec, data, grouped)
    steps = 20 if size == "1M" else 200
    return {"case": case, "grad_ms": 1e3 * _median_loop_time(g, z, arrays, steps=steps),
            "xla_flags": os.environ["XLA_FLAGS"]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker)))
        return {}
    times: dict[str, dict[str, list[float]]] = {}
    for case in args.cases.split(","):
        times[case] = {"256": [], "512": []}
        for _ in range(args.rounds):
            for flags, label in (("", "256"), ("--xla_cpu_prefer_vector_width=512", "512")):
                env = {**os.environ, "XLA_FLAGS": flags}
                out = subprocess.run([sys.executable, __file__, "--worker", case], env=env, capture_output=True,
                                     text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                times[case][label].append(row["grad_ms"])
        m256, m512 = statistics.median(times[case]["256"]), statistics.median(times[case]["512"])
        times[case]["median_256_ms"], times[case]["median_512_ms"] = m256, m512
        times[case]["ratio_256_over_512"] = m256 / m512
        print(f"{case:13s} 256: {m256:8.3f} ms   512: {m512:8.3f} ms   256/512: {m256 / m512:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(times, indent=1))
    return times


if __name__ == "__main__":
    main()
