"""Comparisons read from a Parquet dataset in user-aligned chunks, without holding the whole table.

A dataset is a directory of Parquet files (as ``pyarrow`` or ``DataFrame.to_parquet`` write them),
one row per judgement, **ordered by user** (a user's rows contiguous, e.g. written from
``df.sort_values("user")``), with columns for the two options, the outcome (1 = ``a`` preferred,
0 = ``b`` preferred, 0.5 = tie), the user, per-comparison option features ``<name>_a`` /
``<name>_b`` and user covariates (columns constant within each user, e.g. an Arena judge's region).
:class:`ParquetComparisons` scans it once, batch by batch (only the named columns are read), to
encode options and users, count each user's judgements and validate every row; errors name the file
and the row within it. :meth:`ParquetComparisons.chunks` then streams the judgements again as
consecutive groups of whole users in the grouped (user, feature, slot) layout of
:meth:`bayespref.Hierarchical.by_user_arrays` (padded, with a mask), so that a fit can visit users
chunk by chunk with peak memory set by the chunk, not the table: ``bp.fit(bp.Hierarchical(), pc,
method="svi", user_batch_size=B)`` fits by SVI on minibatches of users drawn chunk by chunk
(:func:`bayespref.inference.engine.run_svi_stream`); the fit's ``fit.data`` is the reader itself.

Needs the ``parquet`` extra (``pip install "bayespref[parquet]"``, pyarrow).
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from bayespref.errors import DataError


class StreamedData(DataError, AttributeError):
    """What needs the comparisons in memory, asked of a :class:`ParquetComparisons` (a DataError; an
    AttributeError too, so ``hasattr`` answers False)."""


def _pyarrow():
    try:
        import pyarrow.dataset as ds
    except ImportError:  # pragma: no cover - the extra is not installed
        raise DataError("Reading Parquet needs pyarrow: pip install 'bayespref[parquet]'.") from None
    return ds


@dataclasses.dataclass
class ParquetComparisons:
    """A Parquet dataset of pairwise comparisons, scanned once and streamed in user-aligned chunks.

    Parameters
    ----------
    path : path
        A directory of ``.parquet`` files (or one file).
    a, b, outcome, user : str
        Column names. ``outcome``: 1 (``a`` preferred), 0 (``b`` preferred) or 0.5 (a tie, for a
        model with ``ties=True``).
    features : sequence of str
        Option features, read from the columns ``<name>_a`` and ``<name>_b``.
    user_covariates : sequence of str
        User covariates: columns whose value is the same in every row of a user (checked). Numeric
        columns enter as they are, text or categorical columns as one-hot columns with the first
        level (in sorted order) dropped, as in :meth:`bayespref.Comparisons.from_frame`; the
        (users, covariates) design is held in memory (``covariate_design``, ``covariate_names``).
    batch_rows : int
        Rows per record batch read from disk (the scan's and the stream's unit of memory).

    Examples
    --------
    >>> pc = ParquetComparisons("judgements/", a="a", b="b", outcome="y", user="u",
    ...                         features=["len"])                                # doctest: +SKIP
    >>> for chunk in pc.chunks(users=5000): ...                                  # doctest: +SKIP

    An Arena table (rows ordered by judge, outcome 1 / 0 / 0.5, the judge's region in every row):

    >>> battles = ParquetComparisons("battles/", a="model_a", b="model_b", outcome="outcome",
    ...                              user="judge", user_covariates=["region"])   # doctest: +SKIP
    >>> bp.fit(bp.Hierarchical(varying="worths", covariates=["region"], ties=True),
    ...        battles)                             # Laplace, one pass per evaluation  # doctest: +SKIP
    """

    path: object
    a: str = "a"
    b: str = "b"
    outcome: str = "outcome"
    user: str = "user"
    features: tuple = ()
    user_covariates: tuple = ()
    batch_rows: int = 1 << 18

    def __post_init__(self):
        self.path = pathlib.Path(self.path)
        self.features = tuple(self.features)
        self.user_covariates = ((self.user_covariates,) if isinstance(self.user_covariates, str)
                                else tuple(self.user_covariates))
        if not self.path.exists():
            raise DataError(f"{self.path}: no such Parquet file or directory.")
        self._scan()

    # -- reading -----------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return ([self.a, self.b, self.outcome, self.user] + [f"{f}_{s}" for f in self.features for s in "ab"]
                + list(self.user_covariates))

    def _batches(self):
        """(file, first row of the batch within the file, batch as a dict of numpy arrays), in order."""
        ds = _pyarrow()
        dataset = ds.dataset(str(self.path), format="parquet")
        for frag in sorted(dataset.get_fragments(), key=lambda f: f.path):
            names = set(frag.physical_schema.names)
            missing = [c for c in self.columns if c not in names]
            if missing:
                raise DataError(f"{frag.path}: no column(s) {missing} (it has {sorted(names)}). Name the columns "
                                "with a=, b=, outcome=, user=, features= (features read from <name>_a, <name>_b).")
            row = 0
            for batch in frag.to_batches(columns=self.columns, batch_size=self.batch_rows):
                cols = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in self.columns}
                for c in self.columns:
                    nulls = batch.column(c).null_count
                    if nulls:
                        bad = np.flatnonzero(np.asarray(batch.column(c).is_null()))[:5] + row
                        raise DataError(f"{frag.path}: column {c!r} is empty (null) in {nulls} row(s), e.g. rows "
                                        f"{bad.tolist()} of the file. Drop or fill them before writing.")
                yield frag.path, row, cols
                row += batch.num_rows

    def _scan(self) -> None:
        import pandas as pd

        options = pd.Index([])
        users, counts, cov_rows = [], [], []
        outcomes = np.zeros(3, np.int64)   # judgements won by b, by a, ties (codes 0, 1, 2)
        last_user, last_cov = None, None
        n = 0
        for file, row, cols in self._batches():
            self._validate(file, row, cols)
            outcomes += np.bincount(self._codes(cols), minlength=3)
            new = pd.Index(pd.unique(np.concatenate([cols[self.a], cols[self.b]]))).difference(options)
            options = options.append(new)
            u = cols[self.user]
            starts = np.concatenate([[0], np.flatnonzero(u[1:] != u[:-1]) + 1])
            labels = u[starts]
            sizes = np.diff(np.concatenate([starts, [len(u)]]))
            goes_on = last_user is not None and labels[0] == last_user  # the previous batch's user goes on
            if self.user_covariates and len(u):
                cov = pd.DataFrame({c: cols[c] for c in self.user_covariates})
                self._check_constant(file, row, cov, u, np.repeat(starts, sizes), sizes[0],
                                     last_cov if goes_on else None)
                last_cov = cov.iloc[[-1]]
                cov_rows.append(cov.iloc[starts])
            if goes_on:
                counts[-1] += int(sizes[0])
                labels, sizes, starts = labels[1:], sizes[1:], starts[1:]
                if cov_rows:
                    cov_rows[-1] = cov_rows[-1].iloc[1:]
            users.extend(labels.tolist())
            counts.extend(sizes.tolist())
            if len(u):
                last_user = u[-1]
            n += len(u)
        seen = pd.Index(users)
        if not seen.is_unique:
            dup = seen[seen.duplicated()][:5].tolist()
            raise DataError(f"{self.path}: the rows of user(s) {dup} are not contiguous; the stream needs the "
                            "judgements ordered by user (write df.sort_values(user) to Parquet).")
        if n == 0:
            raise DataError(f"{self.path}: no rows.")
        from bayespref.data.validation import _sorted_index

        self.options = _sorted_index(pd.Series(options))   # sorted, as Comparisons sorts its options
        self.users = seen
        self.counts = np.asarray(counts, dtype=np.int64)
        self.n_comparisons = n
        self.max_per_user = int(self.counts.max())
        #: judgements won by b, won by a, and ties (outcome codes 0, 1, 2)
        self.outcome_counts = outcomes
        self.has_ties = bool(outcomes[2])
        self._code_covariates(cov_rows)

    def _check_constant(self, file, row, cov, u, first, n_first, last_cov) -> None:
        """Raise unless each user's covariates are the same in all its rows of the batch (``first``: the
        row where each row's user starts) and, when the previous batch's last user goes on
        (``last_cov``, that user's covariates), in its ``n_first`` rows here too."""
        for c in self.user_covariates:
            v = cov[c].to_numpy()
            if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                bad = np.flatnonzero(~np.isfinite(v))[:5]
                raise DataError(f"{file}: user covariate {c!r} is not finite in rows "
                                f"{(bad + row).tolist()} of the file.")
            differs = v != v[first]
            if last_cov is not None:
                differs[:n_first] |= v[0] != last_cov[c].to_numpy()[0]
            if differs.any():
                i = int(np.flatnonzero(differs)[0])
                raise DataError(f"{file}: user covariate {c!r} differs within user {u[i]!r} (row "
                                f"{i + row} of the file); a user covariate must be the same in all of a user's "
                                "rows. Fix the column, or use it as an option feature instead.")

    def _code_covariates(self, cov_rows) -> None:
        """The users' covariate design (users, covariates), coded as :meth:`Comparisons.from_frame` codes
        user covariates (numeric as is, categories one-hot with the first level dropped)."""
        import pandas as pd

        from bayespref.data.validation import _apply_design, _design_spec

        if not self.user_covariates:
            self.covariate_design, self.covariate_names, self.user_table = np.zeros((self.n_users, 0)), (), None
            return
        table = pd.concat(cov_rows, ignore_index=True)
        table.index = self.users
        design, names = _design_spec(table, str(self.path))
        self.user_table = table
        self.covariate_design = _apply_design(table, design, str(self.path))
        self.covariate_names = tuple(names)

    def _codes(self, cols) -> np.ndarray:
        """Outcome codes of a batch: 1 (a preferred), 0 (b preferred), 2 (tie: outcome 0.5)."""
        y = np.asarray(cols[self.outcome], dtype=float)
        return np.where(y == 0.5, 2, y).astype(np.int32)

    def _validate(self, file, row, cols) -> None:
        y = np.asarray(cols[self.outcome])
        bad = ~np.isin(y, (0, 1, 0.5)) if y.dtype.kind in "biuf" else np.ones(len(y), bool)
        if bad.any():
            idx = np.flatnonzero(bad)[:5]
            raise DataError(f"{file}: outcome column {self.outcome!r} must be 1 (a preferred), 0 (b preferred) or 0.5 "
                            f"(tie); rows {(idx + row).tolist()} of the file hold {y[idx].tolist()}.")
        same = cols[self.a] == cols[self.b]
        if same.any():
            idx = np.flatnonzero(same)[:5]
            raise DataError(f"{file}: rows {(idx + row).tolist()} compare an option with itself.")
        for f in self.features:
            for s in "ab":
                x = np.asarray(cols[f"{f}_{s}"], dtype=float)
                if not np.all(np.isfinite(x)):
                    idx = np.flatnonzero(~np.isfinite(x))[:5]
                    raise DataError(f"{file}: feature column {f}_{s!s} is not finite in rows {(idx + row).tolist()} "
                                    "of the file.")

    # -- sizes (what a streamed Fit's ``fit.data`` answers) ------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def n_obs(self) -> int:
        return self.n_comparisons

    obs_dim = "comparison"

    @property
    def feature_names(self) -> tuple:
        return self.features

    def __getattr__(self, name):
        # only for attributes a ParquetComparisons lacks: what needs the comparisons in memory
        if name.startswith("_"):
            raise AttributeError(name)
        raise StreamedData(
            f"ParquetComparisons has no {name!r}: the comparisons stay on disk ({self.path}). A fit on them "
            "(bp.fit(..., method='svi' or 'laplace')) offers summary() and the posterior draws; for predictions on the "
            "training rows, posterior predictive checks, LOO or saving, load the rows into a bayespref.Comparisons.")


    def chunks(self, users: int, slots: int | None = None, dtype=np.float32):
        """Yield consecutive groups of ``users`` whole users in the grouped layout.

        Each chunk is a dict: ``users`` (C,) the users' indices (0 .. n_users - 1, in file order),
        ``a`` and ``b`` (C, J) the options' codes (positions in ``options``), ``dx`` (C, F, J)
        :math:`x_a - x_b`, ``y`` (C, J) outcome codes (1, 0, 2 = tie), ``mask`` (C, J); every chunk
        has the same shape (J = ``slots`` or the largest user's count; the last chunk is padded with
        users of index -1 and empty masks), so a program compiled for one chunk serves them all.
        """
        j = self.max_per_user if slots is None else int(slots)
        if j < self.max_per_user:
            raise DataError(f"slots={j} is below the largest user's {self.max_per_user} judgements.")
        bounds = np.concatenate([[0], np.cumsum(self.counts)])
        keys = ("dx", "y", "a", "b")
        buf = {k: [] for k in keys}
        have, first_user = 0, 0
        for _, _, cols in self._batches():
            dx = np.stack([np.asarray(cols[f"{f}_a"], dtype) - np.asarray(cols[f"{f}_b"], dtype)
                           for f in self.features], axis=1) if self.features else np.zeros((len(cols[self.a]), 0), dtype)
            buf["dx"].append(dx)
            buf["y"].append(self._codes(cols))
            for k, col in (("a", self.a), ("b", self.b)):
                buf[k].append(self.options.get_indexer(cols[col]).astype(np.int32))
            have += len(dx)
            while first_user < self.n_users:
                last = min(first_user + users, self.n_users)
                need = bounds[last] - bounds[first_user]
                if have < need:
                    break
                rows = {k: np.concatenate(buf[k]) for k in keys}
                yield self._layout(first_user, last, users, j, {k: v[:need] for k, v in rows.items()}, dtype)
                buf = {k: [v[need:]] for k, v in rows.items()}
                have -= need
                first_user = last

    def _layout(self, lo, hi, c, j, rows, dtype) -> dict:
        counts = self.counts[lo:hi]
        row = np.repeat(np.arange(hi - lo), counts)
        slot = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
        out = {"dx": np.zeros((c, len(self.features), j), dtype), "mask": np.zeros((c, j), bool)}
        out["dx"][row, :, slot] = rows["dx"]
        for k in ("y", "a", "b"):
            out[k] = np.zeros((c, j), np.int32)
            out[k][row, slot] = rows[k]
        out["mask"][row, slot] = True
        ids = np.full(c, -1, np.int64)
        ids[: hi - lo] = np.arange(lo, hi)
        return {"users": ids, **out}


__all__ = ["ParquetComparisons", "StreamedData"]
