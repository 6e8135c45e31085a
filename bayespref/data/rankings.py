"""Rankings and k-wise choices: one validated, encoded, immutable object (the Plackett-Luce data).

:class:`Rankings` is to the Plackett-Luce family what :class:`~bayespref.Comparisons` is to
Bradley-Terry: built once by a reader (a long frame, a wide table of positions, k-wise scores, or
pairwise comparisons), validated here and in :mod:`bayespref.data.readers.rankings`, and encoded
into integer indices and float arrays. Every problem raises :class:`~bayespref.errors.DataError`
naming the column, the offending rows or rankings, and the fix; nothing is dropped or coerced.

Conventions the models rely on
------------------------------
* ``items`` is ``int32`` (R, K): the option index of each shown item of ranking r, best first
  (within a tie group, and among the items shown but not ranked, in order of first appearance),
  padded with -1; K is the largest number of items one ranking shows.
* ``level`` is ``int32`` (R, K): the dense rank of the item's tie group (0 = best, 1 = next, ...),
  :data:`UNRANKED` for an item shown but not ranked (the rest of a top-k ranking, the unchosen items
  of a choice), -1 in padding. Levels never decrease along a row.
* ``user``, ``prompt`` are ``int32`` (R,); ``x`` is ``float64`` (R, K, D) (0 in padding);
  ``covariates`` is ``float64`` (U, P) and ``ranking_covariates`` (R, P); D and P may be 0.
* Arrays are read-only; subsets keep the ``options``, ``users`` and ``prompts`` of their parent.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bayespref.data.comparisons import (
    Comparisons,
    _feature_frame_columns,
    _frame,
    _Spec,
    _y,
)
from bayespref.data.readers.kwise import _pairs
from bayespref.data.readers.rankings import Items, long_items, score_items, wide_items
from bayespref.data.validation import (
    _check_table,
    _components,
    _fmt,
    _group_folds,
    _group_split,
    _names_argument,
    _positions,
    _py,
    _rows,
    _sorted_index,
    _table_lookup,
    _user_covariates,
)
from bayespref.errors import DataError

__all__ = ["UNRANKED", "Rankings"]

#: ``level`` of an item that was shown but not ranked (larger than any ranked level)
UNRANKED = 2**20


@dataclass(frozen=True)
class _RankingSpec:
    """How a Rankings was read (saved with it)."""

    reader: str                        # "long" | "wide" | "scores" | "comparisons"
    roles: dict                        # argument -> source column(s); "user" / "prompt" None when absent
    feature_mode: str | None = None    # "columns" (per item) | "table" (per option) | None
    covariate_mode: str | None = None  # "columns" | "table" | None
    covariate_columns: tuple = ()      # raw covariate columns
    design: tuple = ()                 # ((column, levels or None), ...)


@dataclass(frozen=True, eq=False, repr=False)
class Rankings:
    """Validated, encoded rankings, top-k rankings and choices (see ``docs/data-contract.md``).

    Build it with a reader (:meth:`from_long`, :meth:`from_wide`, :meth:`from_scores`,
    :meth:`from_comparisons`), never with the constructor. Arrays are read-only.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"ranking": [1, 1, 1, 2, 2], "option": ["x", "y", "z", "z", "x"],
    ...                    "rank": [2, 1, 2, 1, 2]})
    >>> data = Rankings.from_long(df)
    >>> list(data.options), data.items.tolist(), data.level.tolist()
    (['x', 'y', 'z'], [[1, 0, 2], [2, 0, -1]], [[0, 1, 1], [0, 1, -1]])
    """

    frame: pd.DataFrame
    items: np.ndarray
    level: np.ndarray
    user: np.ndarray
    prompt: np.ndarray | None
    x: np.ndarray
    covariates: np.ndarray
    ranking_covariates: np.ndarray
    options: pd.Index
    users: pd.Index
    prompts: pd.Index | None
    feature_names: tuple[str, ...]
    covariate_names: tuple[str, ...]
    ranking_ids: pd.Index
    option_features: pd.DataFrame | None
    user_table: pd.DataFrame | None
    has_ties: bool
    _spec: _RankingSpec = field(repr=False)

    #: ArviZ dim of the observations (``Comparisons`` has "comparison")
    obs_dim = "ranking"
    #: ``level`` of an item shown but not ranked
    UNRANKED = UNRANKED

    def __post_init__(self):
        for v in vars(self).values():
            if isinstance(v, np.ndarray):
                v.flags.writeable = False

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def n_rankings(self) -> int:
        return int(self.items.shape[0])

    @property
    def n_obs(self) -> int:
        """Number of observations (rankings): the length of the ``ranking`` dim."""
        return self.n_rankings

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
        return int(self.x.shape[2])

    @property
    def n_covariates(self) -> int:
        return int(self.covariates.shape[1])

    @property
    def max_items(self) -> int:
        """K: the largest number of items one ranking shows (the width of ``items``)."""
        return int(self.items.shape[1])

    @property
    def n_shown(self) -> np.ndarray:
        """(R,) number of items each ranking shows (ranked or not)."""
        return (self.items >= 0).sum(axis=1)

    @property
    def n_levels(self) -> np.ndarray:
        """(R,) number of ranked tie groups of each ranking (a complete ranking without ties: n_shown)."""
        ranked = (self.level >= 0) & (self.level != UNRANKED)
        return np.where(ranked, self.level, -1).max(axis=1, initial=-1) + 1

    @property
    def max_tie(self) -> int:
        """The size of the largest tie group (1 without ties; 0 for no rankings, an empty subset)."""
        ranked = (self.level >= 0) & (self.level != UNRANKED)
        r = np.nonzero(ranked)[0]
        return int(np.bincount(r * self.max_items + self.level[ranked]).max()) if len(r) else 0

    # -- readers --------------------------------------------------------------------------------
    @classmethod
    def from_long(cls, df: pd.DataFrame, ranking: Hashable = "ranking", option: Hashable = "option",
                  rank: Hashable = "rank", user: Hashable | None = None, prompt: Hashable | None = None,
                  features: list | pd.DataFrame | None = None, user_covariates: list | pd.DataFrame | None = None,
                  partial: bool = False, *, keep: list | None = None) -> Rankings:
        """Read a long frame: one row per (ranking, shown item).

        Parameters
        ----------
        df : DataFrame
            One row per shown item; its row labels name the rows in error messages (must be unique).
        ranking : column name
            The ranking id (the ``ranking_ids``, in order of first appearance).
        option : column name
            The option id of the item.
        rank : column name
            Its rank: numbers, 1 = best, smaller is better, equal = tied; only the order within a
            ranking matters (gaps are allowed: ranks 1, 2, 2, 4 give levels 0, 1, 1, 2). NaN means
            "shown but not ranked" (the rest of a top-k ranking, the unchosen items of a choice set)
            and is allowed only with ``partial=True``.
        user, prompt : column names, optional
            Annotator and prompt ids, the same on every row of a ranking. Without ``user`` every
            ranking belongs to the user ``"all"``.
        features : list of names or DataFrame, optional
            Numeric columns of ``df`` (per item: they may differ between rankings), or a numeric
            table indexed by option id holding exactly the shown options.
        user_covariates : list of names or DataFrame, optional
            As in :meth:`Comparisons.from_frame`: columns constant within each user, or a table
            indexed by user id; numeric columns as given, others one-hot (first level dropped).
        partial : bool
            Allow NaN ranks (shown but not ranked).
        keep : list of names, optional
            Columns copied into :attr:`frame` (one value per ranking: constant within a ranking).

        Examples
        --------
        >>> df = pd.DataFrame({"ranking": ["r1"] * 4, "option": ["a", "b", "c", "d"],
        ...                    "rank": [1, None, 2, None]})
        >>> top2 = Rankings.from_long(df, partial=True)
        >>> top2.items.tolist(), top2.level.tolist() == [[0, 1, UNRANKED, UNRANKED]]
        ([[0, 2, 1, 3]], True)
        """
        where = "Rankings.from_long"
        features = _names_argument(features, "features", where, frame_ok=True)
        names = None if features is None or isinstance(features, pd.DataFrame) else features
        keep = _names_argument(keep, "keep", where) or ()
        items = long_items(df, ranking=ranking, option=option, rank=rank, user=user, prompt=prompt,
                           features=names, partial=partial, keep=keep, where=where)
        roles = {"ranking": ranking, "option": option, "rank": rank, "user": user, "prompt": prompt,
                 "partial": bool(partial), "keep": list(keep)}
        return cls._build(items, features=features, user_covariates=user_covariates, reader="long",
                          roles=roles, user_column=user, where=where)

    @classmethod
    def from_wide(cls, df: pd.DataFrame, positions: list, user: Hashable | None = None,
                  prompt: Hashable | None = None, shown: Hashable | None = None, tie_sep: str | None = None,
                  features: pd.DataFrame | None = None, user_covariates: list | pd.DataFrame | None = None, *,
                  keep: list | None = None) -> Rankings:
        """Read a wide table: one row per ranking, the ``positions`` columns in rank order.

        Parameters
        ----------
        df : DataFrame
            One row per ranking; its row labels become ``ranking_ids`` (must be unique).
        positions : list of column names
            The columns in rank order (first = best), each cell an option id. Missing cells (NaN,
            None) may only end a row (a shorter ranking).
        user, prompt : column names, optional
            Annotator and prompt ids.
        shown : column name, optional
            A column holding, per ranking, a list of every shown id (the ranked ones included); the
            shown ids that no position holds are shown but not ranked (top-k rankings, choice sets).
        tie_sep : str, optional
            With ``tie_sep="="`` a cell ``"A=B"`` is a tie group (ids split exactly at the separator,
            no spaces stripped).
        features : DataFrame, optional
            Numeric option features: a table indexed by option id (per-item columns do not exist in a
            wide table).
        user_covariates : list of names or DataFrame, optional
            As in :meth:`Comparisons.from_frame`.
        keep : list of names, optional
            Columns copied into :attr:`frame` (e.g. the kind of ranking).

        Examples
        --------
        >>> wide = pd.DataFrame({"first": ["x", "y=z"], "second": ["y", "x"], "third": [None, None],
        ...                      "shown": [["x", "y", "z"], ["x", "y", "z"]]})
        >>> data = Rankings.from_wide(wide, ["first", "second", "third"], shown="shown", tie_sep="=")
        >>> data.items.tolist(), data.level.tolist() == [[0, 1, UNRANKED], [0, 0, 1]], data.has_ties
        ([[0, 1, 2], [1, 2, 0]], True, True)
        """
        where = "Rankings.from_wide"
        if features is not None and not isinstance(features, pd.DataFrame):
            raise DataError(f"{where}: features must be a DataFrame indexed by option id (a wide table has no "
                            f"per-item columns); got {type(features).__name__}.")
        keep = _names_argument(keep, "keep", where) or ()
        items = wide_items(df, positions=positions, user=user, prompt=prompt, shown=shown, tie_sep=tie_sep,
                           keep=keep, where=where)
        roles = {"positions": list(_names_argument(positions, "positions", where)), "user": user,
                 "prompt": prompt, "shown": shown, "tie_sep": tie_sep, "keep": list(keep)}
        return cls._build(items, features=features, user_covariates=user_covariates, reader="wide",
                          roles=roles, user_column=user, where=where)

    @classmethod
    def from_scores(cls, df: Any, group: Hashable = "prompt", option: Hashable = "response",
                    score: Hashable = "score", user: Hashable | None = None, higher_is_better: bool = True,
                    features: list | pd.DataFrame | None = None, user_covariates: list | pd.DataFrame | None = None,
                    *, keep: list | None = None) -> Rankings:
        """Read k-wise ratings (one row per scored response) as one ranking per (user, group).

        The responses of a group (a prompt, or a (user, prompt) pair with ``user``) are ranked by
        their scores, equal scores tied. Unlike :meth:`Comparisons.from_kwise` no pairs are made:
        a ranking of k responses is one observation.

        Parameters
        ----------
        df : DataFrame, path or ``datasets.Dataset``
            As in :meth:`Comparisons.from_kwise`; row labels name the rows in errors, and the label
            of the first row of each group is its ranking id.
        group : column name
            The prompt (context) id; it becomes ``prompt``.
        option : column name
            The option id (a response text, a model name).
        score : column name
            Numeric scores (booleans count as 0/1; NaN and infinite values are ``DataError``).
        user : column name, optional
            The rater.
        higher_is_better : bool
            Rank higher scores first (default) or lower ones.
        features : list of names or DataFrame, optional
            Numeric per-response columns, or a table indexed by option id.
        user_covariates : list of names or DataFrame, optional
            As in :meth:`Comparisons.from_frame`.
        keep : list of names, optional
            Columns copied into :attr:`frame` (constant within a group).

        A group with one rating, and the same response twice in a group, are ``DataError``.

        Examples
        --------
        >>> ratings = pd.DataFrame({"prompt": ["p", "p", "p", "q", "q"],
        ...                         "response": ["x", "y", "z", "x", "y"], "score": [3, 5, 3, 1, 2]})
        >>> data = Rankings.from_scores(ratings)
        >>> data.items.tolist(), data.level.tolist(), list(data.ranking_ids)
        ([[1, 0, 2], [1, 0, -1]], [[0, 1, 1], [0, 1, -1]], [0, 3])
        """
        where = "Rankings.from_scores"
        features = _names_argument(features, "features", where, frame_ok=True)
        names = None if features is None or isinstance(features, pd.DataFrame) else features
        keep = _names_argument(keep, "keep", where) or ()
        items = score_items(df, group=group, option=option, score=score, user=user,
                            higher_is_better=higher_is_better, features=names, keep=keep, where=where)
        roles = {"group": group, "option": option, "score": score, "user": user, "prompt": group,
                 "higher_is_better": bool(higher_is_better), "keep": list(keep)}
        return cls._build(items, features=features, user_covariates=user_covariates, reader="scores",
                          roles=roles, user_column=user, where=where)

    @classmethod
    def from_comparisons(cls, comparisons: Comparisons) -> Rankings:
        """Each pairwise comparison as a ranking of two: the winner first (level 0), the loser level 1;
        a tie is both at level 0, ``a`` first.

        Users, prompts, options (their indexes too), features (per item, from ``xa`` / ``xb``),
        user covariates and ids (``ranking_ids`` = ``comparison_ids``) are kept.

        Examples
        --------
        >>> pairs = Comparisons.from_frame(pd.DataFrame({"a": ["x", "y", "x"], "b": ["y", "z", "z"],
        ...                                              "outcome": [1, 1, 0.5]}))
        >>> Rankings.from_comparisons(pairs).items.tolist()
        [[0, 1], [1, 2], [0, 2]]
        """
        where = "Rankings.from_comparisons"
        if not isinstance(comparisons, Comparisons):
            raise DataError(f"{where}: expected a bayespref.Comparisons, got {type(comparisons).__name__}.")
        c = comparisons
        ids = c.comparison_ids
        for what, bad in (("outcome", np.isnan(c.outcome)), ("option", (c.a < 0) | (c.b < 0)),
                          ("user", c.user < 0), ("prompt", None if c.prompt is None else c.prompt < 0)):
            if bad is not None and bad.any():
                problem = "no outcome" if what == "outcome" else f"an unknown {what} (index -1)"
                raise DataError(f"{where}: {_rows(ids, bad)} have {problem}: data encoded for prediction "
                                "cannot become rankings. Build the comparisons with outcomes from known ids.")
        b_wins = c.outcome == 0.0
        items = np.where(b_wins[:, None], np.column_stack([c.b, c.a]), np.column_stack([c.a, c.b]))
        level = np.column_stack([np.zeros(len(ids), np.int32), np.where(c.outcome == 0.5, 0, 1)])
        x = np.where(b_wins[:, None, None], np.stack([c.xb, c.xa], axis=1), np.stack([c.xa, c.xb], axis=1))
        s = c._spec
        roles = {"user": s.roles.get("user"), "prompt": s.roles.get("prompt")}
        frame = _ranking_frame({r: c.frame[r].to_numpy() for r in ("user", "prompt") if roles[r] is not None}, ids)
        spec = _RankingSpec(reader="comparisons", roles=roles, feature_mode=s.feature_mode,
                            covariate_mode=s.covariate_mode, covariate_columns=tuple(s.covariate_columns),
                            design=tuple(s.design))
        return cls(frame=frame, items=items.astype(np.int32), level=level.astype(np.int32),
                   user=np.asarray(c.user, np.int32), prompt=None if c.prompt is None else np.asarray(c.prompt, np.int32),
                   x=x.astype(np.float64), covariates=np.array(c.covariates), ranking_covariates=np.array(
                       c.comparison_covariates), options=c.options, users=c.users, prompts=c.prompts,
                   feature_names=tuple(c.feature_names), covariate_names=tuple(c.covariate_names), ranking_ids=ids,
                   option_features=c.option_features, user_table=c.user_table, has_ties=bool(c.has_ties),
                   _spec=spec)

    @classmethod
    def _build(cls, items: Items, *, features, user_covariates, reader: str, roles: dict, user_column,
               where: str) -> Rankings:
        """Validate and encode the items a reader produced (options, levels, features, covariates)."""
        ids, r = items.ids, items.ranking
        R = len(ids)
        options = _sorted_index(items.option)
        code = options.get_indexer(items.option)
        _check_rankings(items, code, R, where)

        ranked = ~np.isnan(items.key)
        order = np.lexsort((np.arange(len(r)), np.where(ranked, items.key, np.inf), r))
        r_s, k_s, ranked_s = r[order], items.key[order], ranked[order]
        n_shown = np.bincount(r, minlength=R)
        start = np.cumsum(n_shown) - n_shown
        slot = np.arange(len(r)) - start[r_s]
        new_group = np.r_[True, (r_s[1:] != r_s[:-1]) | (k_s[1:] != k_s[:-1])]
        groups = np.cumsum(new_group)
        lev = groups - groups[start[r_s]]  # dense: 0 for the best group of each ranking
        lev = np.where(ranked_s, lev, UNRANKED)
        K = int(n_shown.max())
        item_arr = np.full((R, K), -1, dtype=np.int32)
        level = np.full((R, K), -1, dtype=np.int32)
        item_arr[r_s, slot] = code[order]
        level[r_s, slot] = lev
        tie = (r_s[1:] == r_s[:-1]) & (lev[1:] == lev[:-1]) & ranked_s[1:]

        if items.user is not None:
            users = _sorted_index(items.user)
            user_idx = users.get_indexer(items.user)
        else:
            users, user_idx = pd.Index(["all"]), np.zeros(R, dtype=np.int64)
        prompts = prompt_idx = None
        if items.prompt is not None:
            prompts = _sorted_index(items.prompt)
            prompt_idx = prompts.get_indexer(items.prompt).astype(np.int32)

        option_features, feature_mode = None, None
        if features is None:
            x_items, feature_names = np.zeros((len(r), 0)), ()
        elif isinstance(features, pd.DataFrame):
            option_features = _check_table(features, options, what="option feature", kind="option", where=where,
                                           numeric=True, obs="rankings").astype(np.float64)
            x_items = _table_lookup(option_features, items.option)
            feature_names, feature_mode = tuple(str(c) for c in features.columns), "table"
        else:
            x_items, feature_names, feature_mode = items.x, tuple(str(n) for n in features), "columns"
        x = np.zeros((R, K, x_items.shape[1]))
        x[r_s, slot] = x_items[order]

        user_labels = (None if items.user is None  # the user of each source row, to name rows in errors
                       else pd.Series(items.user.to_numpy()[items.source_ranking], index=items.source.index))
        user_table, covariates, covariate_names, cov_spec = _user_covariates(
            user_covariates, items.source, user_idx[items.source_ranking], users, where, labels=user_labels,
            column=user_column, obs="rankings")

        frame = {role: lab.to_numpy() for role, lab in (("user", items.user), ("prompt", items.prompt))
                 if lab is not None}
        clash = [c for c in items.kept if c in frame]
        if clash:
            raise DataError(f"{where}: kept column(s) {_fmt(clash)} clash with the columns {_fmt(list(frame))} of "
                            "the frame; rename them.")
        frame = _ranking_frame({**frame, **items.kept}, ids)
        spec = _RankingSpec(reader=reader, roles=roles, feature_mode=feature_mode, **cov_spec)
        return cls(frame=frame, items=item_arr, level=level, user=user_idx.astype(np.int32), prompt=prompt_idx,
                   x=x, covariates=covariates, ranking_covariates=covariates[user_idx], options=options,
                   users=users, prompts=prompts, feature_names=feature_names, covariate_names=covariate_names,
                   ranking_ids=ids, option_features=option_features, user_table=user_table,
                   has_ties=bool(tie.any()), _spec=spec)

    # -- pairs ----------------------------------------------------------------------------------
    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(r, i, j)``: ranking and slots of every implied pair, ``i`` before ``j`` (so ``i`` is at
        least as good), ordered by ranking, then ``i``, then ``j``; two unranked items give none."""
        r, slot = np.nonzero(self.items >= 0)  # row-major: by ranking, then slot
        ia, ib = _pairs(r, np.bincount(r, minlength=self.n_rankings), None, "all")
        lev = self.level[r, slot]
        keep = (lev[ia] != UNRANKED) | (lev[ib] != UNRANKED)
        ia, ib = ia[keep], ib[keep]
        return r[ia], slot[ia], slot[ib]

    def explode(self) -> Comparisons:
        """Every pair a ranking implies, as :class:`~bayespref.Comparisons`.

        An item ranked above another (in level, or ranked against one shown but not ranked) gives a
        comparison with ``a`` = the better item and outcome 1; two items of one tie group give a tie
        (``a`` the first, outcome 0.5); two items not ranked give none. A complete ranking of k items
        gives k(k-1)/2 comparisons. Users, prompts, options (with their indexes, so parameters align),
        features (``f_a`` / ``f_b`` columns, or the option table) and user covariates are kept; the
        frame's ``ranking`` column holds the ranking id of each comparison. The comparison graph is not
        checked for connectivity.

        These comparisons are dependent (a ranking of k items re-read as k(k-1)/2 pairs): a
        Bradley-Terry fit of them is overconfident; fit the rankings with a Plackett-Luce family.

        Examples
        --------
        >>> data = Rankings.from_wide(pd.DataFrame({"1": ["x"], "2": ["y"], "3": ["z"]}), ["1", "2", "3"])
        >>> data.explode().frame[["a", "b", "outcome"]].values.tolist()
        [['x', 'y', 1.0], ['x', 'z', 1.0], ['y', 'z', 1.0]]
        """
        r, i, j = self._pairs()
        a, b = self.items[r, i], self.items[r, j]
        outcome = np.where(self.level[r, i] == self.level[r, j], 0.5, 1.0)
        xa, xb = self.x[r, i], self.x[r, j]
        roles = {"a": "a", "b": "b", "outcome": "outcome",
                 "user": "user" if self._spec.roles.get("user") is not None else None,
                 "prompt": "prompt" if self.prompts is not None else None}
        labels = {"a": pd.Series(self.options[a]), "b": pd.Series(self.options[b])}
        if roles["user"] is not None:
            labels["user"] = pd.Series(self.users[self.user[r]])
        if roles["prompt"] is not None:
            labels["prompt"] = pd.Series(self.prompts[self.prompt[r]])
        mode = self._spec.feature_mode
        cols = _feature_frame_columns(self.feature_names, xa, xb) if mode == "columns" else {}
        index = pd.RangeIndex(len(r))
        frame = _frame(index, labels, outcome, cols, {"ranking": self.ranking_ids[r].to_numpy()},
                       "Rankings.explode")
        spec = _Spec(roles=roles, feature_mode=mode,
                     feature_columns=(tuple(self.feature_names) if mode == "columns"
                                      else () if mode is None else tuple(self.option_features.columns)),
                     covariate_mode=None if self.user_table is None else "table",
                     covariate_columns=self._spec.covariate_columns, design=self._spec.design)
        return Comparisons(frame=frame, a=a.astype(np.int32), b=b.astype(np.int32), user=self.user[r].copy(),
                           prompt=None if self.prompt is None else self.prompt[r].copy(), outcome=outcome,
                           y=_y(outcome), xa=xa, xb=xb, covariates=np.array(self.covariates),
                           comparison_covariates=self.ranking_covariates[r], options=self.options,
                           users=self.users, prompts=self.prompts, feature_names=self.feature_names,
                           covariate_names=self.covariate_names, comparison_ids=index,
                           option_features=self.option_features, user_table=self.user_table,
                           has_ties=bool(np.any(outcome == 0.5)), _spec=spec)

    # -- subsets and splits ---------------------------------------------------------------------
    def subset(self, rows: Any) -> Rankings:
        """The rankings at ``rows`` (bool mask or integer positions), with the same label indexes;
        ``items``, ``level`` and ``x`` are narrowed to the longest ranking kept.

        Examples
        --------
        >>> data = Rankings.from_wide(pd.DataFrame({"1": ["x", "y"], "2": ["y", "z"], "3": ["z", None]}),
        ...                           ["1", "2", "3"])
        >>> sub = data.subset([1])
        >>> sub.n_rankings, sub.max_items, list(sub.options)
        (1, 2, ['x', 'y', 'z'])
        """
        pos = _positions(rows, self.n_rankings, "ranking")
        K = int((self.items[pos] >= 0).sum(axis=1).max()) if len(pos) else 0
        level = self.level[pos, :K]
        ranked = (level >= 0) & (level != UNRANKED)
        tie = (level[:, 1:] == level[:, :-1]) & ranked[:, 1:]
        take = lambda v: None if v is None else v[pos]
        return replace(self, frame=self.frame.iloc[pos], items=self.items[pos, :K], level=level,
                       user=take(self.user), prompt=take(self.prompt), x=self.x[pos, :K],
                       ranking_covariates=take(self.ranking_covariates), ranking_ids=self.ranking_ids[pos],
                       has_ties=bool(tie.any()))

    def _groups(self, by: str) -> np.ndarray:
        if by == "user":
            return self.user
        if by == "prompt":
            if self.prompt is None:
                raise DataError("Cannot split by prompt: the rankings have no prompt column (prompt=... in the "
                                "reader).")
            return self.prompt
        if by == "ranking":
            return np.arange(self.n_rankings)
        raise DataError(f"by must be 'user', 'prompt' or 'ranking', got {by!r}.")

    def _split(self, test: np.ndarray) -> tuple[Rankings, Rankings]:
        return self.subset(~test), self.subset(test)

    def split_by_user(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Rankings, Rankings]:
        """Hold out a random ``test_size`` share (or count) of users: ``(train, test)``.

        Examples
        --------
        >>> df = pd.DataFrame({"u": ["p", "q", "r", "s"], "1": ["x", "y", "x", "z"], "2": ["y", "z", "z", "x"]})
        >>> train, test = Rankings.from_wide(df, ["1", "2"], user="u").split_by_user(0.25, seed=1)
        >>> train.n_rankings, test.n_rankings, test.n_users
        (3, 1, 4)
        """
        return self._split(_group_split(self._groups("user"), test_size, seed, "user"))

    def split_by_prompt(self, test_size: float | int = 0.2, seed: int = 0) -> tuple[Rankings, Rankings]:
        """Hold out a random ``test_size`` share (or count) of prompts: ``(train, test)``."""
        return self._split(_group_split(self._groups("prompt"), test_size, seed, "prompt"))

    def kfold(self, by: str = "user", k: int = 5, seed: int = 0) -> list[tuple[Rankings, Rankings]]:
        """``k`` (train, test) pairs whose test sets partition the groups (users, prompts, rankings).

        Examples
        --------
        >>> df = pd.DataFrame({"1": ["x", "y", "x", "z"], "2": ["y", "z", "z", "x"]})
        >>> folds = Rankings.from_wide(df, ["1", "2"]).kfold(by="ranking", k=2)
        >>> [test.n_rankings for _, test in folds]
        [2, 2]
        """
        return [self._split(test) for test in _group_folds(self._groups(by), by, k, seed)]

    # -- display --------------------------------------------------------------------------------
    def describe(self) -> pd.Series:
        """A short summary: sizes, shares of partial rankings and ties, implied pairs, connectivity.

        Examples
        --------
        >>> data = Rankings.from_wide(pd.DataFrame({"1": ["x", "y"], "2": ["y", "z"], "3": ["z", None]}),
        ...                           ["1", "2", "3"])
        >>> data.describe()[["n_rankings", "mean_shown", "n_pairs"]].tolist()
        [2, 2.5, 4]
        """
        r, i, j = self._pairs()
        a, b = self.items[r, i], self.items[r, j]
        shown = np.unique(self.items[self.items >= 0])
        comps = np.unique(_components(a, b, self.n_options)[shown]).size
        unranked = (self.level == UNRANKED).any(axis=1)
        ranked = (self.level >= 0) & (self.level != UNRANKED)
        tied = ((self.level[:, 1:] == self.level[:, :-1]) & ranked[:, 1:]).any(axis=1)
        return pd.Series({
            "n_rankings": self.n_rankings, "n_options": self.n_options, "n_users": self.n_users,
            "n_prompts": self.n_prompts, "n_features": self.n_features, "n_covariates": self.n_covariates,
            "mean_shown": _mean(self.n_shown), "max_items": self.max_items,
            "share_partial": _mean(unranked), "share_with_ties": _mean(tied),
            "n_pairs": len(r), "median_per_user": float(np.median(np.bincount(self.user, minlength=self.n_users))),
            "n_components": int(comps),
        }, name="Rankings", dtype=object)

    def __repr__(self) -> str:
        prompts = f", {self.n_prompts} prompts" if self.prompts is not None else ""
        s = self.describe()
        shown = self.n_shown
        lines = [f"<Rankings: {self.n_rankings} rankings of {self.n_options} options by {self.n_users} user(s)"
                 f"{prompts}>",
                 f"  items shown: {shown.min()}-{shown.max()} (mean {s['mean_shown']:.2f}); partial (not all "
                 f"ranked): {s['share_partial']:.1%}; with ties: {s['share_with_ties']:.1%}" if len(shown)
                 else "  no rankings (an empty subset)"]
        if self.n_features:
            lines.append(f"  features ({self.n_features}): {', '.join(self.feature_names[:8])}")
        if self.covariate_names:
            lines.append(f"  user covariates ({self.n_covariates}): {', '.join(self.covariate_names[:8])}")
        return "\n".join(lines)

    # -- lossless JSON form ---------------------------------------------------------------------
    def to_json(self) -> str:
        """Serialise every field to JSON (labels keep their types); :meth:`from_json` reads it back.

        Examples
        --------
        >>> data = Rankings.from_wide(pd.DataFrame({"1": ["x"], "2": ["y"]}), ["1", "2"])
        >>> Rankings.from_json(data.to_json()).items.tolist()
        [[0, 1]]
        """
        arrays = {}
        for name in _ARRAY_FIELDS:
            v = getattr(self, name)
            arrays[name] = None if v is None else {"values": np.asarray(v).tolist(), "dtype": str(v.dtype),
                                                    "shape": list(v.shape)}
        s = self._spec
        parts = {  # what a label JSON cannot hold is named by its part in the error
            "frame": lambda: _frame_to_json(self.frame), "ranking_ids": lambda: _labels_to_json(self.ranking_ids),
            "options": lambda: _labels_to_json(self.options), "users": lambda: _labels_to_json(self.users),
            "prompts": lambda: _labels_to_json(self.prompts),
            "option_features": lambda: _frame_to_json(self.option_features),
            "user_table": lambda: _frame_to_json(self.user_table),
            "spec": lambda: {"reader": s.reader, "roles": {k: _label_to_json(v) for k, v in s.roles.items()},
                             "feature_mode": s.feature_mode, "covariate_mode": s.covariate_mode,
                             "covariate_columns": [_label_to_json(c) for c in s.covariate_columns],
                             "design": [[_label_to_json(c), None if lv is None else [_label_to_json(v) for v in lv]]
                                        for c, lv in s.design]},
        }
        payload = {"format": _FORMAT, "obs_dim": self.obs_dim, "arrays": arrays,
                   "feature_names": list(self.feature_names), "covariate_names": list(self.covariate_names),
                   "has_ties": self.has_ties}
        for part, make in parts.items():
            try:
                payload[part] = make()
            except _NotJSON as err:
                raise DataError(f"Rankings.to_json: the {_PART_NAMES.get(part, part)} hold a value JSON cannot "
                                f"hold: {err.value!r} of type {type(err.value).__name__}. Labels and kept values "
                                "are saved as strings, numbers, booleans, None, timestamps, bytes or tuples of "
                                "them: convert that column (e.g. df[col].astype(str)) and read the data "
                                "again.") from None
        return json.dumps(payload)

    @classmethod
    def from_json(cls, text: str) -> Rankings:
        """Rebuild the :class:`Rankings` written by :meth:`to_json`."""
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as err:
            raise DataError(f"Rankings.from_json: not JSON text ({err}).") from None
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise DataError("Rankings.from_json: not a serialised bayespref Rankings (unknown or missing 'format').")
        arrays = {name: None if v is None else np.asarray(v["values"], dtype=v["dtype"]).reshape(v["shape"])
                  for name, v in d["arrays"].items()}
        s = d["spec"]
        spec = _RankingSpec(reader=s["reader"], roles={k: _label_from_json(v) for k, v in s["roles"].items()},
                            feature_mode=s["feature_mode"], covariate_mode=s["covariate_mode"],
                            covariate_columns=tuple(_label_from_json(c) for c in s["covariate_columns"]),
                            design=tuple((_label_from_json(c), None if lv is None
                                          else tuple(_label_from_json(v) for v in lv)) for c, lv in s["design"]))
        ids = _labels_from_json(d["ranking_ids"])
        frame = _frame_from_json(d["frame"])
        frame.index = ids
        return cls(frame=frame, options=_labels_from_json(d["options"]), users=_labels_from_json(d["users"]),
                   prompts=_labels_from_json(d["prompts"]), feature_names=tuple(d["feature_names"]),
                   covariate_names=tuple(d["covariate_names"]), ranking_ids=ids,
                   option_features=_frame_from_json(d["option_features"]),
                   user_table=_frame_from_json(d["user_table"]), has_ties=d["has_ties"], _spec=spec, **arrays)


