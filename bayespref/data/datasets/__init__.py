"""Real paired-comparison and ranking datasets bundled with bayespref, with their published reference fits.

>>> from bayespref.datasets import list_datasets, load_dataset
>>> list_datasets()                                   # one row per dataset
>>> ds = load_dataset("cems")
>>> ds.frame.head()                                   # long frame: a, b, outcome, user
>>> ds.user_table.head()                              # per-student covariates
>>> data = ds.comparisons()                           # a validated bayespref.Comparisons
>>> ds.reference["log_worth"]["London"]               # published MLE, on the log-pi scale

Every dataset is a :class:`Dataset` whose ``frame`` is a LONG DataFrame with one row per
judgement and the canonical columns

* ``a``, ``b`` -- ids of the two options (``a`` is the first-listed / home / "position" option),
* ``outcome`` -- float: 1.0 = ``a`` preferred, 0.0 = ``b`` preferred, 0.5 = tie / no preference,
* ``user`` -- annotator id (only where the data have one: ``cems``, ``topmodel2007``),
* ``prompt`` -- context id (``football``: the season; ``hh_rlhf_harmless``: the prompt text).

Ranking datasets (``beans``) have ``kind == "rankings"``: their ``frame`` is a WIDE table, one row
per ranking, read by ``rankings()`` (a :class:`bayespref.Rankings`); ``comparisons()`` gives the pairs
those rankings imply (:meth:`Rankings.explode`).

Per-option covariates are in ``option_table`` (indexed by option id) and per-user covariates in
``user_table`` (indexed by user id); either is ``None`` when the data have none. Counts data
(``baseball``, ``citations``, ``pudding``) are expanded to one row per judgement.

Mappings (source file -> frame)
-------------------------------
``baseball``
    ``baseball.csv``: a = ``home.team``, b = ``away.team``; each of the ``home.wins`` games is a row
    with outcome 1, each of the ``away.wins`` games a row with outcome 0 (273 games). A position
    effect for ``a`` is therefore the home advantage.
``citations``
    ``citations_binomial.csv``: a = ``journal1``, b = ``journal2``; ``win1`` rows with outcome 1
    (journal1 cited by journal2), ``win2`` rows with outcome 0 (3727 citations).
``pudding``
    ``pudding.csv``: a = brand ``i``, b = brand ``j`` (brands are the **integers** 1..6, as in the
    source), ``w_ij`` rows with outcome 1, ``w_ji`` rows with 0, ``t_ij`` rows with 0.5 (745).
``cems``
    psychotree ``CEMSChoice`` (the corrected 2001 data), ``cemschoice_psychotree_long.csv``:
    a = ``item1``, b = ``item2``, outcome 1 -> 1, -1 -> 0, 0 (no preference) -> 0.5, user =
    ``subject`` (ints 1..303); 4454 non-missing judgements. ``user_table``: ``study, english,
    french, spanish, italian, work, gender, intdegree`` (strings) from the psychotree wide file;
    ``option_table``: ``specialization, location`` (strings) per school. School ids are psychotree's
    (``StGallen``, not ``St.Gallen``).
``topmodel2007``
    ``topmodel2007_long.csv``: a = ``item1``, b = ``item2``, outcome 1 -> 1, -1 -> 0 (no ties),
    user = ``subject`` (ints 1..192); 2880 judgements. ``user_table``: ``gender, age, q1, q2, q3``.
``flatlizards``
    ``flatlizards_contests.csv``: a = ``winner``, b = ``loser``, outcome 1 (100 contests).
    ``option_table``: the 17 lizard predictors indexed by lizard id (the redundant numeric ``id``
    column dropped; missing values kept as NaN). ``comparisons()`` uses only ``SVL`` (no NaN) by
    default; asking for a feature with NaN (e.g. ``throat.PC1``) makes the data contract raise.
    The contest graph is disconnected (4 components), so ``comparisons()`` emits a ``DataWarning``:
    abilities are only linked through the features / a random effect, as in the published model.
``football``
    ``football.csv``: a = ``home``, b = ``away``, outcome 1 (home win) -> 1, 0 (draw) -> 0.5,
    -1 (away win) -> 0; prompt = ``season`` (1900 matches).
``hh_rlhf_harmless``
    ``harmless-base-test.jsonl.gz`` (Anthropic HH-RLHF, harmless-base test split, MIT), read as TRL
    preference data with an implicit prompt (:meth:`Comparisons.from_trl`): prompt = the shared
    prefix of the two dialogues up to and including the last shared ``"\n\nAssistant:"`` marker,
    a = the chosen response, b = the rejected one (the rest of each dialogue, verbatim), outcome 1
    (2312 pairs). ``comparisons()`` re-reads the file's rows with ``from_trl`` (kept as ``source``),
    so saved data and :meth:`Comparisons.encode` use the TRL reader.
``beans``
    PlackettLuce ``beans`` (tricot trials of bean varieties, Nicaragua), ``beans_rankings_long.csv``
    (a wide table despite its name; derived as in the PlackettLuce vignette): one row per ranking,
    ``farm`` (the user, ints 1..842), ``type`` (``"order3"``: the farmer's ranking of the three trial
    varieties, ``rank1`` best; ``"vs_local"``: one trial variety against the farmer's ``Local``
    variety, ``rank1`` the better one, ``rank3`` empty), ``rank1``..``rank3`` (option ids; 11
    options: 10 varieties and ``Local``); 842 + 2526 = 3368 rankings, no ties. ``user_table``
    (index ``user`` = farm): ``season, year, maxTN, lon, lat, planting_date`` from ``beans.csv``.
    ``rankings()`` is ``Rankings.from_wide(frame, positions=["rank1", "rank2", "rank3"],
    user="farm", keep=["type"])``, without user covariates by default (pass names of
    ``user_table`` columns, e.g. ``user_covariates=["season", "maxTN"]``: ``planting_date`` is a
    string and would be one-hot coded). ``comparisons()`` is ``rankings().explode()`` (5052 pairs).

See :attr:`Dataset.reference` for the scale of the published estimates.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from bayespref.data.comparisons import Comparisons
from bayespref.data.rankings import Rankings
from bayespref.data.readers import expand_counts
from bayespref.errors import DataError, DataWarning

__all__ = ["Dataset", "list_datasets", "load_dataset"]

_DEFAULT: Any = object()  # sentinel: "use the dataset's default"


# --------------------------------------------------------------------------------------------
# the Dataset object
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A bundled dataset: a long comparison frame (or a wide ranking table), covariate tables and
    published references.

    Attributes
    ----------
    name, description
        Registry name and a one-line description.
    frame
        LONG DataFrame, one row per judgement: ``a``, ``b``, ``outcome`` (1.0 = ``a`` preferred,
        0.0 = ``b`` preferred, 0.5 = tie) and, where the data have them, ``user`` / ``prompt``.
        For ranking data (``kind == "rankings"``) a WIDE table, one row per ranking, read by
        :meth:`rankings` with ``ranking_args``.
    option_table
        Per-option covariates indexed by option id (index name ``"option"``), or ``None``.
    user_table
        Per-user covariates indexed by user id (index name ``"user"``), or ``None``.
    reference
        Read-only mapping of published reference estimates (see below), possibly empty.
    citation
        The README's introduction: what the data are and the study they come from.
    licence
        The README's "Provenance / licence" section (source package and licence).
    readme
        The full bundled README.md text.
    source, reader
        For data read by a format reader (``hh_rlhf_harmless``: ``"trl"``), the rows as stored and
        the reader's name; ``comparisons()`` calls that reader on ``source``. ``None`` otherwise.
    kind
        ``"comparisons"`` (pairwise data) or ``"rankings"`` (``beans``).
    ranking_args
        For ranking data, the arguments of :meth:`Rankings.from_wide` that read ``frame``.

    The ``reference`` mapping
    -------------------------
    All abilities are on ONE scale, whatever scale the source printed: ``log_worth[i] = log pi_i``
    of the Bradley-Terry model ``P(i beats j) = pi_i / (pi_i + pi_j)`` (i.e. ``logit P = log pi_i
    - log pi_j``), relative to ``reference_option`` (which is included, with value 0). With ties it
    is the Davidson (1970) model
    ``P(i) = pi_i / D``, ``P(j) = pi_j / D``, ``P(tie) = nu sqrt(pi_i pi_j) / D``,
    ``D = pi_i + pi_j + nu sqrt(pi_i pi_j)``, and ``log_tie = log nu``. Keys (where available):

    ``reference_option``, ``log_worth`` (dict option -> value), ``log_tie``,
    ``home_advantage`` (additive on the logit scale for option ``a``), ``features`` (dict name ->
    coefficient of the ability regression ``log pi_i = x_i' beta (+ u_i)``),
    ``random_effect_sd`` (SD of ``u_i``), ``log_likelihood``, ``deviance``, ``published`` (the
    numbers exactly as the source printed them, where their scale differs), ``source`` (str) and
    ``scale`` (str, the parameterisation in words). Per dataset:

    * ``baseball`` -- BradleyTerry2 ``BTm(~ team + at.home)`` (ref Baltimore): ``log_worth`` is on
      the log-pi scale as printed; ``home_advantage`` = at.home = 0.3023; ``deviance`` 38.643.
      ``log_worth_no_home`` is the fit without home advantage (deviance 44.053).
    * ``citations`` -- BTm ML fit, ref Biometrika: Comm Statist -2.9491, JASA -0.4796,
      JRSS-B 0.2690 (log-pi scale as printed).
    * ``pudding`` -- PlackettLuce (= Davidson 1970) ML fit, ref brand 1. The printed log-worths
      ARE log pi and the printed tie parameter 0.7468 IS nu (``log_tie`` = -0.2919 = log nu);
      checked by an independent Davidson MLE (``benchmarks/reference_mle.py``; logLik -809.71).
    * ``cems`` -- psychotools ``btmodel(CEMSChoice$preference)`` (type "loglin", ref Stockholm),
      printed London 1.8228, Paris 1.0325, Milano 0.4420, StGallen 0.5983, Barcelona 0.6129,
      (undecided) -1.3172, logLik -3964. These ARE the Davidson parameters on the log scale:
      ``log_worth`` = log pi = printed (NOT log(pi)/2) and ``log_tie`` = log nu = printed
      "(undecided)" = -1.3172 (nu = 0.2679). Verified by an independent Davidson MLE on this frame
      (``benchmarks/reference_mle.py``): estimates and Wald SEs equal the printed ones to 5
      decimals, logLik -3964.378; the "log(pi)/2" reading (log pi = 2 x printed) has a Davidson
      logLik of -4190.6, so it is rejected. ``published`` keeps the printed values.
      ``log_worth_ties_as_half`` is BradleyTerry2's "Table 3" fit (a tie counted as half a win for
      each school, binomial likelihood with fractional outcomes, ref Stockholm; log-pi scale as
      printed), also reproduced by that script.
    * ``topmodel2007`` -- psychotools ``btmodel`` pooled over subjects (ref Barbara, no ties): the
      printed values ARE log pi (no factor 2 without ties; MLE reproduces them, logLik -1912.055,
      printed -1912). ``tree_worths`` holds the ``bttree`` terminal-node worths (normalised pi,
      summing to 1) with ``tree_negloglik`` 1828.633.
    * ``flatlizards`` -- BTm PQL fit ``~ SVL[..] + (1|..)``: ``features = {"SVL": 0.2051}``,
      ``random_effect_sd`` = 1.126 (ability = 0.2051 SVL_i + u_i, u_i ~ N(0, 1.126^2)).
    * ``football``, ``hh_rlhf_harmless`` -- no published estimates: ``{}``.
    * ``beans`` -- PlackettLuce ``PlackettLuce(R, npseudo = 0)`` pooled ML fit (ref ALS 0532-6):
      ``log_worth`` are the log worths of the Plackett-Luce model (``P(i first among S) = pi_i /
      sum_S pi_j``; for two items the Bradley-Terry log pi), ``log_likelihood`` -3192.583 (df 10).
      ``log_worth_npseudo`` / ``se_npseudo``: R's default fit (``npseudo = 0.5``, a pseudo-ranking
      against a hypothetical item per option). ``tree_log_worth`` / ``tree_worths`` (normalised,
      summing to 1): the ``pltree`` terminal nodes of the vignette (splits in ``tree``),
      ``tree_negloglik`` 3152.027. Both log-likelihoods are reproduced from ``frame`` and
      ``user_table`` in the tests.
    """

    name: str
    description: str
    frame: pd.DataFrame
    option_table: pd.DataFrame | None
    user_table: pd.DataFrame | None
    reference: Mapping[str, Any]
    citation: str
    licence: str
    readme: str = field(default="")
    default_features: tuple[str, ...] | None = field(default=None)
    source: pd.DataFrame | None = field(default=None)
    reader: str | None = field(default=None)
    kind: str = field(default="comparisons")
    ranking_args: Mapping[str, Any] | None = field(default=None)

    # ------------------------------------------------------------------ summaries
    @property
    def n_comparisons(self) -> int:
        """Rows of the long frame; for ranking data, the pairs the rankings imply (``comparisons()``)."""
        if self.kind == "rankings":
            return int(self.rankings(user_covariates=None).describe()["n_pairs"])
        return len(self.frame)

    @property
    def n_rankings(self) -> int | None:
        """Rows of the ranking table, or ``None`` for pairwise data."""
        return len(self.frame) if self.kind == "rankings" else None

    @property
    def options(self) -> pd.Index:
        """Sorted ids of every option that appears in the frame."""
        if self.kind == "rankings":
            cells = self.frame[list(self.ranking_args["positions"])].to_numpy(dtype=object).ravel()
            return pd.Index(pd.unique(cells[~pd.isna(cells)])).sort_values()
        return pd.Index(pd.unique(np.concatenate([self.frame["a"].to_numpy(), self.frame["b"].to_numpy()]))).sort_values()

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def n_users(self) -> int | None:
        """Number of distinct users, or ``None`` when the data have no user ids."""
        user = self.ranking_args.get("user") if self.kind == "rankings" else "user"
        return int(self.frame[user].nunique()) if user is not None and user in self.frame else None

    @property
    def has_ties(self) -> bool:
        if self.kind == "rankings":
            return self.rankings(user_covariates=None).has_ties
        return bool((self.frame["outcome"] == 0.5).any())

    def __repr__(self) -> str:
        if self.kind == "rankings":
            extra = [f"{self.n_users} users"] if self.n_users is not None else []
            if self.user_table is not None:
                extra.append(f"user covariates {list(self.user_table.columns)}")
            tail = (", " + ", ".join(extra)) if extra else ""
            return (f"Dataset({self.name!r}: {self.n_rankings} rankings of {self.n_options} options"
                    f"{', ties' if self.has_ties else ''}{tail})")
        extra = []
        if self.n_users is not None:
            extra.append(f"{self.n_users} users")
        if "prompt" in self.frame:
            extra.append(f"{self.frame['prompt'].nunique()} prompts")
        if self.option_table is not None:
            extra.append(f"option covariates {list(self.option_table.columns)}")
        if self.user_table is not None:
            extra.append(f"user covariates {list(self.user_table.columns)}")
        tail = (", " + ", ".join(extra)) if extra else ""
        return (f"Dataset({self.name!r}: {self.n_comparisons} comparisons of {self.n_options} options"
                f"{', ties' if self.has_ties else ''}{tail})")

    # ------------------------------------------------------------------ Comparisons
    def comparisons(self, *, features: Any = _DEFAULT, user_covariates: Any = _DEFAULT, **kw):
        """Build the validated :class:`bayespref.Comparisons` for this dataset.

        Calls ``Comparisons.from_frame(self.frame, a="a", b="b", outcome="outcome", user="user"
        (if present), prompt="prompt" (if present), features=..., user_covariates=..., **kw)``;
        for data read by a format reader (``reader="trl"``: ``hh_rlhf_harmless``) it calls
        ``Comparisons.from_trl(self.source, features=..., user_covariates=..., **kw)`` instead
        (features and user covariates default to none).

        Parameters
        ----------
        features
            Default: the dataset's default (``flatlizards``: ``["SVL"]``; otherwise none).
            ``None`` for no features; a name or list of names of ``option_table`` columns (numeric
            columns are used as they are, string columns are one-hot coded with the first sorted
            level dropped, named ``"col[level]"``); or anything ``from_frame`` accepts (a per-option
            DataFrame, or names ``f`` with ``f_a``/``f_b`` columns in the frame).
        user_covariates
            Default: the whole ``user_table`` where there is one. ``None`` for none; a name or list
            of names of ``user_table`` columns; or a per-user DataFrame.
        **kw
            Passed on to ``from_frame`` (e.g. ``prompt=None`` to drop football's seasons), or to
            ``from_trl`` (e.g. ``text_features=bayespref.TextFeatures()`` for features of the
            ``hh_rlhf_harmless`` responses).
        """

        if self.kind == "rankings":
            return self.rankings(features=features, user_covariates=user_covariates, **kw).explode()
        if self.reader == "trl":
            args = {"features": None if features is _DEFAULT else features,
                    "user_covariates": None if user_covariates is _DEFAULT else user_covariates}
            return Comparisons.from_trl(self.source, **{**args, **kw})
        args: dict[str, Any] = {"a": "a", "b": "b", "outcome": "outcome"}
        if "user" in self.frame:
            args["user"] = "user"
        if "prompt" in self.frame:
            args["prompt"] = "prompt"
        args["features"] = self._resolve_features(features)
        args["user_covariates"] = self._resolve_user_covariates(user_covariates)
        args.update(kw)
        return Comparisons.from_frame(self.frame, **args)

    def rankings(self, *, features: Any = _DEFAULT, user_covariates: Any = _DEFAULT, **kw) -> Rankings:
        """Build the validated :class:`bayespref.Rankings` for this dataset.

        For ranking data (``beans``) it calls ``Rankings.from_wide(self.frame, **self.ranking_args,
        features=..., user_covariates=..., **kw)``; user covariates default to none there (name
        ``user_table`` columns, e.g. ``user_covariates=["season", "maxTN"]``, or pass a table).
        For pairwise data each comparison is a ranking of two:
        ``Rankings.from_comparisons(self.comparisons(features=..., user_covariates=..., **kw))``.

        Examples
        --------
        >>> data = load_dataset("beans").rankings(user_covariates=["maxTN"])
        >>> data.n_rankings, data.n_options, data.covariate_names
        (3368, 11, ('maxTN',))
        """
        if self.kind != "rankings":
            return Rankings.from_comparisons(self.comparisons(features=features, user_covariates=user_covariates,
                                                              **kw))
        args = dict(self.ranking_args)
        args["features"] = self._resolve_features(features)
        args["user_covariates"] = (None if user_covariates is _DEFAULT
                                   else self._resolve_user_covariates(user_covariates))
        args.update(kw)
        return Rankings.from_wide(self.frame, **args)

    def _resolve_features(self, features: Any) -> Any:
        if features is _DEFAULT:
            features = list(self.default_features) if self.default_features else None
        if features is None or isinstance(features, pd.DataFrame):
            return features
        names = [features] if isinstance(features, str) else list(features)
        table = self.option_table
        if table is not None and all(n in table.columns for n in names):
            return _encode_columns(table[names])
        if all(f"{n}_a" in self.frame and f"{n}_b" in self.frame for n in names):
            return names
        avail = [] if table is None else list(table.columns)
        raise DataError(f"dataset {self.name!r}: unknown feature(s) "
                        f"{[n for n in names if n not in avail]}; option covariates available: {avail or 'none'}")

    def _resolve_user_covariates(self, user_covariates: Any) -> Any:
        if user_covariates is _DEFAULT:
            return None if self.user_table is None else self.user_table.copy()
        if user_covariates is None or isinstance(user_covariates, pd.DataFrame):
            return user_covariates
        names = [user_covariates] if isinstance(user_covariates, str) else list(user_covariates)
        table = self.user_table
        if table is not None and all(n in table.columns for n in names):
            return table[names].copy()
        avail = [] if table is None else list(table.columns)
        raise DataError(f"dataset {self.name!r}: unknown user covariate(s) "
                        f"{[n for n in names if n not in avail]}; user covariates available: {avail or 'none'}")


