"""Pairwise comparison data: one validated, encoded, immutable object.

:class:`Comparisons` is the single input of every model (see ``docs/data-contract.md``). It is built
once from a long pandas frame (one row per judgement) or through an adapter (counts, wide
psychometric tables, TRL, Arena and k-wise ratings), validated here and nowhere else, and encoded into
integer indices and float arrays. Every problem raises :class:`~bayespref.errors.DataError` naming
the column, the offending rows or ids, and the fix; nothing is dropped or coerced silently.

Conventions the models rely on
------------------------------
* ``a``, ``b``, ``user``, ``prompt``, ``y`` are ``int32`` arrays of length N; ``outcome`` is
  ``float64`` (1 = ``a`` preferred, 0 = ``b`` preferred, 0.5 = tie); ``y`` codes 1 / 0 / 2 (tie).
* ``xa``, ``xb`` are ``float64`` (N, D) and ``covariates`` is ``float64`` (U, P); D and P may be 0.
* ``comparison_covariates`` is ``float64`` (N, P): the covariate row of each comparison's user,
  which also covers users that are new in data encoded with :meth:`Comparisons.encode`.
* In encoded data (:meth:`Comparisons.encode`) an unknown option, user or prompt has index -1, and
  when no outcome was given ``outcome`` is NaN and ``y`` is -1. Nowhere else do these occur.
* Arrays are read-only; subsets keep the ``options``, ``users`` and ``prompts`` of their parent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bayespref.data.readers import READERS, arena_long, as_frame, counts_long, kwise_long, trl_long, wide_long
from bayespref.data.readers.arena import KEEP as ARENA_KEEP
from bayespref.data.readers.trl import ASSISTANT, HUMAN, SCORE_COLUMNS
from bayespref.data.text import TextFeatures, fit_options, transform_options
from bayespref.data.validation import (
    _apply_design,
    _check_frame,
    _check_ids,
    _check_table,
    _components,
    _covariate_columns,
    _features_from_columns,
    _fmt,
    _group_folds,
    _group_split,
    _has_column,
    _n_test,
    _names_argument,
    _parse_outcome,
    _positions,
    _py,
    _require_columns,
    _rows,
    _sorted_index,
    _suggest,
    _table_lookup,
    _user_covariates,
    _warn_if_disconnected,
)
from bayespref.errors import DataError

__all__ = ["Comparisons"]

# ---------------------------------------------------------------------------------------------
# the object
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """How a Comparisons was read, so that :meth:`Comparisons.encode` reads new data the same way."""

    roles: dict                       # role -> column of the long frame (a, b, outcome, user, prompt)
    suffixes: tuple = ("_a", "_b")    # suffixes of per-comparison feature columns
    feature_mode: str | None = None   # "columns" | "table" | None
    feature_columns: tuple = ()       # feature names (columns mode) or table columns (table mode)
    covariate_mode: str | None = None  # "columns" | "table" | None
    covariate_columns: tuple = ()     # raw covariate columns
    design: tuple = ()                # ((column, levels or None), ...)
    to_long: Callable | None = None   # adapter re-applied by encode
    text: TextFeatures | None = None  # fitted text features (text_features=), the last feature columns


@dataclass(frozen=True, eq=False, repr=False)
class Comparisons:
    """Validated, encoded paired-comparison data (see ``docs/data-contract.md``).

    Build it with :meth:`from_frame` or an adapter (:meth:`from_counts`, :meth:`from_wide`,
    :meth:`from_trl`, :meth:`from_arena`, :meth:`from_kwise`), never with the constructor. Arrays are
    read-only.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": ["x", "y", "x"], "b": ["y", "z", "z"], "outcome": [1, 0, "tie"]})
    >>> data = Comparisons.from_frame(df)
    >>> list(data.options), data.a.tolist(), data.b.tolist(), data.y.tolist()
    (['x', 'y', 'z'], [0, 1, 0], [1, 2, 2], [1, 0, 2])
    """

    frame: pd.DataFrame
    a: np.ndarray
    b: np.ndarray
    user: np.ndarray
    prompt: np.ndarray | None
    outcome: np.ndarray
    y: np.ndarray
    xa: np.ndarray
    xb: np.ndarray
    covariates: np.ndarray
    comparison_covariates: np.ndarray
    options: pd.Index
    users: pd.Index
    prompts: pd.Index | None
    feature_names: tuple[str, ...]
    covariate_names: tuple[str, ...]
    comparison_ids: pd.Index
    option_features: pd.DataFrame | None
    user_table: pd.DataFrame | None
    has_ties: bool
    _spec: _Spec = field(repr=False)

    #: ArviZ dim of the observations (``Rankings`` has "ranking")
    obs_dim = "comparison"

    def __post_init__(self):
        for v in vars(self).values():
            if isinstance(v, np.ndarray):
                v.flags.writeable = False

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def n_comparisons(self) -> int:
        return int(self.a.shape[0])

    @property
    def n_obs(self) -> int:
        """Number of observations (comparisons): the length of the ``comparison`` dim."""
        return self.n_comparisons

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_prompts(self) -> int:
        return 0 if self.prompts is None else len(self.prompts)

    @property
    def n_features(self) -> int:
        return int(self.xa.shape[1])

    @property
    def n_covariates(self) -> int:
        return int(self.covariates.shape[1])

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, df: pd.DataFrame, a: Hashable = "a", b: Hashable = "b",
                   outcome: Hashable = "outcome", user: Hashable | None = None,
                   prompt: Hashable | None = None, features: list | pd.DataFrame | None = None,
                   user_covariates: list | pd.DataFrame | None = None, *,
                   check_connected: bool = True, text_features: TextFeatures | None = None) -> Comparisons:
        """Validate and encode a long frame (one row per judgement).

        Parameters
        ----------
        df : DataFrame
            One row per judgement; its row labels become ``comparison_ids`` (must be unique).
        a, b : column names
            Ids of the first (shown first) and second option.
        outcome : column name
            1 = ``a`` preferred, 0 = ``b`` preferred, 0.5 or ``"tie"`` = no preference; booleans
            (True = ``a``) are accepted. Anything else, NaN included, is a ``DataError``.
        user, prompt : column names, optional
            Annotator and prompt ids. Without ``user`` every row belongs to the user ``"all"``.
        features : list of names or DataFrame, optional
            Names ``f`` with ``f_a`` / ``f_b`` columns in ``df``, or a numeric table indexed by
            option id holding exactly the compared options.
        user_covariates : list of names or DataFrame, optional
            Columns of ``df`` constant within each user, or a table indexed by user id holding
            exactly the users of the data. Numeric columns enter the design as given; bool, string,
            object and category columns are one-hot coded with the first level dropped
            (``"col[level]"``; levels sorted, or in declared order for a category dtype).
        check_connected : bool
            Warn (``DataWarning``) when the comparison graph has several components.
        text_features : TextFeatures, optional
            Compute option features from the option labels, which must be texts (responses):
            :class:`~bayespref.data.text.TextFeatures`, fitted here on the distinct option texts
            (or applied as it is when already fitted) and appended after ``features``. Stored, so
            that :meth:`encode` computes them for new texts (see ``docs/data-contract.md``).

        Examples
        --------
        >>> df = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "outcome": [1, 0],
        ...                    "len_a": [3.0, 5.0], "len_b": [5.0, 2.0]})
        >>> Comparisons.from_frame(df, features=["len"]).xa.tolist()
        [[3.0], [5.0]]
        """
        roles = {"a": a, "b": b, "outcome": outcome, "user": user, "prompt": prompt}
        return cls._from_long(df, roles, features=features, user_covariates=user_covariates,
                              check_connected=check_connected, text_features=text_features)

    @classmethod
    def _from_long(cls, df, roles, *, features=None, user_covariates=None, suffixes=("_a", "_b"),
                   to_long=None, check_connected=True, where="Comparisons.from_frame", text_features=None):
        roles = dict(roles)
        keep = tuple(roles.pop("keep", None) or ())  # reader columns copied into `frame`
        _check_frame(df, where)
        if not isinstance(check_connected, (bool, np.bool_)):
            raise DataError(f"{where}: check_connected={check_connected!r} must be True or False.")
        if text_features is not None and not isinstance(text_features, TextFeatures):
            raise DataError(f"{where}: text_features must be a bayespref.TextFeatures (or None); got "
                            f"{type(text_features).__name__}.")
        _require_columns(df, roles, where, required=("a", "b", "outcome"))
        labels = _id_columns(df, roles, where)
        outcome = _parse_outcome(df[roles["outcome"]], roles["outcome"], where)
        a_lab, b_lab = labels["a"], labels["b"]
        options = _sorted_index(pd.concat([a_lab, b_lab], ignore_index=True))
        if len(options) < 2:
            raise DataError(f"{where}: only one distinct option ({_py(options[0])!r}) appears in columns "
                            f"{roles['a']!r}/{roles['b']!r}; comparisons need at least two options.")
        a_idx, b_idx = options.get_indexer(a_lab), options.get_indexer(b_lab)
        same = a_idx == b_idx
        if same.any():
            raise DataError(f"{where}: {_rows(df.index, same)} compare an option with itself "
                            f"(a == b, e.g. {_py(a_lab[same].iloc[0])!r}); remove them, a comparison "
                            "needs two different options.")
        if roles["user"] is not None:
            users = _sorted_index(labels["user"])
            user_idx = users.get_indexer(labels["user"])
        else:
            users, user_idx = pd.Index(["all"]), np.zeros(len(df), dtype=np.int64)
        prompts = prompt_idx = None
        if roles["prompt"] is not None:
            prompts = _sorted_index(labels["prompt"])
            prompt_idx = prompts.get_indexer(labels["prompt"]).astype(np.int32)

        option_features, feature_cols = None, {}
        spec = {"roles": dict(roles), "suffixes": tuple(suffixes), "to_long": to_long}
        if features is None:
            xa = xb = np.zeros((len(df), 0))
            feature_names = ()
        elif isinstance(features, pd.DataFrame):
            option_features = _check_table(features, options, what="option feature", kind="option",
                                           where=where, numeric=True).astype(np.float64)
            xa, xb = _table_lookup(option_features, a_lab), _table_lookup(option_features, b_lab)
            feature_names = tuple(str(c) for c in features.columns)
            spec.update(feature_mode="table", feature_columns=tuple(features.columns))
        elif isinstance(features, (list, tuple, str)):
            names = (features,) if isinstance(features, str) else tuple(features)
            xa, xb = _features_from_columns(df, names, suffixes, where)
            feature_names = tuple(str(n) for n in names)
            feature_cols = _feature_frame_columns(feature_names, xa, xb)
            spec.update(feature_mode="columns", feature_columns=names)
        else:
            raise DataError(f"{where}: features must be a list of names (with '<name>_a'/'<name>_b' "
                            "columns) or a DataFrame indexed by option id; got "
                            f"{type(features).__name__}.")
        if text_features is not None:
            xa, xb, feature_names, option_features = _add_text_features(
                text_features, df, a_lab, b_lab, options, xa, xb, feature_names, option_features, spec, where)
            if spec.get("feature_mode") == "columns":
                feature_cols = _feature_frame_columns(feature_names, xa, xb)

        user_table, covariates, covariate_names, cov_spec = _user_covariates(
            user_covariates, df, user_idx, users, where, labels=labels.get("user"), column=roles["user"])
        spec.update(cov_spec)

        frame = _frame(df.index, labels, outcome, feature_cols, _kept(df, keep), where)
        out = cls(frame=frame, a=a_idx.astype(np.int32), b=b_idx.astype(np.int32),
                  user=user_idx.astype(np.int32), prompt=prompt_idx, outcome=outcome,
                  y=_y(outcome), xa=xa, xb=xb, covariates=covariates,
                  comparison_covariates=covariates[user_idx], options=options, users=users,
                  prompts=prompts, feature_names=feature_names, covariate_names=covariate_names,
                  comparison_ids=df.index, option_features=option_features, user_table=user_table,
                  has_ties=bool(np.any(outcome == 0.5)), _spec=_Spec(**spec))
        if check_connected:
            _warn_if_disconnected(out.a, out.b, options)
        return out

    @classmethod
    def from_counts(cls, df: pd.DataFrame, a: Hashable = "a", b: Hashable = "b",
                    wins_a: Hashable = "wins_a", wins_b: Hashable = "wins_b",
                    ties: Hashable | None = None, **from_frame_kwargs) -> Comparisons:
        """Expand a count table (wins per ordered pair, optional ties) into one row per judgement.

        Rows are ordered by source row, then ``a`` wins, ``b`` wins, ties; comparison ids are
        ``"<source row label>:<k>"`` with ``k`` counting the judgements of that source row. Other
        columns (user, prompt, ``f_a``/``f_b``) are repeated; ``from_frame_kwargs`` go to
        :meth:`from_frame` (``user=``, ``prompt=``, ``features=``, ``user_covariates=``).

        Examples
        --------
        >>> counts = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "wins_a": [2, 0], "wins_b": [1, 1]})
        >>> data = Comparisons.from_counts(counts)
        >>> data.outcome.tolist(), list(data.comparison_ids)
        ([1.0, 1.0, 0.0, 0.0], ['0:0', '0:1', '0:2', '1:0'])
        """
        kw = {"user": from_frame_kwargs.pop("user", None), "prompt": from_frame_kwargs.pop("prompt", None)}
        to_long = functools.partial(counts_long, a=a, b=b, wins_a=wins_a, wins_b=wins_b, ties=ties, **kw)
        long, roles = to_long(df)
        return cls._from_long(long, roles, to_long=to_long, where="Comparisons.from_counts",
                              **from_frame_kwargs)

    @classmethod
    def from_wide(cls, df: pd.DataFrame, subject: Hashable, pairs: list | None = None, sep: str = ":",
                  coding: dict | None = None, covariates: list | None = None,
                  missing: str = "error") -> Comparisons:
        """Read a psychometric wide table: one row per subject, one column ``"A:B"`` per pair.

        Cell values are mapped by ``coding`` (default ``{1: 1.0, -1: 0.0, 0: 0.5}``: 1 = A
        preferred, -1 = B preferred, 0 = tie). NaN cells are missing comparisons: with
        ``missing="error"`` (default) they raise, with ``missing="drop"`` they are skipped.
        ``covariates`` are subject-level columns. Subjects become users; comparison ids are
        ``"<subject>|<pair column>"``.

        Examples
        --------
        >>> wide = pd.DataFrame({"id": [1, 2], "x:y": [1, -1], "y:z": [0, 1]})
        >>> data = Comparisons.from_wide(wide, subject="id")
        >>> data.outcome.tolist(), list(data.comparison_ids)
        ([1.0, 0.5, 0.0, 1.0], ['1|x:y', '1|y:z', '2|x:y', '2|y:z'])
        """
        if coding is not None and not isinstance(coding, Mapping):
            raise DataError(f"Comparisons.from_wide: coding must be a dict from cell values to outcomes (e.g. "
                            f"{{1: 1.0, -1: 0.0, 0: 0.5}}); got {type(coding).__name__} {coding!r}.")
        coding = {1: 1.0, -1: 0.0, 0: 0.5} if coding is None else dict(coding)
        to_long = functools.partial(wide_long, subject=subject, pairs=pairs, sep=sep, coding=coding,
                                    covariates=covariates, missing=missing)
        long, roles = to_long(df)
        cov = None if not covariates else ([covariates] if isinstance(covariates, str) else list(covariates))
        return cls._from_long(long, roles, user_covariates=cov, to_long=to_long,
                              where="Comparisons.from_wide")

    @classmethod
    def from_trl(cls, source: Any, prompt: Hashable | None = "prompt", chosen: Hashable = "chosen",
                 rejected: Hashable = "rejected", user: Hashable | None = None,
                 features: list | None = None, *, implicit: bool | None = None, scores: list | None = None,
                 user_covariates: list | pd.DataFrame | None = None, human_marker: str = HUMAN,
                 assistant_marker: str = ASSISTANT, text_features: TextFeatures | None = None) -> Comparisons:
        """Read TRL preference data: ``a`` = chosen response, ``b`` = rejected response, outcome 1.

        Standard (strings) and conversational (lists of ``{"role", "content"}`` messages) columns are
        told apart per column; the rules, the implicit-prompt split and how message lists become
        text labels are in :mod:`bayespref.data.readers.trl`.

        Parameters
        ----------
        source : DataFrame, path or ``datasets.Dataset``
            A frame, a ``.jsonl`` / ``.jsonl.gz`` / ``.json`` / ``.parquet`` file, or any object
            with ``.to_pandas()`` (see :func:`bayespref.data.readers.as_frame`).
        prompt : column name or None
            The explicit prompt. Left at ``"prompt"`` and absent from the data, the prompt is
            *implicit*: split exactly from the two transcripts (HH-RLHF style). ``None``: no prompt,
            the texts are compared as they are.
        chosen, rejected : column names
            The preferred and the other response (whole transcripts when the prompt is implicit).
        user : column name, optional
            Annotator ids.
        features : list of names, optional
            Feature ``f`` is read from ``f_chosen`` / ``f_rejected`` columns.
        implicit : bool, optional
            Force (True) or forbid (False) the implicit-prompt split; default: as above.
        scores : list of names, optional
            Numeric columns kept in :attr:`frame` (NaN is a ``DataError``); default: those of
            ``margin``, ``score_chosen``, ``score_rejected`` that are present.
        user_covariates : list of names or DataFrame, optional
            As in :meth:`from_frame` (a table indexed by user id, or columns constant within users).
        human_marker, assistant_marker : str
            Turn markers of text transcripts (implicit prompt only).
        text_features : TextFeatures, optional
            Option features computed from the response texts (length, Markdown structure, refusal
            phrases, an encoder's embeddings, ...; ``embedding_columns`` are read from
            ``<name>_chosen`` / ``<name>_rejected``), as in :meth:`from_frame`.

        Every outcome is 1, so a position (order) effect is not identified from such data. Response
        texts are usually unique, so the comparison graph is checked for connectivity only when no
        features are given.

        Examples
        --------
        >>> trl = pd.DataFrame({"prompt": ["p", "p"], "chosen": ["r1", "r2"], "rejected": ["r2", "r3"]})
        >>> Comparisons.from_trl(trl).a.tolist()
        [0, 1]
        >>> hh = pd.DataFrame({"chosen": ["\\n\\nHuman: Hi\\n\\nAssistant: Hello!"],
        ...                    "rejected": ["\\n\\nHuman: Hi\\n\\nAssistant: Go away."]})
        >>> data = Comparisons.from_trl(hh)
        >>> data.frame.loc[0, ["prompt", "a", "b"]].tolist()
        ['\\n\\nHuman: Hi\\n\\nAssistant:', ' Hello!', ' Go away.']
        """
        where = "Comparisons.from_trl"
        df = as_frame(source, where)
        if implicit is not None and not isinstance(implicit, (bool, np.bool_)):
            raise DataError(f"{where}: implicit={implicit!r} must be True, False or None (decide from the columns).")
        if implicit is None:
            implicit = _is_name(prompt, "prompt") and "prompt" not in df.columns
        elif implicit and not (prompt is None or _is_name(prompt, "prompt")):
            raise DataError(f"{where}: implicit=True splits the prompt from the transcripts, but prompt="
                            f"{prompt!r} names a prompt column; pass one or the other.")
        if scores is None:
            scores = [c for c in SCORE_COLUMNS if c in df.columns]
        scores = _names_argument(scores, "scores", where)
        to_long = functools.partial(trl_long, prompt=None if implicit else prompt, chosen=chosen,
                                    rejected=rejected, user=user, implicit=bool(implicit),
                                    scores=list(scores), human_marker=human_marker,
                                    assistant_marker=assistant_marker)
        long, roles = to_long(df)
        return cls._from_long(long, roles, features=features, user_covariates=user_covariates,
                              suffixes=("_chosen", "_rejected"), to_long=to_long,
                              check_connected=features is None and text_features is None, where=where,
                              text_features=text_features)

    @classmethod
    def from_arena(cls, source: Any, model_a: Hashable = "model_a", model_b: Hashable = "model_b",
                   winner: Hashable = "winner", judge: Hashable | None = "judge",
                   prompt: Hashable | None = "question_id", *, keep: list | None = None,
                   user_covariates: list | pd.DataFrame | None = None) -> Comparisons:
        """Read Chatbot-Arena-style battles; the judge is the user, ``question_id`` the prompt.

        ``winner`` values: ``"model_a"`` → 1, ``"model_b"`` → 0, ``"tie"`` and
        ``"tie (bothbad)"`` → 0.5; anything else is a ``DataError``. The ``winner`` column is kept
        in :attr:`frame`, so the two kinds of tie stay distinguishable.

        Parameters
        ----------
        source : DataFrame, path or ``datasets.Dataset``
            As in :meth:`from_trl`.
        model_a, model_b, winner : column names
        judge, prompt : column names or None
            Left at their defaults (``"judge"``, ``"question_id"``) they are used when the data have
            those columns; ``None`` ignores them; any other name must be a column.
        keep : list of names, optional
            Columns kept in :attr:`frame` besides ``winner``; default: ``turn`` and ``language`` when
            present (``conversation_a`` / ``_b`` are not kept).
        user_covariates : list of names or DataFrame, optional
            Per-judge covariates, as in :meth:`from_frame`: a table indexed by judge id must have a
            row for every judge (a missing judge is a ``DataError`` naming the judges and the rows).

        Examples
        --------
        >>> arena = pd.DataFrame({"model_a": ["m1", "m2"], "model_b": ["m2", "m3"],
        ...                       "winner": ["model_a", "tie (bothbad)"]})
        >>> data = Comparisons.from_arena(arena)
        >>> data.outcome.tolist(), data.frame["winner"].tolist()
        ([1.0, 0.5], ['model_a', 'tie (bothbad)'])
        """
        where = "Comparisons.from_arena"
        df = as_frame(source, where)
        cols = df.columns
        judge = None if _is_name(judge, "judge") and "judge" not in cols else judge
        prompt = None if _is_name(prompt, "question_id") and "question_id" not in cols else prompt
        keep = [c for c in ARENA_KEEP if c in cols] if keep is None else list(_names_argument(keep, "keep", where))
        to_long = functools.partial(arena_long, model_a=model_a, model_b=model_b, winner=winner,
                                    judge=judge, prompt=prompt, keep=keep)
        long, roles = to_long(df)
        return cls._from_long(long, roles, user_covariates=user_covariates, to_long=to_long, where=where)

    @classmethod
    def from_kwise(cls, source: Any, prompt: Hashable = "prompt", response: Hashable = "response",
                   score: Hashable = "score", user: Hashable | None = None, *, pairs: str = "all",
                   ties: str = "tie", singletons: str = "error", features: list | pd.DataFrame | None = None,
                   user_covariates: list | pd.DataFrame | None = None,
                   check_connected: bool = True, text_features: TextFeatures | None = None) -> Comparisons:
        """Read k-wise ratings (one row per scored response) as pairwise comparisons.

        Within each (user, prompt) group the responses are paired (``pairs="all"``: all k(k-1)/2
        pairs; ``"adjacent"``: neighbours in the ranking; ``"best_vs_rest"``: the top response
        against each other one); the higher score wins and equal scores are a tie (0.5), or are left
        out with ``ties="drop"``. ``a`` is the row that comes first in the source. The rules are in
        :mod:`bayespref.data.readers.kwise`.

        The comparisons of a group are dependent (k ratings re-read as pairs): intervals from a
        model that treats them as independent judgements are too narrow. See
        ``docs/data-contract.md``.

        Parameters
        ----------
        source : DataFrame, path or ``datasets.Dataset``
            As in :meth:`from_trl`.
        prompt, response, score, user : column names
            The prompt id, the option id (a response text, a model name), its numeric score
            (booleans count as 0/1; NaN is a ``DataError``), and the rater (optional).
        singletons : ``"error"`` or ``"drop"``
            A group with a single rating gives no comparison: an error unless asked to drop it.
        features : list of names or DataFrame, optional
            Names of per-response numeric columns (read as ``f_a`` / ``f_b``), or a per-option table.
        user_covariates : list of names or DataFrame, optional
            As in :meth:`from_frame`.
        text_features : TextFeatures, optional
            Option features computed from the response texts, as in :meth:`from_frame`
            (``embedding_columns`` name per-response columns).

        Examples
        --------
        >>> ratings = pd.DataFrame({"prompt": ["p", "p", "p"], "response": ["x", "y", "z"],
        ...                         "score": [3, 5, 3]})
        >>> data = Comparisons.from_kwise(ratings)
        >>> data.frame[["a", "b", "outcome"]].values.tolist(), list(data.comparison_ids)
        ([['x', 'y', 0.0], ['x', 'z', 0.5], ['y', 'z', 1.0]], ['0|1', '0|2', '1|2'])
        """
        features = _names_argument(features, "features", "Comparisons.from_kwise", frame_ok=True)
        names = None if features is None or isinstance(features, pd.DataFrame) else list(features)
        embedded = list(text_features.embedding_columns) if isinstance(text_features, TextFeatures) else []
        to_long = functools.partial(kwise_long, prompt=prompt, response=response, score=score, user=user,
                                    pairs=pairs, ties=ties, singletons=singletons,
                                    features=(names or []) + embedded)
        long, roles = to_long(source)
        return cls._from_long(long, roles, features=features if names is None else names,
                              user_covariates=user_covariates, to_long=to_long,
                              check_connected=check_connected, where="Comparisons.from_kwise",
                              text_features=text_features)

    # -- encoding new data ----------------------------------------------------------------------
    def encode(self, df: pd.DataFrame, a: Hashable | None = None, b: Hashable | None = None,
               outcome: Hashable | None = None, user: Hashable | None = None,
               prompt: Hashable | None = None, features: pd.DataFrame | None = None,
               user_covariates: pd.DataFrame | list | None = None) -> Comparisons:
        """Encode a new frame against this object's options, users and prompts.

        By default the frame is read like the training data (same columns; data built by an
        adapter goes through the same adapter). Passing any of ``a``, ``b``, ``outcome``, ``user``,
        ``prompt`` reads it as a long frame with those columns instead. The result has the same
        ``options``/``users``/``prompts``/``covariates`` as ``self``; unknown users and prompts get
        index -1 (population level), unknown options get -1 when their features are available
        (``f_a``/``f_b`` columns, or a per-option table passed as ``features=``, whose rows take
        precedence over the training table). Without an outcome column, ``outcome`` is NaN and ``y``
        is -1. ``comparison_covariates`` holds each comparison's user covariates: passed
        ``user_covariates`` (table or columns) first, then the training values; new users without
        covariates raise.

        Examples
        --------
        >>> train = Comparisons.from_frame(pd.DataFrame(
        ...     {"a": ["x", "y"], "b": ["y", "z"], "outcome": [1, 0], "u": [1, 2]}), user="u")
        >>> new = train.encode(pd.DataFrame({"a": ["x"], "b": ["z"], "u": [3]}))
        >>> new.user.tolist(), new.y.tolist()
        ([-1], [-1])
        """
        where = "Comparisons.encode"
        spec = self._spec
        explicit = {"a": a, "b": b, "outcome": outcome, "user": user, "prompt": prompt}
        keep = ()
        if spec.to_long is not None and all(v is None for v in explicit.values()):
            df, roles = spec.to_long(df, require_outcome=False)
            roles = dict(roles)
            keep = tuple(roles.pop("keep", None) or ())
        else:
            _check_frame(df, where)
            roles = {**spec.roles, **{k: v for k, v in explicit.items() if v is not None}}
        if outcome is None and roles["outcome"] is not None and roles["outcome"] not in df.columns:
            roles["outcome"] = None  # prediction: no outcomes
        if self.prompts is None:
            roles["prompt"] = None
        _check_frame(df, where)
        for role in ("user", "prompt"):
            if roles[role] is not None and not _has_column(df, roles[role]):
                raise DataError(f"{where}: column {roles[role]!r} ({role} ids, as in the training data) "
                                f"is not in the frame.{_suggest(roles[role], df.columns)} Pass {role}= "
                                f"to name it; for population-level predictions add a {role} column "
                                "with ids unseen in training (they get index -1).")
        _require_columns(df, roles, where)
        labels = _id_columns(df, roles, where)
        a_lab, b_lab = labels["a"], labels["b"]
        local = pd.factorize(pd.concat([a_lab, b_lab], ignore_index=True))[0]
        same = local[: len(df)] == local[len(df):]
        if same.any():
            raise DataError(f"{where}: {_rows(df.index, same)} compare an option with itself (a == b).")
        if roles["outcome"] is not None:
            out = _parse_outcome(df[roles["outcome"]], roles["outcome"], where)
        else:
            out = np.full(len(df), np.nan)
        a_idx, b_idx = self.options.get_indexer(a_lab), self.options.get_indexer(b_lab)
        unknown = pd.unique(pd.concat([a_lab[a_idx < 0], b_lab[b_idx < 0]]))
        xa, xb, feature_cols = self._encode_features(df, a_lab, b_lab, features, unknown, where)
        if roles["user"] is not None:
            u_lab = labels["user"]
            user_idx = self.users.get_indexer(u_lab)
        else:
            u_lab, user_idx = pd.Series("all", index=df.index), np.zeros(len(df), dtype=np.int64)
        ccov = self._encode_covariates(df, u_lab, user_covariates, where)
        prompt_idx = (None if self.prompts is None
                      else self.prompts.get_indexer(labels["prompt"]).astype(np.int32))
        frame = _frame(df.index, labels, out, feature_cols, _kept(df, keep), where)
        return replace(self, frame=frame, a=a_idx.astype(np.int32), b=b_idx.astype(np.int32),
                       user=user_idx.astype(np.int32), prompt=prompt_idx, outcome=out, y=_y(out),
                       xa=xa, xb=xb, comparison_covariates=ccov, comparison_ids=df.index,
                       has_ties=bool(np.any(out == 0.5)))

    def _encode_features(self, df, a_lab, b_lab, features, unknown, where):
        if self._spec.text is not None:
            return self._encode_text_features(df, a_lab, b_lab, features, unknown, where)
        spec, n, d = self._spec, len(df), self.n_features
        if features is not None and not isinstance(features, pd.DataFrame):
            raise DataError(f"{where}: features must be a DataFrame indexed by option id, got "
                            f"{type(features).__name__}.")
        if spec.feature_mode is None:
            if len(unknown):
                raise DataError(f"{where}: unknown option(s) {_fmt(unknown)}; the training data have "
                                "no option features, so new options cannot be predicted.")
            return np.zeros((n, 0)), np.zeros((n, 0)), {}
        names = spec.feature_columns
        if spec.feature_mode == "columns" and features is None:
            xa, xb = _features_from_columns(df, names, spec.suffixes, where)
            return xa, xb, _feature_frame_columns(self.feature_names, xa, xb)
        base = [] if self.option_features is None else [self.option_features]
        if features is not None:
            cols = list(names) if spec.feature_mode == "table" else list(self.feature_names)
            missing = [c for c in cols if c not in features.columns]
            if missing:
                raise DataError(f"{where}: the option feature table lacks column(s) {_fmt(missing)} "
                                "used in training.")
            table = _check_table(features[cols], pd.Index([]), what="option feature", kind="option",
                                 where=where, numeric=True, allow_extra=True)
            table = table.set_axis(range(len(cols)), axis=1)
            base = [table] + [t.set_axis(range(d), axis=1) for t in base]
        lookup = pd.concat(base) if base else pd.DataFrame()
        lookup = lookup[~lookup.index.duplicated(keep="first")]
        absent = pd.unique(pd.concat([a_lab, b_lab])[~pd.concat([a_lab, b_lab]).isin(lookup.index)])
        if len(absent):
            raise DataError(f"{where}: no features for option(s) {_fmt(absent)} (unknown to the training "
                            "data); pass features=<table indexed by option id> with rows for them.")
        return _table_lookup(lookup, a_lab), _table_lookup(lookup, b_lab), {}

    def _encode_text_features(self, df, a_lab, b_lab, features, unknown, where):
        """Features of data with text features: the other features as without them, then the text
        features (training values for known options, computed from the texts for new ones; rows of a
        passed ``features`` table with every text column take precedence)."""
        spec, text = self._spec, self._spec.text
        names = list(text.feature_names)
        d0 = self.n_features - len(names)
        if d0:
            cols = spec.feature_columns if spec.feature_mode == "columns" else spec.feature_columns[:d0]
            table = None if self.option_features is None else self.option_features.iloc[:, :d0]
            base = replace(self, xa=self.xa[:, :d0], xb=self.xb[:, :d0], feature_names=self.feature_names[:d0],
                           option_features=table, _spec=replace(spec, text=None, feature_columns=cols))
            xa0, xb0, _ = base._encode_features(df, a_lab, b_lab, features, unknown, where)
        else:
            xa0 = xb0 = np.zeros((len(df), 0))
        lookup = self._text_table()
        if isinstance(features, pd.DataFrame) and all(c in features.columns for c in names):
            given = _check_table(features[names], pd.Index([]), what="option feature", kind="option",
                                 where=where, numeric=True, allow_extra=True)
            lookup = pd.concat([given.astype(np.float64), lookup])
            lookup = lookup[~lookup.index.duplicated(keep="first")]
        both = pd.concat([a_lab, b_lab], ignore_index=True)
        absent = pd.Index(pd.unique(both[~both.isin(lookup.index)]))
        if len(absent):
            lookup = pd.concat([lookup, transform_options(text, df, a_lab, b_lab, absent, spec.suffixes, where)])
        xa = np.hstack([xa0, _table_lookup(lookup, a_lab)])
        xb = np.hstack([xb0, _table_lookup(lookup, b_lab)])
        cols = _feature_frame_columns(self.feature_names, xa, xb) if spec.feature_mode == "columns" else {}
        return xa, xb, cols

    def _text_table(self) -> pd.DataFrame:
        """The text features of the known options (training values), indexed by option label."""
        names = list(self._spec.text.feature_names)
        k = len(names)
        if self.option_features is not None:
            return self.option_features.iloc[:, -k:].set_axis(names, axis=1)
        a, b = np.asarray(self.a), np.asarray(self.b)
        idx = np.concatenate([a[a >= 0], b[b >= 0]])
        x = np.vstack([self.xa[a >= 0, -k:], self.xb[b >= 0, -k:]])
        table = pd.DataFrame(x, index=self.options[idx], columns=names)
        return table[~table.index.duplicated(keep="first")]

    @property
    def text_features(self) -> TextFeatures | None:
        """The fitted :class:`~bayespref.data.text.TextFeatures` of this data (None without)."""
        return self._spec.text

    def with_text_encoder(self, encoder: Callable) -> Comparisons:
        """This data with the encoder of its text features attached again (encoders are not saved).

        The encoder must reproduce the training features: it is checked on up to 8 known options
        (``DataError`` if it does not). For a loaded fit: ``fit.data = fit.data.with_text_encoder(enc)``.
        """
        text = self._spec.text
        if text is None or text.state["encoder_dim"] is None:
            raise DataError("with_text_encoder: this data has no text features computed with an encoder.")
        new = text.with_encoder(encoder)
        if not text.embedding_columns:
            known = self._text_table().iloc[:8]
            got = new.transform(pd.Series(known.index.to_numpy(dtype=object), index=known.index, dtype=object))
            if not np.allclose(got.to_numpy(), known.to_numpy(), rtol=1e-3, atol=1e-3):
                raise DataError("with_text_encoder: the encoder does not reproduce the training features of "
                                f"the known options (largest difference "
                                f"{np.abs(got.to_numpy() - known.to_numpy()).max():.3g}); pass the encoder "
                                "used when the data were built.")
        return replace(self, _spec=replace(self._spec, text=new))

    def _encode_covariates(self, df, u_lab, user_covariates, where):
        spec = self._spec
        if not spec.design:
            return np.zeros((len(df), self.n_covariates))
        cols = list(spec.covariate_columns)
        codes, uniq = pd.factorize(u_lab)
        uniq = pd.Index(uniq)
        pieces = []  # per-user raw covariates, highest precedence first
        if isinstance(user_covariates, pd.DataFrame):
            missing = [c for c in cols if c not in user_covariates.columns]
            if missing:
                raise DataError(f"{where}: the user covariate table lacks column(s) {_fmt(missing)} "
                                "used in training.")
            pieces.append(_check_table(user_covariates[cols], pd.Index([]), what="user covariate",
                                       kind="user", where=where, numeric=False, allow_extra=True))
        elif isinstance(user_covariates, (list, tuple, str)):
            use = (user_covariates,) if isinstance(user_covariates, str) else tuple(user_covariates)
            if set(use) != set(cols):
                raise DataError(f"{where}: user_covariates must name the training covariate columns "
                                f"{_fmt(cols, 10)}, got {_fmt(use, 10)}.")
            pieces.append(_covariate_columns(df, tuple(cols), codes, uniq, where))
        elif user_covariates is None:
            if spec.covariate_mode == "columns" and all(c in df.columns for c in cols):
                pieces.append(_covariate_columns(df, tuple(cols), codes, uniq, where))
        else:
            raise DataError(f"{where}: user_covariates must be a DataFrame indexed by user id or a list "
                            f"of column names; got {type(user_covariates).__name__}.")
        designs = [pd.DataFrame(_apply_design(p[p.index.isin(uniq)], spec.design, where),
                                index=p.index[p.index.isin(uniq)]) for p in pieces]
        designs.append(pd.DataFrame(self.covariates, index=self.users))
        table = pd.concat(designs)
        table = table[~table.index.duplicated(keep="first")]
        pos = table.index.get_indexer(uniq)
        if (pos < 0).any():
            raise DataError(f"{where}: new user(s) {_fmt(uniq[pos < 0])} have no covariates; pass "
                            f"user_covariates=<table indexed by user id> with columns {_fmt(cols, 10)}.")
        return table.to_numpy(dtype=np.float64)[pos][codes].reshape(len(df), self.n_covariates)

    def to_arrays(self) -> dict[str, Any]:
        """The encoded arrays as a dict (``prompt`` omitted when there is no prompt column).

        Examples
        --------
        >>> data = Comparisons.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "outcome": [1, 0]}))
        >>> sorted(data.to_arrays())
        ['a', 'b', 'covariates', 'n_options', 'n_users', 'outcome', 'user', 'xa', 'xb', 'y']
        """
        out = {"a": self.a, "b": self.b, "user": self.user, "prompt": self.prompt,
               "outcome": self.outcome, "y": self.y, "xa": self.xa, "xb": self.xb,
               "covariates": self.covariates, "n_options": self.n_options, "n_users": self.n_users}
        if self.prompt is None:
            del out["prompt"]
        return out

    # -- subsets and splits ---------------------------------------------------------------------
    def subset(self, rows: Any) -> Comparisons:
        """The comparisons at ``rows`` (bool mask or integer positions), with the same label indexes.

        Examples
        --------
        >>> data = Comparisons.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "outcome": [1, 0]}))
        >>> sub = data.subset([1])
        >>> sub.n_comparisons, list(sub.options)
        (1, [1, 2, 3])
        """
        pos = _positions(rows, self.n_comparisons)
        take = lambda v: None if v is None else v[pos]
        return replace(self, frame=self.frame.iloc[pos], a=take(self.a), b=take(self.b),
                       user=take(self.user), prompt=take(self.prompt), outcome=take(self.outcome),
                       y=take(self.y), xa=take(self.xa), xb=take(self.xb),
                       comparison_covariates=take(self.comparison_covariates),
                       comparison_ids=self.comparison_ids[pos],
                       has_ties=bool(np.any(self.outcome[pos] == 0.5)))

    def _split(self, test: np.ndarray) -> tuple[Comparisons, Comparisons]:
        return self.subset(~test), self.subset(test)

    def _groups(self, by: str) -> np.ndarray:
        if by == "user":
            return self.user
        if by == "prompt":
            if self.prompt is None:
                raise DataError("Cannot split by prompt: the data have no prompt column "
                                "(Comparisons.from_frame(..., prompt=...)).")
            return self.prompt
        if by == "comparison":
            return np.arange(self.n_comparisons)
        raise DataError(f"by must be 'user', 'prompt' or 'comparison', got {by!r}.")

    def _split_by(self, by: str, test_size, seed) -> tuple[Comparisons, Comparisons]:
        return self._split(_group_split(self._groups(by), test_size, seed, by))

    def split_by_user(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Comparisons, Comparisons]:
        """Hold out a random ``test_size`` share (or count) of users: ``(train, test)``.

        Examples
        --------
        >>> df = pd.DataFrame({"a": [1, 2, 1, 3], "b": [2, 3, 3, 2], "outcome": [1, 0, 1, 1],
        ...                    "u": ["p", "q", "r", "s"]})
        >>> train, test = Comparisons.from_frame(df, user="u").split_by_user(0.25, seed=1)
        >>> train.n_comparisons + test.n_comparisons, test.n_users
        (4, 4)
        """
        return self._split_by("user", test_size, seed)

    def split_by_prompt(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Comparisons, Comparisons]:
        """Hold out a random ``test_size`` share (or count) of prompts: ``(train, test)``."""
        return self._split_by("prompt", test_size, seed)

    def split_by_option(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Comparisons, Comparisons]:
        """Hold out options: test = every comparison involving a held-out option, train = the rest."""
        groups = np.unique(np.concatenate([self.a, self.b]))
        k = _n_test(test_size, len(groups), "option")
        held = np.random.default_rng(seed).permutation(groups)[:k]
        test = np.isin(self.a, held) | np.isin(self.b, held)
        if test.all():
            raise DataError(f"split_by_option: every comparison involves one of the {k} held-out "
                            "options, leaving no training data; lower test_size.")
        return self._split(test)

    def kfold(self, by: str = "user", k: int = 5, seed: int = 0) -> list[tuple[Comparisons, Comparisons]]:
        """``k`` (train, test) pairs whose test sets partition the groups (users, prompts, comparisons).

        Examples
        --------
        >>> df = pd.DataFrame({"a": [1, 2, 1, 3], "b": [2, 3, 3, 2], "outcome": [1, 0, 1, 1]})
        >>> folds = Comparisons.from_frame(df).kfold(by="comparison", k=2)
        >>> [test.n_comparisons for _, test in folds]
        [2, 2]
        """
        return [self._split(test) for test in _group_folds(self._groups(by), by, k, seed)]

    # -- display --------------------------------------------------------------------------------
    def describe(self) -> pd.Series:
        """A short summary: sizes, outcome shares and graph connectivity.

        Examples
        --------
        >>> data = Comparisons.from_frame(pd.DataFrame({"a": [1, 2], "b": [2, 3], "outcome": [1, 0.5]}))
        >>> data.describe()["share_ties"]
        0.5
        """
        known = (self.a >= 0) & (self.b >= 0)
        comps = np.unique(_components(self.a[known], self.b[known], self.n_options)[
            np.unique(np.concatenate([self.a[known], self.b[known]]))]).size
        per_user = np.bincount(self.user[self.user >= 0], minlength=self.n_users)
        return pd.Series({
            "n_comparisons": self.n_comparisons, "n_options": self.n_options,
            "n_users": self.n_users, "n_prompts": self.n_prompts,
            "n_features": self.n_features, "n_covariates": self.n_covariates,
            "share_a": float(np.mean(self.outcome == 1.0)), "share_b": float(np.mean(self.outcome == 0.0)),
            "share_ties": float(np.mean(self.outcome == 0.5)),
            "median_per_user": float(np.median(per_user)), "n_components": int(comps),
        }, name="Comparisons", dtype=object)

    def __repr__(self) -> str:
        prompts = f", {self.n_prompts} prompts" if self.prompts is not None else ""
        lines = [f"<Comparisons: {self.n_comparisons} comparisons of {self.n_options} options by "
                 f"{self.n_users} user(s){prompts}>"]
        if np.isnan(self.outcome).all():
            lines.append("  outcomes: none (data for prediction)")
        else:
            s = self.describe()
            lines.append(f"  outcomes: {s['share_a']:.1%} a, {s['share_b']:.1%} b, "
                         f"{s['share_ties']:.1%} ties")
        if self.n_features:
            lines.append(f"  features ({self.n_features}): {', '.join(self.feature_names[:8])}")
        if self.covariate_names:
            lines.append(f"  user covariates ({self.n_covariates}): {', '.join(self.covariate_names[:8])}")
        return "\n".join(lines)


def _is_name(value, name: str) -> bool:
    """Whether the argument ``value`` is the column name ``name`` (False for arrays and other values)."""
    return isinstance(value, str) and value == name


def _y(outcome: np.ndarray) -> np.ndarray:
    y = np.full(outcome.shape, -1, dtype=np.int32)
    y[outcome == 1.0], y[outcome == 0.0], y[outcome == 0.5] = 1, 0, 2
    return y


def _id_columns(df: pd.DataFrame, roles: dict, where: str) -> dict[str, pd.Series]:
    """The id columns (a, b, user, prompt) that are mapped, checked for NaN."""
    return {r: _check_ids(df, roles[r], r, where)
            for r in ("a", "b", "user", "prompt") if roles[r] is not None}


def _feature_frame_columns(names: tuple, xa: np.ndarray, xb: np.ndarray) -> dict[str, np.ndarray]:
    """``{"<name>_a": ..., "<name>_b": ...}`` columns of the canonical frame."""
    return {f"{n}_{side}": x[:, i] for i, n in enumerate(names) for side, x in (("a", xa), ("b", xb))}


def _add_text_features(text, df, a_lab, b_lab, options, xa, xb, names, option_features, spec, where):
    """Append the text features of the options (fitted on their texts) to the features."""
    fitted, table = fit_options(text, df, a_lab, b_lab, options, spec["suffixes"], where)
    table.index = options
    clash = [c for c in table.columns if c in names]
    if clash:
        raise DataError(f"{where}: text feature name(s) {_fmt(clash)} are also names of features=; set "
                        "TextFeatures(prefix='text_') (or rename the other features).")
    xa = np.hstack([xa, _table_lookup(table, a_lab)])
    xb = np.hstack([xb, _table_lookup(table, b_lab)])
    if spec.get("feature_mode") != "columns":  # none or a per-option table: one table of both
        option_features = table if option_features is None else pd.concat([option_features, table], axis=1)
        spec.update(feature_mode="table",
                    feature_columns=tuple(spec.get("feature_columns", ())) + tuple(table.columns))
    spec["text"] = fitted
    return xa, xb, tuple(names) + tuple(table.columns), option_features


def _kept(df: pd.DataFrame, keep: tuple) -> dict[Any, np.ndarray]:
    """The reader's ``keep`` columns present in ``df`` (scores, the Arena winner), by name."""
    return {c: df[c].to_numpy() for c in keep if c in df.columns}


