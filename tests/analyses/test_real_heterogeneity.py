"""Heterogeneity on real data: the group differences of the published covariate analyses, with intervals.

* Topmodel2007: psychotree's BT tree (Strobl, Wickelmaier & Zeileis 2011; dataset README) splits the
  viewers at age 52, then on q2 (watched the show regularly), then on gender. A ``Hierarchical``
  model whose worths are shifted by age > 52, q2 and gender (no random effects, so its group worths
  are on the population-averaged scale of the tree's node fits) finds the same differences, as
  contrasts of log-worths relative to Barbara with 90% intervals, of the sizes the tree's node
  worths imply.
* CEMS: the tree's first split is on Italian skills; BradleyTerry2's Table-8 model has
  ITA[poor]:Milano = -1.68. A hierarchical model with a random effect per student and group effects
  of the language skills finds poor Italian lowering Milano with an interval that excludes 0 (and
  poor French lowering Paris, poor Spanish Barcelona).

The same analyses, with their comparisons to the published numbers, are in
notebooks/02_heterogeneity.ipynb and models/topmodel2007_groups.toml.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref import heterogeneity as het

SETTINGS = dict(chains=2, warmup=300, draws=300, progress=False)
TREE_NODES = {"node3 (age<=52, q2 yes, n=35)": "3", "node5 (age<=52, q2 no, male, n=71)": "5",
              "node6 (age<=52, q2 no, female, n=56)": "6", "node7 (age>52, n=30)": "7"}


def _quiet_fit(spec, data, seed):
    with warnings.catch_warnings():  # short chains: the checks are about the estimates, not mixing
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # R-hat of constant (masked) entries
        return bp.fit(spec, data, seed=seed, **SETTINGS)


# ------------------------------------------------------------------------------------------------
# Topmodel2007
# ------------------------------------------------------------------------------------------------
def _node(v) -> str:
    if v["age"] > 52:
        return "7"
    if v["q2"] == "yes":
        return "3"
    return "5" if v["gender"] == "male" else "6"


@pytest.fixture(scope="module")
def topmodel():
    ds = bp.load_dataset("topmodel2007")
    viewers = ds.user_table.assign(age_group=lambda t: np.where(t["age"] > 52, "over 52", "52 or under"),
                                   tree_node=lambda t: t.apply(_node, axis=1))
    data = ds.comparisons(user_covariates=viewers[["age_group", "q2", "gender", "tree_node"]])
    spec = bp.Hierarchical(varying=["worths"], covariates=["age_group", "q2", "gender"], random_effects=False)
    fit = _quiet_fit(spec, data, seed=52)
    # the tree's terminal-node worths on our scale: log(pi_i / pi_Barbara)
    tree = pd.DataFrame({TREE_NODES[k]: dict(v) for k, v in ds.reference["tree_worths"].items()}).T
    tree_log = np.log(tree).sub(np.log(tree["Barbara"]), axis=0)
    n = viewers["tree_node"].value_counts()
    return fit, tree_log, n


def _tree_contrasts(tree_log, n):
    """The tree's versions of the model's contrasts: node 7 vs the younger nodes (viewer-weighted),
    node 3 vs nodes 5 and 6 (q2, among the younger viewers), node 5 vs node 6 (gender)."""
    def avg(nodes):
        return tree_log.loc[nodes].mul(n[nodes], axis=0).sum() / n[nodes].sum()

    return {("age_group", "over 52", "52 or under"): tree_log.loc["7"] - avg(["3", "5", "6"]),
            ("q2", "yes", "no"): tree_log.loc["3"] - avg(["5", "6"]),
            ("gender", "male", "female"): tree_log.loc["5"] - tree_log.loc["6"]}


def _contrast(fit, by, a, b):
    eff = het.group_effects(fit, by, reference="Barbara")
    return het.contrast(eff["worth"], a, b).drop(index="Barbara")


def test_topmodel_older_viewers_rank_anni_low_and_anja_high(topmodel):
    fit, _, _ = topmodel
    c = _contrast(fit, "age_group", "over 52", "52 or under")
    anni, anja = c.loc["Anni"], c.loc["Anja"]
    assert anni["mean"] < 0 and anni["upper"] < 0, anni        # tree: -1.28 on the log scale
    assert anni["mean"] < -0.7                                 # the largest difference in the data
    assert anja["mean"] > 0 and anja["lower"] > 0, anja        # tree: +0.59; weaker, but supported


def test_topmodel_regular_viewers_favour_hana(topmodel):
    fit, _, _ = topmodel
    hana = _contrast(fit, "q2", "yes", "no").loc["Hana"]
    assert hana["mean"] > 0 and hana["lower"] > 0, hana        # tree: +0.71


def test_topmodel_men_and_women_differ_on_barbara_and_hana(topmodel):
    fit, _, _ = topmodel
    hana = _contrast(fit, "gender", "male", "female").loc["Hana"]
    assert hana["lower"] > 0, hana                             # tree: +0.91 (relative to Barbara)
    # ... which reverses the order of Barbara and Hana between the younger men and women (nodes 5, 6)
    eff = het.group_effects(fit, "tree_node", method="users", reference="Barbara")
    rr = het.rank_reversal(eff).sel(group_a="5", group_b="6", option_a="Hana", option_b="Barbara")
    assert float(rr) > 0.8
    assert float(rr["p_group_a"]) > 0.8 and float(rr["p_group_b"]) < 0.2


def test_topmodel_contrasts_agree_with_the_tree_in_sign_and_size(topmodel):
    """Every contrast within 3 posterior SDs of the tree's; the sign agrees wherever the tree's
    contrast is clearly non-zero (|tree| > 2 SD). The tree is interactive (q2 and gender split only
    the younger viewers) where the model is additive, and its node estimates are ML fits of small
    nodes chosen because they differ; 3 SDs allows for that."""
    fit, tree_log, n = topmodel
    checked = 0
    for (by, a, b), tree in _tree_contrasts(tree_log, n).items():
        c = _contrast(fit, by, a, b)
        for option, row in c.iterrows():
            t = float(tree[option])
            assert abs(row["mean"] - t) < 3 * row["sd"], (by, option, row["mean"], t, row["sd"])
            if abs(t) > 2 * row["sd"]:
                assert np.sign(row["mean"]) == np.sign(t), (by, option, row["mean"], t)
                checked += 1
    assert checked >= 8  # most of the tree's differences are clear enough to check their sign


def test_topmodel_tree_nodes_reproduced(topmodel):
    """Averaged over the viewers of each terminal node, the additive model's worths are close to
    the tree's node worths (log scale, relative to Barbara)."""
    fit, tree_log, _ = topmodel
    eff = het.group_effects(fit, "tree_node", method="users", reference="Barbara")
    t = het.summary(eff["worth"])
    est = t["mean"].unstack("option").loc[tree_log.index, tree_log.columns].drop(columns="Barbara")
    sd = t["sd"].unstack("option").loc[tree_log.index, tree_log.columns].drop(columns="Barbara")
    ref = tree_log.drop(columns="Barbara")
    assert np.corrcoef(est.to_numpy().ravel(), ref.to_numpy().ravel())[0, 1] > 0.9
    assert ((est - ref).abs() < 2 * sd).to_numpy().all(), (est - ref) / sd