def _mean(x: np.ndarray) -> float:
    """The mean, NaN (without a warning) for no rankings."""
    return float(x.mean()) if x.size else float("nan")


_FORMAT = "bayespref.Rankings/1"
_ARRAY_FIELDS = ("items", "level", "user", "prompt", "x", "covariates", "ranking_covariates")
_PART_NAMES = {"frame": "kept columns (frame)", "ranking_ids": "ranking ids", "options": "option labels",
               "users": "user labels", "prompts": "prompt labels", "option_features": "option feature table",
               "user_table": "user covariate table", "spec": "column names or covariate levels"}


def _ranking_frame(columns: dict, ids: pd.Index) -> pd.DataFrame:
    """``frame``: one row per ranking (index: the ranking ids); no columns is an empty object Index."""
    frame = pd.DataFrame(columns, index=ids)
    if not columns:
        frame.columns = pd.Index([], dtype=object)
    return frame


# -- exact JSON of labels, label indexes and tables (types, dtypes, names and RangeIndexes kept) ----------------
class _NotJSON(Exception):
    """A value the JSON form cannot hold exactly."""

    def __init__(self, value: Any):
        super().__init__(repr(value))
        self.value = value


def _label_to_json(v: Any) -> Any:
    """One label or table value: JSON scalars as they are (NaN and inf too), lists as lists, others tagged."""
    v = _py(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):  # a list of names in the spec (positions, keep)
        return [_label_to_json(x) for x in v]
    if isinstance(v, tuple):
        return {"tuple": [_label_to_json(x) for x in v]}
    if v is pd.NA:
        return {"na": "NA"}
    if v is pd.NaT:
        return {"na": "NaT"}
    if isinstance(v, pd.Timestamp):
        return {"timestamp": v.isoformat(), "unit": v.unit, "tz": None if v.tz is None else str(v.tz)}
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    raise _NotJSON(v)