def _frame(index: pd.Index, labels: dict, outcome: np.ndarray, feature_cols: dict,
           kept: dict | None = None, where: str = "Comparisons") -> pd.DataFrame:
    """The canonical long frame: a, b, outcome, user, prompt, ``<feature>_a/_b``, then kept columns."""
    cols = {"a": labels["a"].to_numpy(), "b": labels["b"].to_numpy(), "outcome": outcome}
    cols.update({r: labels[r].to_numpy() for r in ("user", "prompt") if r in labels})
    cols.update(feature_cols)
    clash = [c for c in (kept or {}) if c in cols]
    if clash:
        raise DataError(f"{where}: column(s) {_fmt(clash)} of the input would be kept in the frame but "
                        f"clash with its canonical columns {_fmt(list(cols), 12)}; rename them.")
    return pd.DataFrame({**cols, **(kept or {})}, index=index)


# -- lossless JSON form (used by Fit.save / load_fit) ---------------------------------------------------
_ARRAY_FIELDS = ("a", "b", "user", "prompt", "outcome", "y", "xa", "xb", "covariates", "comparison_covariates")


def _index_to_json(index: pd.Index | None):
    if index is None:
        return None
    return {"values": [_py(v) for v in index], "dtype": str(index.dtype), "name": _py(index.name)}


