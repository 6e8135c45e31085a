"""Reward-model labels (bayespref.analyses.labels): values against a known truth, calibration on held-out
judgements, flags, the TRL file and its read-back."""

from __future__ import annotations

import gzip
import importlib.util
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.analyses import labels as lab

QUICK = dict(chains=2, warmup=300, draws=300, progress=False)
COLUMNS = ["comparison", "prompt", "chosen", "rejected", "margin", "p_chosen", "p_sd", "p_lower", "p_upper",
           "uncertain", "level", "user", "group", "annotator_judgements", "annotator_agreement", "low_agreement"]
CONTRARIAN = "u_contrarian"

pytestmark = [pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::bayespref.errors.DataWarning")]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def simulate(n_users=200, per_user=12, n_options=8, log_tie=-1.5, seed=0):
    """Two groups with different worths, no user deviations, Davidson ties; one contrarian annotator
    (group A) who always picks the response the truth disfavours. Returns (frame, truth worths by group)."""
    rng = np.random.default_rng(seed)
    theta_a = rng.normal(0, 1, n_options)
    shift = np.zeros(n_options)
    shift[:2] = [1.5, -1.5]
    worths = {"A": theta_a - theta_a.mean(), "B": theta_a + shift - (theta_a + shift).mean()}
    users = [f"u{i:03d}" for i in range(n_users)] + [CONTRARIAN]
    group = ["A" if i % 2 == 0 else "B" for i in range(n_users)] + ["A"]
    u = np.repeat(np.arange(len(users)), per_user)
    a = rng.integers(0, n_options, u.size)
    b = (a + rng.integers(1, n_options, u.size)) % n_options
    g = np.asarray(group)[u]
    d = np.where(g == "A", worths["A"][a] - worths["A"][b], worths["B"][a] - worths["B"][b])
    p = np.exp(np.stack([d / 2, -d / 2, np.full_like(d, log_tie)], -1))
    p /= p.sum(-1, keepdims=True)
    code = (rng.random(u.size)[:, None] > np.cumsum(p, -1)).sum(-1)
    outcome = np.array([1.0, 0.0, 0.5])[code]
    contrarian = np.asarray(users)[u] == CONTRARIAN
    outcome[contrarian] = (d[contrarian] < 0).astype(float)
    names = np.array([f"response {i}" for i in range(n_options)])
    frame = pd.DataFrame({"a": names[a], "b": names[b], "outcome": outcome, "user": np.asarray(users)[u],
                          "prompt": [f"prompt {k}" for k in rng.integers(0, 25, u.size)], "group": g})
    return frame, {k: pd.Series(v, index=names) for k, v in worths.items()}


def true_p(labels, worths, group=None):
    """True P(chosen preferred | decided) for each label row (its group's, or ``group``'s)."""
    groups = labels["group"] if group is None else pd.Series(group, index=labels.index)
    d = np.array([worths[gr][c] - worths[gr][r] for gr, c, r in zip(groups, labels["chosen"], labels["rejected"])])
    return _sigmoid(d)


@pytest.fixture(scope="module")
def sim():
    frame, worths = simulate()
    data = bp.Comparisons.from_frame(frame, user="user", prompt="prompt", user_covariates=["group"])
    train, test = data.split_by_user(0.4, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bp.fit(bp.Hierarchical(varying=["worths"], covariates=["group"], ties=True), train, seed=7, **QUICK)
    return {"frame": frame, "worths": worths, "data": data, "train": train, "test": test, "fit": fit}


@pytest.fixture(scope="module")
def heldout(sim):
    return bp.reward_labels(sim["fit"], sim["test"], level="group", by="group")


def test_no_chain_of_the_fit_behind_the_labels_is_stuck(sim):
    # this design and seed once left a chain stuck from its first warm-up window (a log-SD drifting
    # on a linear slope: gradient variance 0, an infinite mass-matrix entry, step size 1e-22, 1,023
    # leapfrog steps per draw; tests/inference/test_adaptation.py has the mechanism)
    stats = sim["fit"].idata.sample_stats
    assert float(stats["step_size"].min()) > 1e-2, stats["step_size"].mean("draw").values
    assert float(stats["n_steps"].mean("draw").max()) < 200


# ------------------------------------------------------------------------------------------------
# values
# ------------------------------------------------------------------------------------------------
def test_schema_orientation_and_ties(sim, heldout):
    t = heldout
    assert list(t.columns) == COLUMNS
    test = sim["test"]
    decided = np.isin(test.y, (0, 1))
    assert len(t) == decided.sum() and t.attrs["n_dropped"] == int((~decided).sum()) > 0
    frame = test.frame[decided]
    chosen = np.where(frame["outcome"] == 1, frame["a"], frame["b"])
    assert t["chosen"].tolist() == chosen.tolist()
    assert t["rejected"].tolist() == np.where(frame["outcome"] == 1, frame["b"], frame["a"]).tolist()
    assert t["prompt"].tolist() == frame["prompt"].tolist()
    assert t["comparison"].tolist() == list(test.comparison_ids[decided])
    assert (t["p_lower"] <= t["p_chosen"]).all() and (t["p_chosen"] <= t["p_upper"]).all()
    assert ((t["p_chosen"] > 0.5) == (t["margin"] > 0)).mean() > 0.97  # E[logit p] and E[p] agree in sign
    assert (t["level"] == "group").all() and set(t["group"]) == {"A", "B"}
    assert t.attrs["by"] == "group" and t.attrs["ci_prob"] == bp.config.CI_PROB
    assert bp.labels is lab and bp.reward_labels is lab.reward_labels and bp.write_labels is lab.write_labels


def test_heldout_labels_match_the_truth_and_are_calibrated(sim, heldout):
    """Fit on 60% of the users, label the other 40%: P(chosen) against the true group probability,
    and the expected calibration error against the annotators' choices."""
    truth = true_p(heldout, sim["worths"])
    # measured: 0.043 (population labels against the group truth: 0.086)
    assert np.mean(np.abs(heldout["p_chosen"] - truth)) < 0.06
    assert np.corrcoef(heldout["p_chosen"], truth)[0, 1] > 0.93
    cal = lab.label_calibration(heldout)
    oracle = lab.label_calibration(heldout.assign(p_chosen=truth))
    assert cal.n == len(heldout) and cal.table["count"].sum() == 2 * len(heldout)
    assert cal.ece < 0.05  # measured: 0.015 over 884 held-out judgements (the truth's own: 0.021)
    assert cal.ece < oracle.ece + 0.03  # as calibrated as the truth itself, up to noise
    logit = np.log(heldout["p_chosen"] / (1 - heldout["p_chosen"]))
    overconfident = lab.label_calibration(heldout.assign(p_chosen=_sigmoid(3 * logit)))
    assert overconfident.ece > cal.ece + 0.05


def test_population_level_mixes_the_groups(sim):
    fit, test = sim["fit"], sim["test"]
    pop = bp.reward_labels(fit, test, by="group")
    assert (pop["level"] == "population").all()
    train_users = fit.data.user_table.loc[np.unique(fit.data.frame["user"]), "group"]
    share_a = float((train_users == "A").mean())
    truth = share_a * true_p(pop, sim["worths"], "A") + (1 - share_a) * true_p(pop, sim["worths"], "B")
    assert np.mean(np.abs(pop["p_chosen"] - truth)) < 0.055  # measured: 0.036
    assert lab.label_calibration(pop).ece < 0.05  # the population's label is calibrated too (0.018)
    only_b = bp.reward_labels(fit, test, level="group", by="group", group="B")
    assert (only_b["group"] == "B").all()
    assert np.mean(np.abs(only_b["p_chosen"] - true_p(only_b, sim["worths"], "B"))) < 0.05


@pytest.mark.slow  # a second fit (~8 s); keeps the default suite within 10 min (CI-like runs: 10:07-10:31 before)
def test_annotator_agreement_and_the_contrarian(sim):
    fit, data = sim["fit"], sim["data"]
    labels = bp.reward_labels(fit, data, level="user")
    pop = bp.reward_labels(fit, data)
    expect = (pop["p_chosen"] > 0.5).groupby(pop["user"]).mean()
    got = labels.drop_duplicates("user").set_index("user")["annotator_agreement"]
    # population probabilities of users outside the training data average fresh user deviations (Monte
    # Carlo): two calls can disagree on which side of 0.5 a near-even pair falls, so users with such a
    # pair are left out of the exact comparison
    near_even = (pop["p_chosen"] - 0.5).abs().lt(0.02).groupby(pop["user"]).any()
    clear = expect.index[~near_even.loc[expect.index].to_numpy()]
    assert len(clear) > 0.5 * len(expect)
    np.testing.assert_allclose(got.loc[clear], expect.loc[clear], atol=1e-12)
    per_user = labels.drop_duplicates("user").set_index("user")
    assert per_user.loc[CONTRARIAN, "annotator_agreement"] < 0.3 and per_user.loc[CONTRARIAN, "low_agreement"]
    others = per_user.drop(index=CONTRARIAN)
    assert others["low_agreement"].mean() < 0.25
    n = labels.groupby("user").size()
    assert (per_user["annotator_judgements"] == n.loc[per_user.index]).all()
    strict = bp.reward_labels(fit, data, min_judgements=100)
    assert not strict["low_agreement"].any()


def test_uncertain_rules(heldout, sim):
    t = heldout
    band = (t["p_chosen"] >= 0.4) & (t["p_chosen"] <= 0.6)
    assert (t["uncertain"] == band).all() and band.any() and not band.all()
    crosses = bp.reward_labels(sim["fit"], sim["test"], level="group", by="group", uncertain="interval")
    assert (crosses["uncertain"] == ((crosses["p_lower"] <= 0.5) & (crosses["p_upper"] >= 0.5))).all()
    wide = bp.reward_labels(sim["fit"], sim["test"], level="group", by="group", uncertain=0.3)
    assert (wide["uncertain"] == ((wide["p_upper"] - wide["p_lower"]) > 0.3)).all()
    for bad in ("wide", (0.7, 0.3), 2.0, True):
        with pytest.raises(bp.DataError, match="uncertain="):
            bp.reward_labels(sim["fit"], sim["test"], uncertain=bad)


def test_separately_encoded_data_are_matched_by_label(sim, heldout):
    rows = sim["frame"].loc[sim["test"].comparison_ids]
    alone = bp.Comparisons.from_frame(rows, user="user", prompt="prompt", user_covariates=["group"])
    assert not alone.users.equals(sim["fit"].data.users)
    again = bp.reward_labels(sim["fit"], alone, level="group", by="group")
    np.testing.assert_allclose(again["p_chosen"], heldout["p_chosen"], atol=1e-12)
    assert again["chosen"].tolist() == heldout["chosen"].tolist()


@pytest.mark.slow  # a second model fit (~8 s); keeps the default suite within 10 min
def test_a_model_without_the_covariate_gives_one_label(sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bp.fit(bp.BradleyTerry(ties=True), sim["train"], seed=1, **QUICK)
    with pytest.warns(bp.DataWarning, match="does not use the covariate"):
        g = bp.reward_labels(fit, sim["test"], level="group", by="group")
    p = bp.reward_labels(fit, sim["test"])
    u = bp.reward_labels(fit, sim["test"], level="user")
    np.testing.assert_allclose(g["p_chosen"], p["p_chosen"], atol=1e-12)
    np.testing.assert_allclose(u["p_chosen"], p["p_chosen"], atol=1e-12)


def test_bad_arguments(sim):
    fit, test = sim["fit"], sim["test"]
    with pytest.raises(bp.DataError, match="level="):
        bp.reward_labels(fit, test, level="type")
    with pytest.raises(bp.DataError, match="needs by="):
        bp.reward_labels(fit, test, level="group")
    with pytest.raises(bp.DataError, match="not a user covariate"):
        bp.reward_labels(fit, test, level="group", by="age")
    with pytest.raises(bp.DataError, match="not a level"):
        bp.reward_labels(fit, test, level="group", by="group", group="C")
    with pytest.raises(bp.FitError):
        bp.reward_labels("fit", test)
    ties = test.subset(np.flatnonzero(test.y == 2))
    with pytest.raises(bp.DataError, match="no decided judgement"):
        bp.reward_labels(fit, ties)


# ------------------------------------------------------------------------------------------------
# the file
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["labels.jsonl", "labels.jsonl.gz"])
def test_written_file_reads_back_equal(heldout, tmp_path, name):
    path = bp.write_labels(heldout, tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert list(first) == COLUMNS and isinstance(first["uncertain"], bool)
    exact = pd.read_json(path, lines=True, dtype=False, precise_float=True)
    pd.testing.assert_frame_equal(exact, heldout.reset_index(drop=True), check_dtype=False)
    back = bp.Comparisons.from_trl(path)  # reader 1, as it is
    assert back.frame["a"].tolist() == heldout["chosen"].tolist()
    assert back.frame["b"].tolist() == heldout["rejected"].tolist()
    assert back.frame["prompt"].tolist() == heldout["prompt"].tolist()
    assert (back.outcome == 1).all()
    # the reader parses floats exactly (precise_float), so the margins come back equal
    np.testing.assert_array_equal(back.frame["margin"].to_numpy(), heldout["margin"].to_numpy())


def test_parquet(heldout, tmp_path):
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(bp.DataError, match="pip install pyarrow"):
            bp.write_labels(heldout, tmp_path / "labels.parquet")
        assert list(tmp_path.iterdir()) == []
        return
    path = bp.write_labels(heldout, tmp_path / "labels.parquet")  # pragma: no cover - needs pyarrow
    back = bp.Comparisons.from_trl(path)
    assert back.frame["a"].tolist() == heldout["chosen"].tolist()
    assert (back.frame["margin"].to_numpy() == heldout["margin"].to_numpy()).all()


def test_write_errors_leave_nothing(heldout, tmp_path, monkeypatch):
    with pytest.raises(bp.DataError, match="cannot tell the format"):
        bp.write_labels(heldout, tmp_path / "labels.csv")
    with pytest.raises(bp.DataError, match="prompt, chosen, rejected"):
        bp.write_labels(heldout.drop(columns="chosen"), tmp_path / "labels.jsonl")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(lab, "_write_jsonl", broken)
    with pytest.raises(OSError, match="disk full"):
        bp.write_labels(heldout, tmp_path / "labels.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_predict_draws_behind_the_labels(sim):
    """Fit.predict_draws: the draws of Fit.predict, P(tie) with them, and evenly thinned draws."""
    fit, test = sim["fit"], sim["test"]
    ds = fit.predict_draws(test, seed=3)
    np.testing.assert_array_equal(ds["p_a"].values, fit.predict(test, seed=3, return_draws=True).values)
    assert set(ds.data_vars) == {"p_a", "p_tie"} and ds["p_a"].shape == (2, 300, test.n_comparisons)
    assert (ds["p_a"] + ds["p_tie"] <= 1 + 1e-9).all()
    thin = fit.predict_draws(test, seed=3, max_draws=100)
    assert thin.sizes["chain"] == 2 and thin.sizes["draw"] == 50
    assert list(thin["draw"].values) == list(ds["draw"].values[np.unique(np.linspace(0, 299, 50).round().astype(int))])