def _label_from_json(x: Any) -> Any:
    if isinstance(x, list):
        return [_label_from_json(v) for v in x]
    if not isinstance(x, dict):
        return x
    if "tuple" in x:
        return tuple(_label_from_json(v) for v in x["tuple"])
    if "na" in x:
        return pd.NA if x["na"] == "NA" else pd.NaT
    if "timestamp" in x:
        t = pd.Timestamp(x["timestamp"])
        return (t if x["tz"] is None else t.tz_convert(x["tz"])).as_unit(x["unit"])
    return bytes.fromhex(x["bytes"])


def _dtype_to_json(dtype: Any) -> Any:
    if isinstance(dtype, pd.CategoricalDtype):
        return {"categories": _labels_to_json(dtype.categories), "ordered": bool(dtype.ordered)}
    return str(dtype)


def _labels_to_json(labels: pd.Index | pd.Series | None) -> dict | None:
    """An Index (or a Series: a table column) with its dtype and name; a RangeIndex stays one."""
    if labels is None:
        return None
    if isinstance(labels, pd.RangeIndex):
        return {"range": [labels.start, labels.stop, labels.step], "name": _label_to_json(labels.name)}
    return {"values": [_label_to_json(v) for v in labels], "dtype": _dtype_to_json(labels.dtype),
            "name": _label_to_json(labels.name)}