def _index_from_json(d) -> pd.Index | None:
    if d is None:
        return None
    dtype = d["dtype"] if d["dtype"] not in ("object", "str", "string") else None
    return pd.Index(d["values"], dtype=dtype, name=d["name"])


def _table_to_json(t: pd.DataFrame | None):
    if t is None:
        return None
    return {"index": _index_to_json(t.index), "columns": [_py(c) for c in t.columns],
            "data": {str(i): {"values": [_py(v) for v in t.iloc[:, i]], "dtype": str(t.dtypes.iloc[i])}
                     for i in range(t.shape[1])}}


def _table_from_json(d) -> pd.DataFrame | None:
    if d is None:
        return None
    cols = {}
    for i, c in enumerate(d["columns"]):
        col = d["data"][str(i)]
        dtype = col["dtype"] if col["dtype"] not in ("object", "str", "string") else None
        cols[c] = pd.Series(col["values"], dtype=dtype)
    index = _index_from_json(d["index"])
    out = pd.DataFrame({k: v.to_numpy() for k, v in cols.items()}, index=index)
    out.columns = pd.Index(d["columns"])
    return out


def _comparisons_to_json(self: Comparisons) -> str:
    """Serialise every field to JSON (labels keep their types); see :meth:`Comparisons.from_json`."""
    import json

    spec = self._spec
    to_long = None
    if spec.to_long is not None:
        kw = dict(spec.to_long.keywords)
        if "coding" in kw and isinstance(kw["coding"], dict):
            kw["coding"] = [[_py(k), _py(v)] for k, v in kw["coding"].items()]
        to_long = {"adapter": spec.to_long.func.__name__, "keywords": kw}
    arrays = {}
    for name in _ARRAY_FIELDS:
        v = getattr(self, name)
        arrays[name] = None if v is None else {"values": np.asarray(v).tolist(), "dtype": str(v.dtype),
                                                "shape": list(v.shape)}
    payload = {
        "format": "bayespref.Comparisons/1",
        "arrays": arrays,
        "frame": _table_to_json(self.frame.reset_index(drop=True)),
        "comparison_ids": _index_to_json(self.comparison_ids),
        "options": _index_to_json(self.options), "users": _index_to_json(self.users),
        "prompts": _index_to_json(self.prompts),
        "feature_names": list(self.feature_names), "covariate_names": list(self.covariate_names),
        "option_features": _table_to_json(self.option_features), "user_table": _table_to_json(self.user_table),
        "has_ties": self.has_ties,
        "spec": {"roles": {k: _py(v) for k, v in spec.roles.items()}, "suffixes": list(spec.suffixes),
                 "feature_mode": spec.feature_mode, "feature_columns": [_py(c) for c in spec.feature_columns],
                 "covariate_mode": spec.covariate_mode,
                 "covariate_columns": [_py(c) for c in spec.covariate_columns],
                 "design": [[_py(c), None if lv is None else [_py(x) for x in lv]] for c, lv in spec.design],
                 "to_long": to_long, "text": None if spec.text is None else spec.text.to_dict()},
    }
    return json.dumps(payload)


