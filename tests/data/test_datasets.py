"""Bundled datasets: loading, documented columns, row counts, tables, references, Comparisons."""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bayespref.data.datasets import Dataset, list_datasets, load_dataset
from bayespref.errors import DataError

# flatlizards' contest graph is disconnected (4 components; BTm links them through SVL and the
# random effect), so building its Comparisons rightly emits a DataWarning.
_IGNORE_DISCONNECTED = pytest.mark.filterwarnings("ignore::bayespref.errors.DataWarning")

NAMES = ["baseball", "cems", "citations", "flatlizards", "football", "hh_rlhf_harmless", "pudding", "topmodel2007"]

# name -> (n judgements, n options, n users or None, has ties, extra frame columns)
EXPECTED = {
    "baseball": (273, 7, None, False, set()),
    "citations": (3727, 4, None, False, set()),
    "pudding": (745, 6, None, True, set()),
    "cems": (4454, 6, 303, True, {"user"}),
    "topmodel2007": (2880, 6, 192, False, {"user"}),
    "flatlizards": (100, 77, None, False, set()),
    "football": (1900, 29, None, True, {"prompt"}),
    "hh_rlhf_harmless": (2312, 4565, None, False, {"prompt"}),
}
N_PROMPTS = {"football": 5, "hh_rlhf_harmless": 2310}
LICENCE = {"hh_rlhf_harmless": "MIT"}  # the others: GPL (R packages)
RANKING_NAMES = ["beans"]  # ranking data (kind "rankings"): tested below, after the pairwise sets


def _raw(name: str, filename: str) -> pd.DataFrame:
    with resources.files("bayespref.data.datasets").joinpath("data", name, filename).open() as fh:
        return pd.read_csv(fh)


@pytest.fixture(scope="module", params=NAMES)
def ds(request) -> Dataset:
    return load_dataset(request.param)


# ------------------------------------------------------------------------------ listing
def test_list_datasets():
    table = list_datasets()
    assert list(table.columns) == ["name", "description", "n_comparisons", "n_options", "n_users",
                                   "n_prompts", "ties", "covariates", "n_rankings"]
    assert sorted(table["name"]) == sorted(NAMES + RANKING_NAMES)
    t = table.set_index("name")
    for name, (n, k, u, ties, _) in EXPECTED.items():
        assert t.loc[name, "n_comparisons"] == n
        assert t.loc[name, "n_options"] == k
        assert (pd.isna(t.loc[name, "n_users"]) if u is None else t.loc[name, "n_users"] == u)
        assert bool(t.loc[name, "ties"]) is ties
        assert isinstance(t.loc[name, "description"], str) and t.loc[name, "description"]
    for name, k in N_PROMPTS.items():
        assert t.loc[name, "n_prompts"] == k
    assert t.loc["cems", "covariates"].startswith("user(8)")
    assert "option(2)" in t.loc["cems", "covariates"]
    assert t.loc["baseball", "covariates"] == ""
    assert t["n_rankings"].isna().sum() == len(NAMES)
    beans = t.loc["beans"]
    assert (beans["n_rankings"], beans["n_comparisons"], beans["n_options"], beans["n_users"]) == (3368, 5052, 11, 842)
    assert not beans["ties"] and pd.isna(beans["n_prompts"])
    assert beans["covariates"] == "user(6): season, year, maxTN, lon, lat, planting_date"


def test_unknown_name_lists_available():
    with pytest.raises(DataError) as err:
        load_dataset("no-such-data")
    for name in NAMES + RANKING_NAMES:
        assert name in str(err.value)
    with pytest.raises(DataError):
        load_dataset(None)


# ------------------------------------------------------------------------------ every dataset
def test_frame_columns_and_outcomes(ds):
    n, k, u, ties, extra = EXPECTED[ds.name]
    frame = ds.frame
    assert set(frame.columns) == {"a", "b", "outcome"} | extra
    assert list(frame.columns[:3]) == ["a", "b", "outcome"]
    assert len(frame) == n == ds.n_comparisons
    assert frame["outcome"].dtype == np.float64
    assert frame["outcome"].isin([0.0, 0.5, 1.0]).all()
    assert ds.has_ties is ties and bool((frame["outcome"] == 0.5).any()) is ties
    assert not frame[["a", "b"]].isna().any().any()
    assert (frame["a"] != frame["b"]).all()
    assert ds.n_options == k and len(ds.options) == k
    assert ds.n_users == u
    assert isinstance(frame.index, pd.RangeIndex)


