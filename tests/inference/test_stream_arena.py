"""Arena-style tables streamed from Parquet (issue 24): user-varying worths of the models, a judge
covariate and Davidson ties, read in user chunks, give the in-memory model's log density and the
in-memory Laplace fit."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
import pytest

import bayespref as bp
from bayespref.errors import DataError, ModelError

pa = pytest.importorskip("pyarrow")  # the reader's optional dependency
pq = pytest.importorskip("pyarrow.parquet")

from bayespref.data.readers.parquet_stream import ParquetComparisons  # noqa: E402

#: the Arena model of the README (varying worths, the judges' region, ties), with the order effect
SPEC = bp.Hierarchical(varying="worths", covariates=["region"], ties=True, position=True)
#: what the Laplace method's paired design takes: worths alone, independent SDs (6 models would get a
#: correlation by default)
PAIRED = bp.Hierarchical(varying="worths", covariates=["region"], ties=True, correlated=False)
#: SVI steps of the streamed fit, and the correlation its judges' deviations from the mean judge reach
#: with the simulated ones (measured 0.79 and 0.78 with seeds 2 and 3; with the judges shuffled, 0.03-0.06)
STEPS, MIN_CORR = 600, 0.6
CHUNK = 25  # 60 judges: chunks of 25, 25 and 10 (with 15 padding rows)


def _frame(data) -> pd.DataFrame:
    """One row per battle, as a user stores it: labels, outcome 1 / 0 / 0.5, the judge's region."""
    options, users = np.asarray(data.options), np.asarray(data.users)
    region = data.user_table["region"].to_numpy()
    df = pd.DataFrame({"model_a": options[data.a], "model_b": options[data.b],
                       "outcome": np.select([data.y == 1, data.y == 0], [1.0, 0.0], 0.5),
                       "judge": users[data.user], "region": region[data.user]})
    return df.sort_values("judge", kind="stable").reset_index(drop=True)


def _write(df, path, files=3):
    path.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), files)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), path / f"part-{i}.parquet")
    return path


@pytest.fixture(scope="module")
def arena_pair(tmp_path_factory):
    """(reader, the same battles in memory): 60 judges in 3 regions, 900 battles of 6 models, 60 ties."""
    sim = bp.simulate.arena()
    data = bp.Comparisons.from_arena(sim.battles, user_covariates=sim.judges)
    path = _write(_frame(data), tmp_path_factory.mktemp("arena") / "d")
    pc = ParquetComparisons(path, a="model_a", b="model_b", outcome="outcome", user="judge",
                            user_covariates=["region"], batch_rows=100)  # batches cut judges in two
    return pc, data


def test_reader_codes_options_outcomes_and_covariates_as_comparisons_do(arena_pair):
    pc, data = arena_pair
    assert list(pc.options) == list(data.options) and list(pc.users) == list(data.users)
    assert pc.covariate_names == data.covariate_names == ("region[asia]", "region[europe]")
    np.testing.assert_array_equal(pc.covariate_design, data.covariates)
    with pytest.raises(DataError, match="stay on disk"):  # the per-comparison arrays of a Comparisons
        _ = pc.covariates
    np.testing.assert_array_equal(pc.outcome_counts, np.bincount(data.y, minlength=3))
    assert pc.has_ties and pc.outcome_counts[2] == 60
    # each chunk row holds its judge's battles: option codes and outcome codes as in memory
    for chunk in pc.chunks(users=CHUNK):
        for k, u in enumerate(chunk["users"]):
            m = chunk["mask"][k]
            if u < 0:
                assert not m.any()
                continue
            rows = np.flatnonzero(np.asarray(data.user) == u)
            for key, want in (("a", data.a), ("b", data.b), ("y", data.y)):
                np.testing.assert_array_equal(chunk[key][k, m], np.asarray(want)[rows])


def _model_args(pc, data, spec):
    from bayespref.inference.fit import _stream_user_arrays

    return _stream_user_arrays(spec, pc), spec.arrays(data), spec.by_user_arrays(data, max_padding=float("inf"))


@pytest.mark.parametrize("spec", [SPEC, bp.Hierarchical(varying="worths", covariates=["region"], ties=True,
                                                         correlated=True, interactions={"region": ["gpt-x"]})])
