"""Out-of-core SVI and Laplace: a hierarchical fit on a Parquet dataset streamed from disk in user chunks (issue 24).

Writes N = users x per_user judgements (default 200,000 users x 100 = 20M; 4 features; user-varying
feature weights w_u ~ N(mu, 0.5^2 I), mu = linspace(1, -0.5, 4); 500 options with standard-normal
features), ordered by user, to a temporary directory of Parquet files, one file per ``--file-users``
users, never holding more than one file's rows in memory. Then, in a fresh child process,
``bp.fit(bp.Hierarchical(), ParquetComparisons(dir, ...), method="svi", guide="hierarchical",
user_batch_size=B, chunk_users=C)`` and records its peak RSS, wall time (reader scan + fit + draws),
steps, epochs and the recovery of the population weights and user SDs. With ``--method laplace``:
``bp.fit(bp.Hierarchical(), ParquetComparisons(...), method="laplace", chunk_users=C)`` (each L-BFGS
evaluation one pass over the chunks) and its evaluations, passes and recovery instead. The peak RSS is also recorded
per phase (``peak_rss_mb_by_phase``: reader scan, set-up and first chunk read, first chunk
(``svi.init`` and compilation), training, draws, ``az.from_dict`` and ``Fit``, summaries), from the kernel's high-water mark
``VmHWM``, reset at each phase's start (``/proc/self/clear_refs``; where that is refused, from
``VmRSS`` sampled every 0.05 s).

    python benchmarks/bench_streaming.py                               # 20M judgements
    python benchmarks/bench_streaming.py --users 20000 --json /tmp/s.json   # 2M, quicker
    python benchmarks/bench_streaming.py --method laplace --users 20000 --file-users 2000 --chunk-users 2000

``--design arena``: an Arena-style table instead (``ARENA_MODELS`` models, each judge in one of
three regions; judge worths = base + region shift + N(0, 0.3^2) per model, centred; Davidson ties
with log nu = -1.5; columns ``model_a``, ``model_b``, ``outcome`` 1 / 0 / 0.5, ``judge``, ``region``),
fitted as ``bp.Hierarchical(varying="worths", covariates=["region"], ties=True)`` (the paired Laplace
design; SVI with the hierarchical guide), with the recovery of the worths, region effects, judge SDs
and the tie parameter:

    python benchmarks/bench_streaming.py --design arena --method laplace --users 20000 --per-user 50 \
        --file-users 2000 --chunk-users 5000

JSON to ``benchmarks/results/scaling/streaming_<method>_<N>.json`` (``--json`` to override).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

import numpy as np
from _common import RESULTS_DIR, loadavg, peak_rss_mb, run_child, use_checkout, write_json

FEATURES = 4
OPTIONS = 500
USER_SD = 0.5


def write_dataset(path: pathlib.Path, users: int, per_user: int, file_users: int, seed: int = 0) -> dict:
    """Write the judgements to ``path`` (one Parquet file per ``file_users`` users); return the truth."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    mu = np.linspace(1.0, -0.5, FEATURES)
    x = rng.normal(size=(OPTIONS, FEATURES)).astype(np.float32)
    path.mkdir(parents=True, exist_ok=True)
    w_sum = np.zeros(FEATURES)
    w_sq = np.zeros(FEATURES)
    for i, lo in enumerate(range(0, users, file_users)):
        u = np.arange(lo, min(lo + file_users, users))
        w = mu + USER_SD * rng.normal(size=(len(u), FEATURES))
        w_sum += w.sum(0)
        w_sq += (w ** 2).sum(0)
        n = len(u) * per_user
        a = rng.integers(0, OPTIONS, n)
        b = (a + rng.integers(1, OPTIONS, n)) % OPTIONS  # never a itself
        uid = np.repeat(u, per_user)
        logit = np.einsum("nf,nf->n", x[a] - x[b], w[uid - lo])
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
        cols = {"a": a.astype(np.int32), "b": b.astype(np.int32), "y": y, "u": uid.astype(np.int64)}
        for f in range(FEATURES):
            cols[f"f{f}_a"], cols[f"f{f}_b"] = x[a, f], x[b, f]
        pq.write_table(pa.table(cols), path / f"part-{i:05d}.parquet")
    mean = w_sum / users
    return {"mu": mu.tolist(), "user_sd": USER_SD, "sample_mean": mean.tolist(),
            "sample_sd": np.sqrt(w_sq / users - mean ** 2).tolist()}


ARENA_MODELS, ARENA_REGIONS, ARENA_SD, ARENA_LOG_TIE = 100, ("americas", "asia", "europe"), 0.3, -1.5