def test_metadata(ds):
    assert ds.description and ds.citation and ds.licence
    assert LICENCE.get(ds.name, "GPL") in ds.licence
    assert ds.readme.startswith("> **Bundled with bayespref**")
    assert not ds.citation.startswith(">") and "Bundled" not in ds.citation
    assert ds.name in repr(ds)


def test_dataset_is_frozen(ds):
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"
    with pytest.raises(TypeError):
        ds.reference["new"] = 1


def test_bundled_readme_names_its_files(ds):
    folder = resources.files("bayespref.data.datasets").joinpath("data", ds.name)
    csvs = sorted(p.name for p in folder.iterdir() if p.name.endswith((".csv", ".jsonl.gz")))
    assert csvs
    first = ds.readme.splitlines()[0]
    for f in csvs:
        assert f"`{f}`" in first


def test_tables_indexed_by_ids(ds):
    if ds.option_table is not None:
        assert ds.option_table.index.name == "option"
        assert ds.option_table.index.is_unique
        assert set(ds.options) <= set(ds.option_table.index)
    if ds.user_table is not None:
        assert ds.user_table.index.name == "user"
        assert ds.user_table.index.is_unique
        assert set(ds.user_table.index) == set(ds.frame["user"])
        assert not ds.user_table.isna().any().any()


def test_reference_shape(ds):
    ref = ds.reference
    if ds.name in ("football", "hh_rlhf_harmless"):
        assert len(ref) == 0
        return
    assert "source" in ref and "scale" in ref
    if "log_worth" in ref:
        assert ref["log_worth"][ref["reference_option"]] == 0.0
        assert set(ref["log_worth"]) == set(ds.options)


# ------------------------------------------------------------------------------ per-dataset counts
def test_baseball_counts():
    raw = _raw("baseball", "baseball.csv")
    ds = load_dataset("baseball")
    assert len(ds.frame) == raw["home.wins"].sum() + raw["away.wins"].sum()
    g = ds.frame.groupby(["a", "b"])["outcome"].agg(["sum", "size"])
    raw = raw.set_index(["home.team", "away.team"])
    g = g.loc[list(raw.index)]
    np.testing.assert_array_equal(g["sum"].to_numpy(), raw["home.wins"].to_numpy())
    np.testing.assert_array_equal(g["size"].to_numpy(), (raw["home.wins"] + raw["away.wins"]).to_numpy())
    assert ds.reference["home_advantage"] == pytest.approx(0.3023)
    assert ds.reference["reference_option"] == "Baltimore"


def test_citations_counts():
    raw = _raw("citations", "citations_binomial.csv")
    ds = load_dataset("citations")
    g = ds.frame.groupby(["a", "b"])["outcome"].agg(["sum", "size"]).loc[
        list(zip(raw["journal1"], raw["journal2"]))]
    np.testing.assert_array_equal(g["sum"].to_numpy(), raw["win1"].to_numpy())
    np.testing.assert_array_equal(g["size"].to_numpy(), (raw["win1"] + raw["win2"]).to_numpy())
    lw = ds.reference["log_worth"]
    assert (lw["Comm Statist"], lw["JASA"], lw["JRSS-B"]) == (-2.9491, -0.4796, 0.2690)


def test_pudding_counts():
    raw = _raw("pudding", "pudding.csv")
    ds = load_dataset("pudding")
    f = ds.frame
    assert f["a"].dtype == np.int64 and set(ds.options) == {1, 2, 3, 4, 5, 6}
    counts = f.groupby(["a", "b"])["outcome"].value_counts().unstack(fill_value=0)
    counts = counts.loc[list(zip(raw["i"], raw["j"]))]
    np.testing.assert_array_equal(counts[1.0].to_numpy(), raw["w_ij"].to_numpy())
    np.testing.assert_array_equal(counts[0.0].to_numpy(), raw["w_ji"].to_numpy())
    np.testing.assert_array_equal(counts[0.5].to_numpy(), raw["t_ij"].to_numpy())
    assert len(f) == raw["r_ij"].sum()
    assert ds.reference["tie"] == pytest.approx(np.exp(ds.reference["log_tie"]), abs=1e-4)