def test_a_streamed_step_has_the_in_memory_log_density(arena_pair, spec):
    """The SVI step's model arrays built from a chunk (the batch's rows, every judge's covariates by
    global id) give the log density of the in-memory grouped layout for the same judges."""
    from numpyro.infer.util import log_density

    from bayespref.inference.engine import _stream_step_data

    pc, data = arena_pair
    pop, arrays, grouped = _model_args(pc, data, spec)
    fn = spec.bind(data)
    memory_args = ({**arrays, "by_user": grouped},)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(fn, 3)).get_trace(*memory_args)
    params = {k: s["value"] for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}
    chunk = next(iter(pc.chunks(users=CHUNK)))
    chunk = {k: jnp.asarray(chunk[k]) for k in ("users", "y", "mask", "a", "b")}

    @jax.jit
    def log_p(args, batch, p):
        return log_density(fn, args, {"user_batch": batch}, p)[0]

    def density(args, batch):   # the users' z of the batch (the user plate is subsampled)
        return float(log_p(args, batch, {**params, "z": params["z"][batch]}))

    idx = jnp.arange(5, 17)   # judges 5 .. 16 of the first chunk = global ids 5 .. 16
    streamed = density((_stream_step_data(pop, chunk, idx),), idx)
    memory = density(memory_args, idx)
    np.testing.assert_allclose(streamed, memory, rtol=1e-5)
    # another batch gives another density: the check can tell batches apart
    assert abs(density(memory_args, jnp.arange(6, 18)) - memory) > 1e-3