# ------------------------------------------------------------------------------------------------
# CEMS
# ------------------------------------------------------------------------------------------------
LANGUAGE = ["english", "french", "spanish", "italian", "study"]


@pytest.fixture(scope="module")
def cems_hierarchical():
    data = bp.load_dataset("cems").comparisons(user_covariates=LANGUAGE)
    spec = bp.Hierarchical(varying=["worths"], covariates=LANGUAGE, ties=True, correlated=False)
    return _quiet_fit(spec, data, seed=2011)


@pytest.mark.slow  # real-data statistical check (~45 s fit); keeps the default suite under 10 min
@pytest.mark.parametrize("language, school", [("italian", "Milano"), ("french", "Paris"), ("spanish", "Barcelona")])
def test_cems_poor_language_lowers_its_school(cems_hierarchical, language, school):
    """The tree's first split (italian) and Table 8's largest interactions, as group contrasts with
    intervals: students with poor skills in a school's language value it less (relative to
    Stockholm; subject-specific scale, so larger than Table 8's population-averaged -1.2 to -1.7)."""
    eff = het.group_effects(cems_hierarchical, language, reference="Stockholm")
    c = het.contrast(eff["worth"], "poor", "good").loc[school]
    assert c["mean"] < 0 and c["upper"] < 0, c
    assert c["p_positive"] < 0.01