def test_cems():
    ds = load_dataset("cems")
    f = ds.frame
    assert f["outcome"].value_counts().to_dict() == {1.0: 2595, 0.0: 1372, 0.5: 487}
    assert f["user"].nunique() == 303 and f["user"].dtype == np.int64
    # 303 students x 15 pairs minus 91 missing comparisons
    assert 303 * 15 - len(f) == 91
    assert set(ds.options) == {"London", "Paris", "Milano", "StGallen", "Barcelona", "Stockholm"}
    assert list(ds.user_table.columns) == ["study", "english", "french", "spanish", "italian", "work",
                                           "gender", "intdegree"]
    assert len(ds.user_table) == 303
    assert list(ds.option_table.columns) == ["specialization", "location"]
    assert set(ds.option_table.index) == set(ds.options)
    assert ds.option_table.loc["Paris", "location"] == "latin"
    # the wide psychotree file agrees with the long one (first row: student 1, London:Paris = 1)
    wide = _raw("cems", "cemschoice_psychotree_wide.csv").set_index("subject")
    assert wide.iloc[:, 8:].notna().sum().sum() == len(f)
    row = f[(f["user"] == 2) & (f["a"] == "Barcelona") & (f["b"] == "Stockholm")]
    assert row["outcome"].item() == {1: 1.0, -1: 0.0, 0: 0.5}[wide.loc[2, "Barcelona:Stockholm"]]
    ref = ds.reference
    assert ref["reference_option"] == "Stockholm"
    assert ref["log_worth"]["London"] == pytest.approx(1.8228, abs=1e-4)
    assert ref["log_tie"] == pytest.approx(-1.3172, abs=1e-4)


def test_topmodel2007():
    ds = load_dataset("topmodel2007")
    f = ds.frame
    assert len(f) == 2880 and (f.groupby("user").size() == 15).all()
    assert list(ds.user_table.columns) == ["gender", "age", "q1", "q2", "q3"]
    assert len(ds.user_table) == 192 and ds.user_table["age"].dtype.kind == "i"
    assert ds.reference["reference_option"] == "Barbara"
    for node in ds.reference["tree_worths"].values():
        assert sum(node.values()) == pytest.approx(1.0, abs=2e-3)


def test_flatlizards():
    ds = load_dataset("flatlizards")
    f = ds.frame
    assert (f["outcome"] == 1.0).all()
    raw = _raw("flatlizards", "flatlizards_contests.csv")
    assert (f["a"].to_numpy() == raw["winner"].to_numpy()).all()
    assert (f["b"].to_numpy() == raw["loser"].to_numpy()).all()
    t = ds.option_table
    assert "id" not in t.columns and len(t.columns) == 17 and len(t) == 77
    assert t["SVL"].notna().all()
    assert t["throat.PC1"].isna().sum() == 2  # lizards 96 and 99 lack spectral data: kept as NaN
    assert ds.default_features == ("SVL",)
    assert ds.reference["features"]["SVL"] == pytest.approx(0.2051)
    assert ds.reference["random_effect_sd"] == pytest.approx(1.126)


def test_football():
    ds = load_dataset("football")
    f = ds.frame
    raw = _raw("football", "football.csv")
    assert f["outcome"].value_counts().to_dict() == {1.0: 882, 0.0: 513, 0.5: 505}
    assert (f["prompt"].to_numpy() == raw["season"].to_numpy()).all()
    assert f["prompt"].nunique() == 5


def test_expand_counts_is_exact():
    from bayespref.data.datasets import _expand_counts

    out = _expand_counts(np.array(["x", "y"]), np.array(["y", "z"]), [2, 0], [1, 3], [1, 0])
    assert out["a"].tolist() == ["x"] * 4 + ["y"] * 3
    assert out["b"].tolist() == ["y"] * 4 + ["z"] * 3
    assert out["outcome"].tolist() == [1.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0]


# ------------------------------------------------------------------------------ reference scale
def _davidson_loglik(frame, log_pi, log_nu=None):
    sa = frame["a"].map(log_pi).to_numpy(float)
    sb = frame["b"].map(log_pi).to_numpy(float)
    y = frame["outcome"].to_numpy()
    if log_nu is None:
        return float(np.sum(np.where(y == 1.0, sa, sb) - np.logaddexp(sa, sb)))
    st = log_nu + 0.5 * (sa + sb)
    num = np.where(y == 1.0, sa, np.where(y == 0.0, sb, st))
    return float(np.sum(num - np.logaddexp(np.logaddexp(sa, sb), st)))