def test_chunk_sums_equal_the_in_memory_paired_objective(arena_pair):
    """Laplace on the paired design (worths only, a covariate, Davidson ties): prior + the chunks' data
    terms = the in-memory objective, value and gradient, padding judges adding 0."""
    from bayespref.inference import laplace as lp

    pc, data = arena_pair
    spec = PAIRED
    settings = lp.LaplaceSettings(newton_tol=1e-12, importance=4)
    sizes = spec.sizes(data)
    assert lp.paired_design(spec, sizes)
    pop, arrays, grouped = _model_args(pc, data, spec)
    U, O, J = data.n_users, data.n_options, pc.max_per_user
    assert grouped["y"].shape[1] == J
    with lp._x64():
        G = lp._Globals(spec, sizes, pop, settings)
        eps = jax.random.normal(jax.random.PRNGKey(5), (settings.importance, U, O + J), jnp.float32)
        v = jnp.asarray(np.random.default_rng(0).normal(scale=0.3, size=G.v0.size), G.v0.dtype)
        z0 = jnp.zeros((U, O), jnp.float32)
        f64 = jnp.float64
        D = {"a": jnp.asarray(grouped["a"]), "b": jnp.asarray(grouped["b"]), "y": jnp.asarray(grouped["y"], f64),
             "mask": jnp.asarray(grouped["mask"], f64), "cov": pop["covariates"], "eps": eps, "pop": pop}
        (val, (z, _)), g = jax.jit(jax.value_and_grad(G.objective, has_aux=True))(v, z0, D)
        chunk_vg = jax.jit(jax.value_and_grad(G.data_term, has_aux=True))
        total, grad = jax.jit(jax.value_and_grad(G.prior_potential))(v, pop)
        zs, n = np.zeros((U, O)), 0
        cov = np.asarray(pop["covariates"])
        for raw in pc.chunks(users=CHUNK):
            valid = raw["users"] >= 0
            idx = np.where(valid, raw["users"], 0)
            Dc = {"a": jnp.asarray(raw["a"]), "b": jnp.asarray(raw["b"]), "y": jnp.asarray(raw["y"], f64),
                  "mask": jnp.asarray(raw["mask"], f64), "cov": jnp.asarray(np.where(valid[:, None], cov[idx], 0)),
                  "eps": eps[:, idx], "pop": pop, "valid": jnp.asarray(valid)}
            (cv, (cz, _)), cg = chunk_vg(v, z0[idx], Dc)
            total, grad = total + cv, grad + cg
            zs[idx[valid]] = np.asarray(cz)[valid]
            n += 1
    assert n == 3
    assert abs(float(total) - float(val)) <= 1e-9 * abs(float(val))
    np.testing.assert_allclose(np.asarray(grad), np.asarray(g), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(zs, np.asarray(z), rtol=1e-9, atol=1e-12)


@pytest.mark.slow  # two Laplace fits (~25 s on 2 cores); the chunked objective is checked in the default suite
def test_streamed_laplace_fit_equals_the_in_memory_fit(arena_pair):
    """The same objective summed chunk by chunk (float32 per chunk, other order): the globals' draws
    (same keys) agree with the in-memory fit's to far below their posterior SD (the two L-BFGS runs stop
    within their tolerance of one mode: measured, the means differ by at most 0.003 posterior SD)."""
    pc, data = arena_pair
    spec = PAIRED
    # the outer-product covariance: the search is then the rescaled one, each curvature a pass over the chunks
    kw = dict(method="laplace", covariance="opg", num_samples=200, progress=False, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = bp.fit(spec, pc, chunk_users=CHUNK, **kw)
        memory = bp.fit(spec, data, log_likelihood=False, **kw)
    info = streamed.info
    assert info["streamed"] and info["laplace_design"] == "pairs" and info["laplace_curvature_passes"] >= 1
    assert info["laplace_passes"] == info["laplace_evaluations"] + info["laplace_curvature_passes"] + 1
    post_s, post_m = streamed.idata.posterior, memory.idata.posterior
    assert list(post_s["option"].values) == list(post_m["option"].values)
    assert list(post_s["covariate"].values) == ["region[asia]", "region[europe]"]
    for site in ("worth", "group_worth", "sd_worth", "log_tie"):
        sd = post_m[site].std(("chain", "draw")).values
        for stat in ("mean", "std"):
            a = getattr(post_s[site], stat)(("chain", "draw")).values
            b = getattr(post_m[site], stat)(("chain", "draw")).values
            assert np.all(np.abs(a - b) <= 0.02 * sd), (site, stat, np.max(np.abs(a - b) / sd))
    user_sd = post_m["user_worth"].std(("chain", "draw")).values
    diff = np.abs(post_s["user_worth"].mean(("chain", "draw")).values - post_m["user_worth"].mean(("chain", "draw")).values)
    assert np.all(diff <= 0.02 * user_sd), np.max(diff / user_sd)
    table = streamed.summary()
    assert {"worth[gpt-x]", "log_tie"} <= set(table.index)


@pytest.mark.slow  # a long statistical check (default-suite budget); run with -m slow
def test_streamed_svi_fits_worths_covariates_and_ties(arena_pair):
    """SVI on the stream, user minibatches: the Fit is laid out as the in-memory one (options,
    covariates, users' worths by judge), and the judges' worths it finds follow the simulated ones."""
    pc, data = arena_pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bp.fit(SPEC, pc, method="svi", user_batch_size=20, steps=STEPS, lr=0.03, num_samples=100, seed=2,
                     progress=False)
    assert fit.info["streamed"] and fit.info["steps"] == STEPS
    post = fit.idata.posterior
    assert post["group_worth"].dims[2:] == ("covariate", "option")
    assert list(post["covariate"].values) == ["region[asia]", "region[europe]"]
    assert post["user_worth"].shape[2:] == (60, 6) and list(post["user"].values) == list(data.users)
    for site in ("worth", "position", "log_tie", "sd_worth"):
        assert np.all(np.isfinite(post[site].values))
    # each judge's worths less the mean judge's: the regions' shifts and the judges' own deviations
    truth = bp.simulate.arena().truth["worth"].loc[list(data.users), list(data.options)].to_numpy()
    truth = truth - truth.mean(1, keepdims=True)
    found = post["user_worth"].mean(("chain", "draw")).values
    corr = np.corrcoef((truth - truth.mean(0)).ravel(), (found - found.mean(0)).ravel())[0, 1]
    assert corr > MIN_CORR, corr


def test_stream_errors_name_the_problem(arena_pair, tmp_path):
    pc, data = arena_pair
    df = _frame(data)
    moved = df.copy()
    first = np.flatnonzero(moved.judge == moved.judge[0])
    moved.loc[first[10:], "region"] = "elsewhere"   # all of judge000's rows in the second batch of 10
    with pytest.raises(DataError, match=r"user covariate 'region' differs within user 'judge000' \(row 10 of"):
        ParquetComparisons(_write(moved, tmp_path / "m", files=1), a="model_a", b="model_b", outcome="outcome",
                           user="judge", user_covariates=["region"], batch_rows=10)
    odd = df.copy()
    odd.loc[4, "outcome"] = 0.7
    with pytest.raises(DataError, match=r"0.5 \(tie\); rows \[4\]"):
        ParquetComparisons(_write(odd, tmp_path / "o", files=1), a="model_a", b="model_b", outcome="outcome",
                           user="judge")
    with pytest.raises(DataError, match=r"no column\(s\) \['age'\]"):
        ParquetComparisons(pc.path, a="model_a", b="model_b", outcome="outcome", user="judge", user_covariates=["age"])
    with pytest.raises(ModelError, match="60 tied comparisons"):
        bp.fit(bp.Hierarchical(varying="worths"), pc, method="laplace")
    with pytest.raises(ModelError, match="names \\['age'\\]"):
        bp.fit(bp.Hierarchical(varying="worths", covariates=["age"], ties=True), pc, method="laplace")
    with pytest.raises(ModelError, match="Davidson ties"):  # Laplace's paired design needs worths alone
        bp.fit(bp.Hierarchical(varying="worths", covariates=["region"], ties=True, correlated=True), pc,
               method="laplace")