def _values_from_json(d: dict) -> tuple[Any, Any]:
    """``(values, dtype)`` of a :func:`_labels_to_json` form; object values as an object array (so that
    tuples stay labels, not the levels of a MultiIndex)."""
    values = [_label_from_json(v) for v in d["values"]]
    dtype = d["dtype"]
    if isinstance(dtype, dict):
        return values, pd.CategoricalDtype(_labels_from_json(dtype["categories"]), ordered=dtype["ordered"])
    if dtype == "object":
        arr = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            arr[i] = v
        return arr, object
    return values, dtype


def _labels_from_json(d: dict | None) -> pd.Index | None:
    if d is None:
        return None
    name = _label_from_json(d["name"])
    if "range" in d:
        return pd.RangeIndex(*d["range"], name=name)
    values, dtype = _values_from_json(d)
    return pd.Index(values, dtype=dtype, name=name, tupleize_cols=False)


def _frame_to_json(t: pd.DataFrame | None) -> dict | None:
    if t is None:
        return None
    return {"index": _labels_to_json(t.index), "columns": _labels_to_json(t.columns),
            "data": [_labels_to_json(t.iloc[:, i]) for i in range(t.shape[1])]}


def _frame_from_json(d: dict | None) -> pd.DataFrame | None:
    if d is None:
        return None
    index = _labels_from_json(d["index"])
    cols = {}
    for i, col in enumerate(d["data"]):
        values, dtype = _values_from_json(col)
        cols[i] = pd.Series(values, dtype=dtype, index=index)  # a Series keeps an object dtype, an array not
    out = pd.DataFrame(cols, index=index)
    out.columns = _labels_from_json(d["columns"])
    return out