@pytest.mark.parametrize("name", ["cems", "pudding", "topmodel2007"])
def test_reference_is_on_the_log_pi_scale(name):
    """The Davidson / BT log-likelihood at the stored reference reproduces the published logLik.

    (The ML fit itself is in benchmarks/reference_mle.py; here only the scale is pinned.)"""
    ds = load_dataset(name)
    ref = ds.reference
    ll = _davidson_loglik(ds.frame, dict(ref["log_worth"]), ref.get("log_tie"))
    assert ll == pytest.approx(ref["log_likelihood"], abs=0.6)
    if name == "cems":  # the "printed = log(pi)/2" reading is far worse
        doubled = {k: 2 * v for k, v in ref["log_worth"].items()}
        assert _davidson_loglik(ds.frame, doubled, ref["log_tie"]) < ll - 100


def test_baseball_reference_loglik_consistent():
    ds = load_dataset("baseball")
    ref = ds.reference
    lp = dict(ref["log_worth"])
    f = ds.frame
    h = ref["home_advantage"]
    sa = f["a"].map(lp).to_numpy() + h
    sb = f["b"].map(lp).to_numpy()
    y = f["outcome"].to_numpy()
    ll_home = np.sum(np.where(y == 1, sa, sb) - np.logaddexp(sa, sb))
    ll_plain = _davidson_loglik(f, dict(ref["log_worth_no_home"]))
    # deviance difference 44.053 - 38.643 = 5.41 (likelihood-ratio test of at.home)
    assert 2 * (ll_home - ll_plain) == pytest.approx(ref["deviance_no_home"] - ref["deviance"], abs=0.01)


# ------------------------------------------------------------------------------ Comparisons
@_IGNORE_DISCONNECTED
def test_comparisons_builds(ds):
    data = ds.comparisons()
    n, k, u, ties, extra = EXPECTED[ds.name]
    assert data.n_comparisons == n
    assert data.n_options == k
    assert data.has_ties is ties
    assert set(data.options) == set(ds.options)
    if u is not None:
        assert data.n_users == u
    else:
        assert data.n_users == 1
    if "prompt" in extra:
        assert data.prompt is not None and len(data.prompts) == N_PROMPTS[ds.name]
    np.testing.assert_array_equal(data.outcome, ds.frame["outcome"].to_numpy())


def test_comparisons_user_covariates():
    cems = load_dataset("cems")
    data = cems.comparisons()
    assert data.n_covariates == 8  # eight binary factors, first level dropped
    assert data.covariates.shape == (303, 8)
    sub = cems.comparisons(user_covariates=["gender", "italian"])
    assert sub.n_covariates == 2
    assert cems.comparisons(user_covariates=None).n_covariates == 0
    top = load_dataset("topmodel2007").comparisons()
    assert top.n_covariates == 5 and "age" in top.covariate_names
    with pytest.raises(DataError, match="user covariate"):
        cems.comparisons(user_covariates=["shoe_size"])


@_IGNORE_DISCONNECTED
def test_comparisons_features():
    liz = load_dataset("flatlizards")
    data = liz.comparisons()
    assert data.feature_names == ("SVL",) and data.n_features == 1
    assert data.xa.shape == (100, 1)
    svl = liz.option_table["SVL"]
    np.testing.assert_allclose(data.xa[:, 0], svl.loc[liz.frame["a"]].to_numpy())
    np.testing.assert_allclose(data.xb[:, 0], svl.loc[liz.frame["b"]].to_numpy())
    assert liz.comparisons(features=None).n_features == 0
    with pytest.raises(DataError):  # throat.PC1 has NaN: the data contract refuses it
        liz.comparisons(features=["SVL", "throat.PC1"])
    with pytest.raises(DataError, match="unknown feature"):
        liz.comparisons(features=["wingspan"])
    cems = load_dataset("cems").comparisons(features=["location"])
    assert cems.feature_names == ("location[other]",)
    assert load_dataset("cems").comparisons().n_features == 0


def test_comparisons_kwargs_pass_through():
    data = load_dataset("football").comparisons(prompt=None)
    assert data.prompt is None


# ------------------------------------------------------------------------------ beans (rankings)
BEANS_OPTIONS = {"ALS 0532-6", "BRT 103-182", "INTA Centro Sur", "INTA Ferroso", "INTA Matagalpa", "INTA Precoz",
                 "INTA Rojo", "INTA Sequia", "Local", "PM2 Don Rey", "SJC 730-79"}


@pytest.fixture(scope="module")
def beans() -> Dataset:
    return load_dataset("beans")