def _comparisons_from_json(cls, text: str) -> Comparisons:
    """Rebuild a :class:`Comparisons` written by :meth:`Comparisons.to_json`."""
    import json

    d = json.loads(text)
    if d.get("format") != "bayespref.Comparisons/1":
        raise DataError("Not a serialised bayespref Comparisons (unknown or missing 'format').")
    arrays = {}
    for name, v in d["arrays"].items():
        arrays[name] = None if v is None else np.asarray(v["values"], dtype=v["dtype"]).reshape(v["shape"])
    s = d["spec"]
    to_long = None
    if s["to_long"] is not None:
        kw = dict(s["to_long"]["keywords"])
        if isinstance(kw.get("coding"), list):
            kw["coding"] = {k: v for k, v in kw["coding"]}
        to_long = functools.partial(READERS[s["to_long"]["adapter"]], **kw)
    spec = _Spec(roles=s["roles"], suffixes=tuple(s["suffixes"]), feature_mode=s["feature_mode"],
                 feature_columns=tuple(s["feature_columns"]), covariate_mode=s["covariate_mode"],
                 covariate_columns=tuple(s["covariate_columns"]),
                 design=tuple((c, None if lv is None else tuple(lv)) for c, lv in s["design"]), to_long=to_long,
                 text=None if s.get("text") is None else TextFeatures.from_dict(s["text"]))
    ids = _index_from_json(d["comparison_ids"])
    frame = _table_from_json(d["frame"])
    frame.index = ids
    return cls(frame=frame, options=_index_from_json(d["options"]), users=_index_from_json(d["users"]),
               prompts=_index_from_json(d["prompts"]), feature_names=tuple(d["feature_names"]),
               covariate_names=tuple(d["covariate_names"]), comparison_ids=ids,
               option_features=_table_from_json(d["option_features"]), user_table=_table_from_json(d["user_table"]),
               has_ties=d["has_ties"], _spec=spec, **arrays)


Comparisons.to_json = _comparisons_to_json
Comparisons.from_json = classmethod(_comparisons_from_json)