_FEWER_HINT = {
    "Rankings.from_long": ", or add the other options they showed (rows with a NaN rank and partial=True).",
    "Rankings.from_wide": ", or list every option they showed in the shown= column.",
    "Rankings.from_scores": " (a group with one rating ranks nothing), e.g. keep the groups with two or more: "
                            "df[df.groupby(keys)[option].transform('size') > 1].",
}


def _check_rankings(items: Items, code: np.ndarray, R: int, where: str) -> None:
    """Each option once per ranking; at least one ranked item; at least two shown items."""
    ids, r = items.ids, items.ranking

    def rows(mask):  # the source rows of the flagged items, where rows are not the rankings
        return "" if items.rows is None else f" ({_rows(items.rows, mask)})"

    dup = pd.DataFrame({"r": r, "o": code}).duplicated(keep=False).to_numpy()
    if dup.any():
        bad = pd.unique(r[dup])
        first = np.flatnonzero(dup)[0]
        raise DataError(f"{where}: the same option appears more than once within {len(bad)} ranking(s) "
                        f"{_fmt(ids[bad])} (e.g. {_py(items.option.iloc[first])!r} in ranking "
                        f"{_py(ids[r[first]])!r}){rows(dup)}. Each shown option appears once in a ranking: "
                        "remove or merge the duplicates (a tie is two options with the same rank).")
    n_ranked = np.bincount(r[~np.isnan(items.key)], minlength=R)
    if (n_ranked == 0).any():
        bad = n_ranked == 0
        raise DataError(f"{where}: {int(bad.sum())} ranking(s) {_fmt(ids[bad])} rank nothing (no item has a "
                        f"rank){rows(bad[r])}. A ranking needs at least one ranked item: rank them or remove "
                        "those rankings.")
    n_shown = np.bincount(r, minlength=R)
    if (n_shown < 2).any():
        bad = n_shown < 2
        raise DataError(f"{where}: {int(bad.sum())} ranking(s) {_fmt(ids[bad])} show fewer than 2 options"
                        f"{rows(bad[r])}; a ranking orders at least two different options. Remove them"
                        f"{_FEWER_HINT.get(where, '.')}")