def _pl_loglik_wide(frame: pd.DataFrame, log_worth: dict) -> float:
    """Plackett-Luce log-likelihood of rank1 > rank2 (> rank3) rows, straight from the wide table."""
    s = [frame[c].map(log_worth).to_numpy(dtype=float) for c in ("rank1", "rank2", "rank3")]
    three = ~np.isnan(s[2])
    s3 = np.where(three, s[2], -np.inf)
    first = s[0] - np.logaddexp(np.logaddexp(s[0], s[1]), s3)
    second = np.where(three, s[1] - np.logaddexp(s[1], s3), 0.0)
    return float(np.sum(first + second))


def _pl_loglik_arrays(data, log_worth: dict) -> float:
    """The same from the encoded Rankings (no ties): sum over stages of s_t - logsumexp(s_t, ..., s_K)."""
    worth = np.array([log_worth[o] for o in data.options])
    shown = data.items >= 0
    s = np.where(shown, worth[np.maximum(data.items, 0)], -np.inf)
    rest = np.logaddexp.accumulate(s[:, ::-1], axis=1)[:, ::-1]  # logsumexp of slots t..K-1
    stage = np.arange(data.max_items)[None, :] < (data.n_shown - 1)[:, None]
    with np.errstate(invalid="ignore"):  # -inf - -inf in the padding, masked out
        return float(np.sum(np.where(stage, s - rest, 0.0)))


def test_beans_frame(beans):
    f = beans.frame
    assert beans.kind == "rankings" and list(f.columns) == ["farm", "type", "rank1", "rank2", "rank3"]
    assert isinstance(f.index, pd.RangeIndex) and len(f) == 3368 == beans.n_rankings
    assert f["type"].value_counts().to_dict() == {"vs_local": 2526, "order3": 842}
    assert f.loc[f["type"] == "vs_local", "rank3"].isna().all() and f.loc[f["type"] == "order3"].notna().all().all()
    assert set(beans.options) == BEANS_OPTIONS and beans.n_options == 11 and beans.n_users == 842
    assert beans.n_comparisons == 842 * 3 + 2526 and beans.has_ties is False
    assert repr(beans).startswith("Dataset('beans': 3368 rankings of 11 options, 842 users")


def test_beans_frame_agrees_with_the_raw_trials(beans):
    """beans_rankings_long.csv re-derived from beans.csv (best / worst letters, Better / Worse vs Local)."""
    raw = _raw("beans", "beans.csv").set_index("farm")
    f = beans.frame
    varieties = raw[["variety_a", "variety_b", "variety_c"]].to_numpy()
    letter = {"A": 0, "B": 1, "C": 2}
    best = varieties[np.arange(len(raw)), raw["best"].map(letter).to_numpy()]
    worst = varieties[np.arange(len(raw)), raw["worst"].map(letter).to_numpy()]
    order3 = f[f["type"] == "order3"].set_index("farm").loc[raw.index]
    assert (order3["rank1"].to_numpy() == best).all() and (order3["rank3"].to_numpy() == worst).all()
    vs = f[f["type"] == "vs_local"]
    for k, col in enumerate(("var_a", "var_b", "var_c")):
        better = raw[col].to_numpy() == "Better"
        winner = np.where(better, varieties[:, k], "Local")
        loser = np.where(better, "Local", varieties[:, k])
        mine = vs.groupby("farm").nth(k).set_index("farm").loc[raw.index]
        assert (mine["rank1"].to_numpy() == winner).all() and (mine["rank2"].to_numpy() == loser).all()


def test_beans_user_table(beans):
    t = beans.user_table
    assert t.index.name == "user" and t.index.is_unique and set(t.index) == set(beans.frame["farm"])
    assert list(t.columns) == ["season", "year", "maxTN", "lon", "lat", "planting_date"]
    assert not t.isna().any().any() and len(t) == 842
    assert sorted(t["season"].unique()) == ["Ap - 15", "Ap - 16", "Po - 15", "Po - 16", "Pr - 16"]


def test_beans_metadata(beans):
    assert "GPL-3" in beans.licence and "PlackettLuce" in beans.licence
    assert beans.readme.startswith("> **Bundled with bayespref**")
    first = beans.readme.splitlines()[0]
    assert "`beans.csv`" in first and "`beans_rankings_long.csv`" in first