def _encode_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float; string/categorical columns one-hot, first sorted level dropped.

    Missing values stay NaN (in every dummy of a categorical column), so that the data contract
    reports them.
    """
    out = {}
    for col in table.columns:
        s = table[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out[col] = s.astype("float64")
            continue
        levels = sorted(s.dropna().unique().tolist(), key=str)
        for lev in levels[1:]:
            d = (s == lev).astype("float64")
            d[s.isna()] = np.nan
            out[f"{col}[{lev}]"] = d
    return pd.DataFrame(out, index=table.index)


# --------------------------------------------------------------------------------------------
# reading bundled files
# --------------------------------------------------------------------------------------------
def _data_dir(name: str):
    return resources.files("bayespref.data.datasets").joinpath("data", name)


def _read_csv(name: str, filename: str, **kw) -> pd.DataFrame:
    with _data_dir(name).joinpath(filename).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, **kw)


def _read_readme(name: str) -> str:
    return _data_dir(name).joinpath("README.md").read_text(encoding="utf-8")


def _readme_parts(text: str) -> tuple[str, str]:
    """(citation, licence) from a bundled README: the introduction before the first ``##``
    heading (without the "Bundled with bayespref" note and the ``#`` of the title) and the body of
    the "Provenance / licence" section."""
    lines = text.splitlines()
    intro: list[str] = []
    for line in lines:
        if line.startswith("## "):
            break
        if line.startswith("> **Bundled with bayespref**"):
            continue
        intro.append(line[2:] if line.startswith("# ") else line)
    m = re.search(r"^## Provenance / licence\s*\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    licence = m.group(1).strip() if m else ""
    return "\n".join(intro).strip(), licence


def _expand_counts(a, b, wins_a, wins_b, ties=None) -> pd.DataFrame:
    """One row per judgement (``a``, ``b``, ``outcome``) from per-pair counts, by
    :func:`bayespref.data.readers.expand_counts` (within a pair: ``a`` wins, ``b`` wins, ties)."""
    a, b = np.asarray(a), np.asarray(b)
    ties = np.zeros(len(a), np.int64) if ties is None else ties
    pair, outcome = expand_counts(np.column_stack([np.asarray(wins_a), np.asarray(wins_b), np.asarray(ties)]))
    return pd.DataFrame({"a": a[pair], "b": b[pair], "outcome": outcome})


def _recode(series: pd.Series, mapping: dict, what: str) -> pd.Series:
    out = series.map(mapping)
    if out.isna().any():
        bad = sorted(series[out.isna()].unique().tolist(), key=str)
        raise DataError(f"unexpected {what} codes {bad}")
    return out.astype("float64")


def _freeze(obj: Any) -> Any:
    if isinstance(obj, dict):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    return obj


# --------------------------------------------------------------------------------------------
# builders: name -> (frame, option_table, user_table, default_features)
# --------------------------------------------------------------------------------------------
def _build_baseball():
    df = _read_csv("baseball", "baseball.csv")
    frame = _expand_counts(df["home.team"], df["away.team"], df["home.wins"], df["away.wins"])
    return frame, None, None, None


def _build_citations():
    df = _read_csv("citations", "citations_binomial.csv")
    frame = _expand_counts(df["journal1"], df["journal2"], df["win1"], df["win2"])
    return frame, None, None, None


def _build_pudding():
    df = _read_csv("pudding", "pudding.csv")
    frame = _expand_counts(df["i"].astype("int64"), df["j"].astype("int64"), df["w_ij"], df["w_ji"], df["t_ij"])
    return frame, None, None, None


_CEMS_USER_COVS = ["study", "english", "french", "spanish", "italian", "work", "gender", "intdegree"]


def _build_cems():
    long = _read_csv("cems", "cemschoice_psychotree_long.csv")
    frame = pd.DataFrame({
        "a": long["item1"], "b": long["item2"],
        "outcome": _recode(long["outcome"], {1: 1.0, -1: 0.0, 0: 0.5}, "cems outcome"),
        "user": long["subject"].astype("int64"),
    })
    wide = _read_csv("cems", "cemschoice_psychotree_wide.csv")
    users = wide.set_index("subject")[_CEMS_USER_COVS]
    users.index = users.index.astype("int64").rename("user")
    schools = _read_csv("cems", "cemschoice_school_covariates.csv").set_index("school")
    schools.index.name = "option"
    return frame, schools, users, None


def _build_topmodel2007():
    long = _read_csv("topmodel2007", "topmodel2007_long.csv")
    frame = pd.DataFrame({
        "a": long["item1"], "b": long["item2"],
        "outcome": _recode(long["outcome"], {1: 1.0, -1: 0.0}, "topmodel2007 outcome"),
        "user": long["subject"].astype("int64"),
    })
    users = _read_csv("topmodel2007", "topmodel2007_subjects.csv").set_index("subject")
    users.index = users.index.astype("int64").rename("user")
    return frame, None, users[["gender", "age", "q1", "q2", "q3"]], None


def _build_flatlizards():
    contests = _read_csv("flatlizards", "flatlizards_contests.csv")
    frame = pd.DataFrame({"a": contests["winner"], "b": contests["loser"],
                          "outcome": np.ones(len(contests), dtype="float64")})
    pred = _read_csv("flatlizards", "flatlizards_predictors.csv").set_index("lizard").drop(columns="id")
    pred.index.name = "option"
    return frame, pred, None, ("SVL",)


def _build_hh_rlhf_harmless():
    with _data_dir("hh_rlhf_harmless").joinpath("harmless-base-test.jsonl.gz").open("rb") as fh:
        raw = pd.read_json(fh, lines=True, dtype=False, compression="gzip")
    with warnings.catch_warnings():  # one option per response text: disconnected by nature
        warnings.simplefilter("ignore", DataWarning)
        frame = Comparisons.from_trl(raw).frame[["a", "b", "outcome", "prompt"]]
    return frame, None, None, None, raw, "trl"


def _build_beans():
    frame = _read_csv("beans", "beans_rankings_long.csv")
    raw = _read_csv("beans", "beans.csv").set_index("farm")
    users = raw[["season", "year", "maxTN", "lon", "lat", "planting_date"]]
    users.index = users.index.astype("int64").rename("user")
    return frame, None, users, None


def _build_football():
    df = _read_csv("football", "football.csv")
    frame = pd.DataFrame({
        "a": df["home"], "b": df["away"],
        "outcome": _recode(df["result"], {1: 1.0, 0: 0.5, -1: 0.0}, "football result"),
        "prompt": df["season"],
    })
    return frame, None, None, None


# --------------------------------------------------------------------------------------------
# published references (see the Dataset docstring for the scale)
# --------------------------------------------------------------------------------------------
_LOGPI = ("log pi of the Bradley-Terry model P(i beats j) = pi_i / (pi_i + pi_j), "
          "relative to reference_option")
_DAVIDSON = ("Davidson (1970): P(i) = pi_i / D, P(tie) = nu sqrt(pi_i pi_j) / D, "
             "D = pi_i + pi_j + nu sqrt(pi_i pi_j); log_worth = log pi relative to reference_option, "
             "log_tie = log nu")

_CEMS_PRINTED = {"London": 1.82280, "Paris": 1.03253, "Milano": 0.44197, "StGallen": 0.59832,
                 "Barcelona": 0.61293, "Stockholm": 0.0}

_REFERENCES: dict[str, dict[str, Any]] = {
    "baseball": {
        "source": "BradleyTerry2 vignette sec. 3.3 (Agresti 2002 p. 438): BTm(cbind(home.wins, away.wins), "
                  "home.team, away.team, ~ team + at.home, id = 'team'), ML",
        "scale": _LOGPI + "; home_advantage adds to the logit of the home (a) team winning",
        "reference_option": "Baltimore",
        "log_worth": {"Baltimore": 0.0, "Boston": 1.1438, "Cleveland": 0.7047, "Detroit": 1.4754,
                      "Milwaukee": 1.6196, "New York": 1.2813, "Toronto": 1.3271},
        "home_advantage": 0.3023,
        "home_advantage_se": 0.1309,
        "deviance": 38.643,
        "log_worth_no_home": {"Baltimore": 0.0, "Boston": 1.1077, "Cleveland": 0.6839, "Detroit": 1.4364,
                              "Milwaukee": 1.5814, "New York": 1.2476, "Toronto": 1.2945},
        "deviance_no_home": 44.053,
    },
    "citations": {
        "source": "BradleyTerry2 vignette sec. 2.1-2.2 (Stigler 1994; Agresti 2002 p. 448): "
                  "BTm(cbind(win1, win2), journal1, journal2, ~ journal, id = 'journal'), ML",
        "scale": _LOGPI,
        "reference_option": "Biometrika",
        "log_worth": {"Biometrika": 0.0, "Comm Statist": -2.9491, "JASA": -0.4796, "JRSS-B": 0.2690},
        "se": {"Comm Statist": 0.10255, "JASA": 0.06059, "JRSS-B": 0.07083},
        "deviance": 4.293,
        "log_worth_bias_reduced": {"Biometrika": 0.0, "Comm Statist": -2.9444, "JASA": -0.4791, "JRSS-B": 0.2685},
    },
    "pudding": {
        "source": "PlackettLuce vignette sec. 2.1.1, reproducing Davidson (1970) JASA 65: "
                  "PlackettLuce(R, weights = w, npseudo = 0); printed log-worths and tie parameter "
                  "are already log pi and nu (checked by benchmarks/reference_mle.py)",
        "scale": _DAVIDSON,
        "reference_option": 1,
        "log_worth": {1: 0.0, 2: 0.2202, 3: 0.1530, 4: 0.1753, 5: 0.1339, 6: 0.3771},
        "log_tie": -0.2919,
        "tie": 0.7468147,
        "worth": {1: 0.1388005, 2: 0.1729985, 3: 0.1617420, 4: 0.1653930, 5: 0.1586805, 6: 0.2023855},
        "log_likelihood": -809.7095,
        "deviance": 1619.4,
    },
    "cems": {
        "source": "psychotools btmodel(CEMSChoice$preference) (type 'loglin', ref Stockholm); the printed "
                  "item parameters are log pi and '(undecided)' is log nu of the Davidson model "
                  "(checked by benchmarks/reference_mle.py: Davidson MLE equal to 5 decimals, logLik -3964.378)",
        "scale": _DAVIDSON,
        "reference_option": "Stockholm",
        "log_worth": dict(_CEMS_PRINTED),
        "log_tie": -1.31718,
        "se": {"London": 0.08314, "Paris": 0.07757, "Milano": 0.07602, "StGallen": 0.07515,
               "Barcelona": 0.07517, "log_tie": 0.04851},
        "log_likelihood": -3964.0,
        "published": {"London": 1.82280, "Paris": 1.03253, "Milano": 0.44197, "StGallen": 0.59832,
                      "Barcelona": 0.61293, "(undecided)": -1.31718,
                      "note": "as printed by psychotools; identical to log pi and log nu of the Davidson model"},
        "log_worth_ties_as_half": {"Stockholm": 0.0, "Barcelona": 0.5379056, "London": 1.5974797,
                                   "Milano": 0.3877671, "Paris": 0.9064453, "StGallen": 0.5250666},
        "log_worth_ties_as_half_source": "BradleyTerry2 CEMS 'Table 3' model BTm(cbind(win1.adj, "
                                         "win2.adj), school1, school2, ~ .., refcat = 'Stockholm'): a tie "
                                         "counts as half a win for each school (binomial likelihood with "
                                         "fractional outcomes), log pi scale",
    },
    "topmodel2007": {
        "source": "psychotools btmodel(Topmodel2007$preference, ref = 'Barbara'), pooled over subjects, ML "
                  "(no ties: printed values are log pi)",
        "scale": _LOGPI,
        "reference_option": "Barbara",
        "log_worth": {"Barbara": 0.0, "Anni": -0.43029, "Hana": 0.04032, "Fiona": -0.15195,
                      "Mandy": -0.78635, "Anja": -0.67916},
        "se": {"Anni": 0.08534, "Hana": 0.08563, "Fiona": 0.08515, "Mandy": 0.08707, "Anja": 0.08637},
        "worth": {"Barbara": 0.2216, "Anni": 0.1441, "Hana": 0.2307, "Fiona": 0.1903, "Mandy": 0.1009,
                  "Anja": 0.1124},
        "log_likelihood": -1912.0,
        "tree_source": "bttree(preference ~ ., data = Topmodel2007, minsize = 5, ref = 'Barbara'): splits "
                       "age <= 52 / > 52; within age <= 52, q2 yes / no; within q2 no, gender male / female",
        "tree_worths": {
            "node3 (age<=52, q2 yes, n=35)": {"Barbara": 0.1889, "Anni": 0.1699, "Hana": 0.3851, "Fiona": 0.1142,
                                              "Mandy": 0.0923, "Anja": 0.0496},
            "node5 (age<=52, q2 no, male, n=71)": {"Barbara": 0.1746, "Anni": 0.1230, "Hana": 0.2625,
                                                   "Fiona": 0.2254, "Mandy": 0.1019, "Anja": 0.1126},
            "node6 (age<=52, q2 no, female, n=56)": {"Barbara": 0.2659, "Anni": 0.2128, "Hana": 0.1609,
                                                     "Fiona": 0.1945, "Mandy": 0.0627, "Anja": 0.1031},
            "node7 (age>52, n=30)": {"Barbara": 0.2585, "Anni": 0.0557, "Hana": 0.1531, "Fiona": 0.1605,
                                     "Mandy": 0.1643, "Anja": 0.2079},
        },
        "tree_negloglik": 1828.633,
    },
    "flatlizards": {
        "source": "BradleyTerry2 vignette sec. 3.1-3.2: BTm(1, winner, loser, ~ SVL[..] + (1|..)), PQL",
        "scale": "ability log pi_i = beta * SVL_i + u_i, u_i ~ N(0, random_effect_sd^2); "
                 "P(i beats j) = logistic(log pi_i - log pi_j)",
        "features": {"SVL": 0.2051},
        "features_se": {"SVL": 0.1158},
        "random_effect_sd": 1.126,
        "random_effect_sd_se": 0.261,
        "method": "PQL",
    },
    "football": {},
    "hh_rlhf_harmless": {},
    "beans": {
        "source": "PlackettLuce vignette sec. 3 and ?beans (Turner, van Etten, Firth, Kosmidis), reproduced with "
                  "PlackettLuce 0.4.5: PlackettLuce(R, npseudo = 0), ML; pltree(G ~ ., data = beans[c('season', "
                  "'year', 'maxTN')], minsize = 0.05 n, maxdepth = 3)",
        "scale": "log worth of the Plackett-Luce model P(i first among S) = pi_i / sum_{j in S} pi_j (for two "
                 "items the Bradley-Terry log pi), relative to reference_option",
        "reference_option": "ALS 0532-6",
        "log_worth": {"ALS 0532-6": 0.0, "BRT 103-182": 0.1733, "INTA Centro Sur": 0.2473, "INTA Ferroso": -0.0084,
                      "INTA Matagalpa": 0.1113, "INTA Precoz": -0.0661, "INTA Rojo": 0.1346, "INTA Sequia": 0.4914,
                      "Local": 0.4935, "PM2 Don Rey": -0.0120, "SJC 730-79": -0.0056},
        "log_likelihood": -3192.583,
        "df": 10,
        "log_worth_npseudo": {"ALS 0532-6": 0.0, "BRT 103-182": 0.173022, "INTA Centro Sur": 0.246936,
                              "INTA Ferroso": -0.008311, "INTA Matagalpa": 0.111173, "INTA Precoz": -0.065939,
                              "INTA Rojo": 0.134390, "INTA Sequia": 0.490687, "Local": 0.493152,
                              "PM2 Don Rey": -0.011959, "SJC 730-79": -0.005562},
        "se_npseudo": {"BRT 103-182": 0.108577, "INTA Centro Sur": 0.107175, "INTA Ferroso": 0.110709,
                       "INTA Matagalpa": 0.108054, "INTA Precoz": 0.109348, "INTA Rojo": 0.108166,
                       "INTA Sequia": 0.107178, "Local": 0.082719, "PM2 Don Rey": 0.108919, "SJC 730-79": 0.106868},
        "tree": "node 2: maxTN <= 18.7175 (node 3: season Pr - 16, n = 47; node 4: the other seasons, n = 489); "
                "node 5: maxTN > 18.7175 (n = 306)",
        "tree_log_worth": {
            "node3 (maxTN<=18.7175, season Pr - 16, n=47)": {
                "ALS 0532-6": 0.0, "BRT 103-182": -1.1402562056, "INTA Centro Sur": -0.7356643306,
                "INTA Ferroso": -1.1986768665, "INTA Matagalpa": -0.8016667298, "INTA Precoz": 0.1226994334,
                "INTA Rojo": 0.6378654995, "INTA Sequia": 0.0003316762, "Local": 0.4788504910,
                "PM2 Don Rey": -1.0636844356, "SJC 730-79": -1.2405493189},
            "node4 (maxTN<=18.7175, other seasons, n=489)": {
                "ALS 0532-6": 0.0, "BRT 103-182": 0.12989016, "INTA Centro Sur": 0.21133555,
                "INTA Ferroso": 0.08487525, "INTA Matagalpa": 0.14435409, "INTA Precoz": -0.16024617,
                "INTA Rojo": 0.11497038, "INTA Sequia": 0.50611822, "Local": 0.63702034,
                "PM2 Don Rey": -0.11244954, "SJC 730-79": 0.15430957},
            "node5 (maxTN>18.7175, n=306)": {
                "ALS 0532-6": 0.0, "BRT 103-182": 0.38374777, "INTA Centro Sur": 0.43829266,
                "INTA Ferroso": 0.01041950, "INTA Matagalpa": 0.16107300, "INTA Precoz": 0.02310481,
                "INTA Rojo": 0.10892957, "INTA Sequia": 0.49692201, "Local": 0.26238130,
                "PM2 Don Rey": 0.26594548, "SJC 730-79": -0.07345855},
        },
        "tree_worths": {
            "node3 (maxTN<=18.7175, season Pr - 16, n=47)": {
                "ALS 0532-6": 0.1134, "BRT 103-182": 0.0362, "INTA Centro Sur": 0.0543, "INTA Ferroso": 0.0342,
                "INTA Matagalpa": 0.0509, "INTA Precoz": 0.1282, "INTA Rojo": 0.2145, "INTA Sequia": 0.1134,
                "Local": 0.1830, "PM2 Don Rey": 0.0391, "SJC 730-79": 0.0328},
            "node4 (maxTN<=18.7175, other seasons, n=489)": {
                "ALS 0532-6": 0.0757, "BRT 103-182": 0.0863, "INTA Centro Sur": 0.0936, "INTA Ferroso": 0.0825,
                "INTA Matagalpa": 0.0875, "INTA Precoz": 0.0645, "INTA Rojo": 0.0850, "INTA Sequia": 0.1257,
                "Local": 0.1432, "PM2 Don Rey": 0.0677, "SJC 730-79": 0.0884},
            "node5 (maxTN>18.7175, n=306)": {
                "ALS 0532-6": 0.0740, "BRT 103-182": 0.1086, "INTA Centro Sur": 0.1147, "INTA Ferroso": 0.0747,
                "INTA Matagalpa": 0.0869, "INTA Precoz": 0.0757, "INTA Rojo": 0.0825, "INTA Sequia": 0.1216,
                "Local": 0.0962, "PM2 Don Rey": 0.0965, "SJC 730-79": 0.0687},
        },
        "tree_negloglik": 3152.027,
    },
}

#: ranking datasets: the arguments of Rankings.from_wide that read their frame
_RANKING_ARGS: dict[str, dict[str, Any]] = {
    "beans": {"positions": ("rank1", "rank2", "rank3"), "user": "farm", "keep": ("type",)},
}


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
_REGISTRY: dict[str, tuple[str, Any]] = {
    "baseball": ("1987 American League East baseball: home/away games of 7 teams (home advantage)",
                 _build_baseball),
    "citations": ("Cross-citations among 4 statistics journals (Stigler 1994)", _build_citations),
    "pudding": ("Davidson (1970) chocolate-pudding paired comparisons of 6 brands, with ties",
                _build_pudding),
    "cems": ("303 students' preferences between 6 CEMS management schools, with ties and student/school "
             "covariates", _build_cems),
    "topmodel2007": ("192 respondents' attractiveness judgements of 6 Germany's Next Topmodel 2007 finalists, "
                     "with respondent covariates", _build_topmodel2007),
    "flatlizards": ("Contests between 77 male Augrabies flat lizards, with lizard covariates",
                    _build_flatlizards),
    "football": ("English Premier League 2008-9 to 2012-13 (home/away, draws, 5 seasons)", _build_football),
    "hh_rlhf_harmless": ("Anthropic HH-RLHF harmless-base test split: 2312 human choices between two "
                         "assistant responses (TRL, implicit prompt)", _build_hh_rlhf_harmless),
    "beans": ("842 Nicaraguan farmers' rankings of 3 of 10 bean varieties plus 3 comparisons each with their "
              "local variety (3368 rankings), with farm covariates", _build_beans),
}


def load_dataset(name: str) -> Dataset:
    """Load a bundled dataset by name (see :func:`list_datasets`).

    Raises :class:`bayespref.errors.DataError` for an unknown name.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise DataError(f"unknown dataset {name!r}; available datasets: {', '.join(sorted(_REGISTRY))}")
    description, builder = _REGISTRY[name]
    frame, option_table, user_table, default_features, *read = builder()
    source, reader = read or (None, None)
    readme = _read_readme(name)
    citation, licence = _readme_parts(readme)
    return Dataset(
        name=name,
        description=description,
        frame=frame.reset_index(drop=True),
        option_table=option_table,
        user_table=user_table,
        reference=_freeze(_REFERENCES[name]),
        citation=citation,
        licence=licence,
        readme=readme,
        default_features=default_features,
        source=source,
        reader=reader,
        kind="rankings" if name in _RANKING_ARGS else "comparisons",
        ranking_args=_freeze(_RANKING_ARGS[name]) if name in _RANKING_ARGS else None,
    )


def _covariate_summary(ds: Dataset) -> str:
    parts = []
    if ds.user_table is not None:
        parts.append(f"user({ds.user_table.shape[1]}): {', '.join(map(str, ds.user_table.columns))}")
    if ds.option_table is not None:
        parts.append(f"option({ds.option_table.shape[1]}): {', '.join(map(str, ds.option_table.columns))}")
    return "; ".join(parts)


def list_datasets() -> pd.DataFrame:
    """One row per bundled dataset.

    Columns: ``name``, ``description``, ``n_comparisons`` (rows of the long frame; for ranking
    data the pairs the rankings imply), ``n_options``, ``n_users`` (distinct annotators; ``<NA>``
    when the data have no user ids), ``n_prompts`` (``<NA>`` without a prompt column), ``ties``
    (any outcome 0.5, any tied items), ``covariates`` (e.g. ``"user(5): gender, age, q1, q2,
    q3"``; empty when none) and ``n_rankings`` (rankings of ranking data; ``<NA>`` for pairwise
    data).
    """
    rows = []
    for name in sorted(_REGISTRY):
        ds = load_dataset(name)
        rows.append({
            "name": name,
            "description": ds.description,
            "n_comparisons": ds.n_comparisons,
            "n_options": ds.n_options,
            "n_users": ds.n_users if ds.n_users is not None else pd.NA,
            "n_prompts": int(ds.frame["prompt"].nunique()) if "prompt" in ds.frame else pd.NA,
            "ties": ds.has_ties,
            "covariates": _covariate_summary(ds),
            "n_rankings": ds.n_rankings if ds.n_rankings is not None else pd.NA,
        })
    out = pd.DataFrame(rows)
    for col in ("n_users", "n_prompts", "n_rankings"):
        out[col] = out[col].astype("Int64")
    return out