def arena_truth(seed: int) -> dict:
    """The Arena design's population: base worths (centred), each region's shift (americas: 0)."""
    rng = np.random.default_rng(seed + 1)
    base = np.linspace(1.5, -1.5, ARENA_MODELS)
    shift = rng.normal(0.0, 0.3, (len(ARENA_REGIONS), ARENA_MODELS)) * np.array([0.0, 1.0, 1.0])[:, None]
    shift -= shift.mean(1, keepdims=True)
    return {"worth": base - base.mean(), "shift": shift}


def write_arena(path: pathlib.Path, users: int, per_user: int, file_users: int, seed: int = 0) -> dict:
    """Write an Arena-style table (one Parquet file per ``file_users`` judges); return the truth."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    truth = arena_truth(seed)
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    for i, lo in enumerate(range(0, users, file_users)):
        u = np.arange(lo, min(lo + file_users, users))
        region = rng.integers(0, len(ARENA_REGIONS), len(u))
        w = truth["worth"] + truth["shift"][region] + ARENA_SD * rng.normal(size=(len(u), ARENA_MODELS))
        n = len(u) * per_user
        a = rng.integers(0, ARENA_MODELS, n)
        b = (a + rng.integers(1, ARENA_MODELS, n)) % ARENA_MODELS
        k = np.repeat(np.arange(len(u)), per_user)
        d = w[k, a] - w[k, b]
        p = np.exp(np.stack([d / 2, -d / 2, np.full_like(d, ARENA_LOG_TIE)], -1))
        code = (rng.random(n)[:, None] > np.cumsum(p / p.sum(-1, keepdims=True), -1)).sum(-1)
        cols = {"model_a": a.astype(np.int32), "model_b": b.astype(np.int32),
                "outcome": np.array([1.0, 0.0, 0.5])[code], "judge": u[k].astype(np.int64),
                "region": np.asarray(ARENA_REGIONS)[region[k]]}
        pq.write_table(pa.table(cols), path / f"part-{i:05d}.parquet")
    return {"worth": truth["worth"].tolist(), "shift": truth["shift"].tolist(), "user_sd": ARENA_SD,
            "log_tie": ARENA_LOG_TIE}


class PhasePeaks:
    """Peak RSS (MiB) of this process per labelled phase: ``peaks.enter("draws")`` starts a phase, which
    lasts until the next one starts; what came before the first is labelled ``start-up``.

    Linux's ``VmHWM`` (high-water mark of the RSS) is read when a phase ends and reset to the current
    RSS when the next starts (``5`` written to ``/proc/self/clear_refs``), so short spikes are caught
    exactly; the reset lowers ``ru_maxrss`` too, so the process's peak is the largest phase peak. Where
    the reset is refused, a thread samples ``VmRSS`` every ``every`` seconds instead.
    """

    def __init__(self, every: float = 0.05):
        self.peaks, self.label, self._lock = {}, "start-up", threading.Lock()
        self._record(self._status_mb("VmHWM"))
        try:
            pathlib.Path("/proc/self/clear_refs").write_text("5")
            self.sampled = False
        except OSError:
            self.sampled = True
            threading.Thread(target=self._sample, args=(every,), daemon=True).start()

    @staticmethod
    def _status_mb(key: str) -> float:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _record(self, mb: float) -> None:
        if self.label is not None:
            self.peaks[self.label] = max(self.peaks.get(self.label, 0.0), mb)

    def _sample(self, every: float) -> None:
        while True:
            with self._lock:
                self._record(self._status_mb("VmRSS"))
            time.sleep(every)

    def enter(self, label: str | None) -> None:
        with self._lock:
            self._record(self._status_mb("VmRSS" if self.sampled else "VmHWM"))
            if not self.sampled:
                pathlib.Path("/proc/self/clear_refs").write_text("5")
            self.label = label

    def result(self) -> dict:
        self.enter(None)
        return {k: round(v, 1) for k, v in self.peaks.items()}


def instrument(pc, peaks: PhasePeaks, method: str = "svi") -> None:
    """Label the phases of ``bp.fit(..., pc)``. SVI: the first chunk (``svi.init``, compilation, its
    steps), training (the other chunks), the draws and ``az.from_dict`` + ``Fit`` (the rest of the fit).
    Laplace: the first chunk (compilation), the L-BFGS passes (the other chunks), the final pass (modes,
    curvature, users' draws), then the global draws, the users' effects, ``az.from_dict`` + ``Fit``."""
    from bayespref.inference import engine, laplace

    chunks, draws = pc.chunks, engine.svi_stream_draws
    later = "training" if method == "svi" else "L-BFGS passes (the other chunks)"
    first = "first chunk: svi.init + compile" if method == "svi" else "first chunk: compile"

    seen = []

    def labelled_chunks(*args, **kwargs):
        for chunk in chunks(*args, **kwargs):
            if len(seen) < 2:  # later phases are labelled by the calls below
                peaks.enter(first if not seen else later)
            seen.append(True)
            yield chunk

    if method == "laplace":
        hessian, chol = laplace._Globals.prior_hessian, laplace._cholesky_of_inverse

        def labelled_hessian(*args, **kwargs):
            peaks.enter("final pass: modes, curvature, users' draws")
            return hessian(*args, **kwargs)

        def labelled_chol(*args, **kwargs):
            out = chol(*args, **kwargs)
            peaks.enter("global draws, user effects, az.from_dict + Fit")
            return out

        laplace._Globals.prior_hessian = labelled_hessian
        laplace._cholesky_of_inverse = labelled_chol

    def labelled_draws(*args, **kwargs):
        peaks.enter("draws")
        out = draws(*args, **kwargs)
        peaks.enter("az.from_dict + Fit")
        return out

    pc.chunks = labelled_chunks
    engine.svi_stream_draws = labelled_draws


def in_memory_arena(path: str) -> object:
    """The Arena design's table read whole into a ``Comparisons`` (the in-memory peer of the stream)."""
    import pandas as pd

    import bayespref as bp

    df = pd.read_parquet(path)
    return bp.Comparisons.from_frame(df, a="model_a", b="model_b", outcome="outcome", user="judge",
                                     user_covariates=["region"])


def worker(path: str, user_batch: int, chunk_users: int, steps: int, lr: float, seed: int,
           method: str = "svi", design: str = "features", in_memory: bool = False) -> dict:
    peaks = PhasePeaks()
    peaks.enter("imports")
    use_checkout()
    import warnings

    import bayespref as bp
    from bayespref.data.readers.parquet_stream import ParquetComparisons

    peaks.enter("reader scan")
    t0 = time.perf_counter()
    if design == "arena" and in_memory:  # the peer: the same table read whole, fitted in memory
        pc = in_memory_arena(path)
        spec = bp.Hierarchical(varying="worths", covariates=["region"], ties=True)
    elif design == "arena":
        pc = ParquetComparisons(path, a="model_a", b="model_b", outcome="outcome", user="judge",
                                user_covariates=["region"])
        spec = bp.Hierarchical(varying="worths", covariates=["region"], ties=True)
    else:
        pc = ParquetComparisons(path, a="a", b="b", outcome="y", user="u",
                                features=[f"f{f}" for f in range(FEATURES)])
        spec = bp.Hierarchical()
    scan_s = time.perf_counter() - t0
    peaks.enter("set-up + first chunk read")
    if not in_memory:
        instrument(pc, peaks, method)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "svi":
            fit = bp.fit(spec, pc, method="svi", guide="hierarchical", user_batch_size=user_batch,
                         chunk_users=chunk_users, steps=steps, lr=lr, num_samples=200, progress=False, seed=seed)
        else:
            fit = bp.fit(spec, pc, method="laplace", num_samples=200, progress=False, seed=seed,
                         **({"log_likelihood": False} if in_memory else {"chunk_users": chunk_users}))
    fit_s = time.perf_counter() - t1
    peaks.enter("summaries")
    post = fit.idata.posterior
    out = {"method": method, "design": design, "N": pc.n_comparisons, "U": pc.n_users,
           "D": ARENA_MODELS if design == "arena" else FEATURES, "in_memory": in_memory,
           "chunk_users": fit.info.get("chunk_users"), "scan_s": scan_s, "fit_s": fit_s, "wall_s": scan_s + fit_s}
    if method == "svi":
        out.update({"user_batch": user_batch, "lr": lr, "max_steps": steps,
                    "steps": fit.info["steps"], "epochs": fit.info["epochs"], "converged": fit.info["converged"],
                    "svi_step_ms": 1000 * fit.info["svi_step_seconds"]})
    else:
        info = fit.info
        out.update({k: info.get(k) for k in ("laplace_evaluations", "laplace_passes", "newton_iterations",
                                         "laplace_converged", "laplace_message", "laplace_max_gradient",
                                         "laplace_covariance", "laplace_importance", "laplace_importance_draws",
                                         "setup_s", "optimise_s", "covariance_s", "draws_s", "laplace_s")})
        out["pass_s"] = info["optimise_s"] / max(info["laplace_evaluations"], 1)
    sites = ("worth", "group_worth", "sd_worth", "log_tie") if design == "arena" else ("weight", "sd_weight")
    for site in sites:
        out[f"{site}_mean"] = post[site].mean(("chain", "draw")).values.tolist()
        out[f"{site}_sd"] = post[site].std(("chain", "draw")).values.tolist()
    if design == "arena":  # the options in the reader's (sorted) order, as the truth's model codes
        out["options"] = [int(o) for o in pc.options]
    out["user_draws"] = fit.info["user_draws"]
    by_phase = peaks.result()
    # the high-water mark is reset per phase (and ru_maxrss with it): the peak is the largest phase's
    return {**out, "peak_rss_mb": max(max(by_phase.values()), peak_rss_mb()), "peak_rss_mb_by_phase": by_phase,
            "peak_rss_sampled": peaks.sampled}


def feature_errors(out: dict, truth: dict) -> dict:
    err = np.abs(np.asarray(out["weight_mean"]) - np.asarray(truth["mu"]))
    err_sample = np.abs(np.asarray(out["weight_mean"]) - np.asarray(truth["sample_mean"]))
    sd = np.asarray(out["sd_weight_mean"])
    return {"weight_max_abs_error": float(err.max()),
            "weight_max_abs_error_vs_sample_mean": float(err_sample.max()),
            "sd_weight_max_abs_error": float(np.max(np.abs(sd - USER_SD))),
            "sd_weight_max_abs_error_vs_sample_sd": float(np.max(np.abs(sd - np.asarray(truth["sample_sd"]))))}


def arena_errors(out: dict, truth: dict) -> dict:
    """Errors against the truth in posterior SDs (|z|) and the share of 90% intervals (normal) covering it."""
    order = np.asarray(out["options"])
    want = {"worth": np.asarray(truth["worth"])[order],
            "group_worth": (np.asarray(truth["shift"])[1:] - np.asarray(truth["shift"])[:1])[:, order],
            "sd_worth": np.full(len(order), truth["user_sd"]), "log_tie": np.asarray(truth["log_tie"])}
    res = {}
    for site, t in want.items():
        z = np.abs(np.asarray(out[f"{site}_mean"]) - t) / np.asarray(out[f"{site}_sd"])
        res[f"{site}_max_abs_z"] = float(np.max(z))
        res[f"{site}_coverage90"] = float(np.mean(z <= 1.645))
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=("svi", "laplace"), default="svi")
    p.add_argument("--design", choices=("features", "arena"), default="features")
    p.add_argument("--in-memory", action="store_true",
                   help="arena design: read the table whole and fit it in memory (the stream's peer)")
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--per-user", type=int, default=100)
    p.add_argument("--file-users", type=int, default=10_000, help="users per Parquet file written")
    p.add_argument("--user-batch", type=int, default=2000)
    p.add_argument("--chunk-users", type=int, default=5000)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=pathlib.Path, help="where to write the dataset (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the written dataset")
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(**json.loads(a.worker))))
        return
    tmp = a.dir or pathlib.Path(tempfile.mkdtemp(prefix="bayespref_stream_"))
    try:
        t = time.perf_counter()
        write = write_arena if a.design == "arena" else write_dataset
        truth = write(tmp / "judgements", a.users, a.per_user, a.file_users, a.seed)
        write_s = time.perf_counter() - t
        disk_mb = sum(f.stat().st_size for f in (tmp / "judgements").glob("*.parquet")) / 2 ** 20
        print(f"wrote {a.users * a.per_user:,} judgements ({disk_mb:.0f} MiB) in {write_s:.0f} s", flush=True)
        kw = {"path": str(tmp / "judgements"), "user_batch": a.user_batch, "chunk_users": a.chunk_users,
              "steps": a.steps, "lr": a.lr, "seed": a.seed, "method": a.method, "design": a.design,
              "in_memory": a.in_memory}
        # the system allocator for Arrow's buffers and two malloc arenas: freed batch and chunk buffers
        # go back to the OS instead of staying in allocator caches (peak RSS is what is measured)
        env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}
        out, proc = run_child([sys.executable, __file__, "--worker", json.dumps(kw)], env=env)
        if proc.returncode or out is None:
            raise RuntimeError(f"worker failed:\n{proc.stderr[-3000:]}")
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report = {"machine_load": loadavg(), "write_s": write_s, "disk_mib": disk_mb, "truth": truth, **out,
              **(arena_errors(out, truth) if a.design == "arena" else feature_errors(out, truth)),
              "rss_limit_mb": 3072, "rss_ok": out["peak_rss_mb"] <= 3072}
    print(json.dumps(report, indent=1), flush=True)
    n = out["N"]
    tag = f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"
    name = (f"streaming_{a.method}_{tag}.json" if a.design == "features" else
            f"{'in_memory' if a.in_memory else 'streaming'}_arena_{a.method}_{tag}.json")
    write_json(a.json or RESULTS_DIR / "scaling" / name, report)
    return report


if __name__ == "__main__":
    main()