def test_beans_rankings(beans):
    data = beans.rankings()
    assert (data.n_rankings, data.n_options, data.n_users, data.max_items) == (3368, 11, 842, 3)
    assert set(data.options) == BEANS_OPTIONS and not data.has_ties and data.n_covariates == 0
    assert np.bincount(data.n_shown).tolist() == [0, 0, 2526, 842]
    assert (data.level[data.items >= 0] < data.UNRANKED).all()  # complete rankings
    first = data.items[0]  # farm 1: PM2 Don Rey > SJC 730-79 > BRT 103-182
    assert list(data.options[first]) == ["PM2 Don Rey", "SJC 730-79", "BRT 103-182"]
    assert data.frame["type"].tolist() == beans.frame["type"].tolist()
    assert data.users[data.user].tolist() == beans.frame["farm"].tolist()
    cov = beans.rankings(user_covariates=["season", "maxTN"])
    assert cov.covariate_names == ("season[Ap - 16]", "season[Po - 15]", "season[Po - 16]", "season[Pr - 16]",
                                   "maxTN")
    np.testing.assert_array_equal(cov.covariates[:, -1], beans.user_table.loc[cov.users, "maxTN"].to_numpy())
    with pytest.raises(DataError, match="unknown user covariate"):
        beans.rankings(user_covariates=["shoe_size"])
    with pytest.raises(DataError, match="unknown feature"):
        beans.rankings(features=["colour"])


def test_beans_comparisons_are_the_implied_pairs(beans):
    data = beans.comparisons()
    assert data.n_comparisons == 5052 and (data.outcome == 1.0).all()
    assert set(data.options) == BEANS_OPTIONS and data.n_users == 842
    # the vs-Local rankings are one pair each: winner as a
    vs = beans.frame.index[beans.frame["type"] == "vs_local"]
    pairs = data.frame[data.frame["ranking"].isin(vs)]
    assert len(pairs) == 2526
    assert (pairs["a"].to_numpy() == beans.frame.loc[pairs["ranking"], "rank1"].to_numpy()).all()


def test_beans_reference_reproduces_the_published_loglik(beans):
    ref = beans.reference
    assert ref["reference_option"] == "ALS 0532-6" and ref["log_worth"]["ALS 0532-6"] == 0.0
    assert set(ref["log_worth"]) == BEANS_OPTIONS
    assert ref["log_worth"]["Local"] == pytest.approx(0.4935)
    lw = dict(ref["log_worth"])
    ll = _pl_loglik_wide(beans.frame, lw)
    assert ll == pytest.approx(ref["log_likelihood"], abs=0.01)
    assert _pl_loglik_arrays(beans.rankings(), lw) == pytest.approx(ll, abs=1e-9)
    # the log worths are maximum-likelihood: moving one lowers the likelihood
    moved = {**lw, "Local": lw["Local"] + 0.05}
    assert _pl_loglik_wide(beans.frame, moved) < ll


def test_beans_tree_reference(beans):
    ref = beans.reference
    users = beans.user_table.loc[beans.frame["farm"]]
    low = users["maxTN"].to_numpy() <= 18.7175
    pr16 = users["season"].to_numpy() == "Pr - 16"
    nodes = list(ref["tree_log_worth"])
    total = 0.0
    for node, mask, n in zip(nodes, (low & pr16, low & ~pr16, ~low), (47, 489, 306)):
        assert beans.frame.loc[mask, "farm"].nunique() == n
        lw = dict(ref["tree_log_worth"][node])
        total += _pl_loglik_wide(beans.frame[mask], lw)
        worth = np.exp(np.array(list(lw.values())))
        expected = dict(zip(lw, worth / worth.sum()))
        for option, w in ref["tree_worths"][node].items():
            assert w == pytest.approx(expected[option], abs=1e-4), (node, option)
    assert -total == pytest.approx(ref["tree_negloglik"], abs=0.01)


def test_pairwise_dataset_as_rankings_of_two():
    ds = load_dataset("pudding")
    data = ds.rankings()
    assert data.n_rankings == 745 and data.max_items == 2 and data.has_ties
    assert _pair_count(data.explode()) == _pair_count(ds.comparisons())


def _pair_count(c) -> dict:
    """(winner, loser, outcome) counts, a tie listed with its options sorted."""
    out: dict = {}
    for a, b, y in zip(c.frame["a"], c.frame["b"], c.outcome):
        key = (b, a, 1.0) if y == 0.0 else (tuple(sorted((a, b))) + (0.5,) if y == 0.5 else (a, b, 1.0))
        out[key] = out.get(key, 0) + 1
    return out
