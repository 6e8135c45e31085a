"""Validation and encoding helpers of the data layer: every check of :class:`~bayespref.Comparisons`
and of the readers lives here, with the message helpers that make their errors name the column, the
offending rows or ids, and the fix.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref.errors import DataError, DataWarning

TIE = "tie"
SHOW = 5  # how many offending rows / ids an error message lists

# ---------------------------------------------------------------------------------------------
# message helpers
# ---------------------------------------------------------------------------------------------
def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _fmt(values: Any, k: int = SHOW) -> str:
    """``[x, y, z] and 4 more``: the first ``k`` values of an error listing."""
    vals = list(values)
    shown = ", ".join(repr(_py(v)) for v in vals[:k])
    more = f" and {len(vals) - k} more" if len(vals) > k else ""
    return f"[{shown}]{more}"


def _distinct(s: pd.Series) -> list:
    """Distinct values of ``s`` for a message (unhashable values are listed as they come)."""
    try:
        return list(pd.unique(s.astype(object)))
    except TypeError:
        return list(s)


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    return f"{int(np.sum(mask))} row(s) {_fmt(index[np.asarray(mask, dtype=bool)])}"


def _suggest(name: Any, columns: pd.Index) -> str:
    names = {str(c): c for c in columns}
    close = difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(names[c]) for c in close)}?" if close else ""
    return f"{hint} The frame has columns {_fmt(columns, 12)}."


def _free_name(columns: pd.Index, name: str) -> str:
    """``name``, or ``name_``, ``name__``... : a column name not already in ``columns``."""
    while name in columns:
        name += "_"
    return name


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def _check_finite(values: Any, what: str, labels: pd.Index, where: str, kind: str = "row") -> np.ndarray:
    """``values`` (one entry or row per label) as float64 when every one is finite; otherwise a
    DataError naming ``what`` (e.g. ``"feature column 'len_a'"``) and the offending rows
    (``kind="row"``) or ids (``kind="option"``, ``"user"``, ...) by their ``labels``. The one check of
    numbers entering the package: features, covariates, option and user tables, counts, scores, and
    the same at encode / predict time."""
    v = np.asarray(values, dtype=np.float64)
    for mask, problem, fix in ((np.isnan(v), "missing values (NaN)", "Fill or remove them; nothing is imputed."),
                               (np.isinf(v), "infinite values (inf or -inf)",
                                "Numbers must be finite: fix or remove them; nothing is clipped or imputed.")):
        if mask.any():
            mask = mask.reshape(len(v), -1).any(axis=1) if v.ndim > 1 else mask  # a row with any bad value
            at = (f"in {_rows(labels, mask)}" if kind == "row"
                  else f"for {int(mask.sum())} {kind}(s) {_fmt(labels[mask])}")
            raise DataError(f"{where}: {what} has {problem} {at}. {fix}")
    return v


def _check_columns_unique(columns: pd.Index, where: str, what: str = "the frame") -> None:
    """Refuse duplicated column names (a column name must say which column it is)."""
    if not columns.is_unique:
        dup = pd.unique(columns[columns.duplicated()])
        raise DataError(f"{where}: {what} has duplicated column name(s) {_fmt(dup)}; every column needs its own "
                        "name. Rename or drop the duplicates (e.g. df.loc[:, ~df.columns.duplicated()]).")


def _check_frame(df: Any, where: str, obs: str = "comparisons",
                 index_role: str = "they become the comparison ids") -> None:
    """A DataFrame with unique column names, at least one row and unique row labels; ``obs`` and
    ``index_role`` say in messages what the rows hold and what their labels are used for."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}. "
                        "Wrap your data with pd.DataFrame(...).")
    _check_flat(df, where)
    _check_columns_unique(df.columns, where)
    if len(df) == 0:
        raise DataError(f"{where}: the frame is empty (0 rows); there are no {obs} to use.")
    if not df.index.is_unique:
        dup = df.index[df.index.duplicated()]
        raise DataError(f"{where}: the row labels (index) are not unique, e.g. {_fmt(pd.unique(dup))}; "
                        f"{index_role}. Use df.reset_index(drop=True).")


def _check_flat(df: pd.DataFrame, where: str) -> None:
    """One level of column names: with a MultiIndex a name picks several columns (or none)."""
    if isinstance(df.columns, pd.MultiIndex):
        raise DataError(f"{where}: the frame has {df.columns.nlevels} levels of column names (a MultiIndex), "
                        "so a column name may pick several columns; flatten them first, e.g. "
                        "df.columns = ['_'.join(map(str, c)) for c in df.columns].")


def _has_column(df: pd.DataFrame, col: Any) -> bool:
    """Whether ``col`` names a column of ``df`` (False for what cannot be a name: a list, a dict)."""
    try:
        return col in df.columns
    except TypeError:  # unhashable, e.g. a list passed as a column name
        return False


def _require_columns(df: pd.DataFrame, roles: dict[str, Any], where: str, required: tuple = ()) -> None:
    """Every mapped column exists, and no column plays two roles; the ``required`` roles must be
    mapped (None is not a column for them)."""
    seen: dict[Any, str] = {}
    for role in required:
        if roles.get(role) is None:
            raise DataError(f"{where}: {role}=None; name the column that holds the {role} values.")
    for role, col in roles.items():
        if col is None and "[" in role:  # an item of a list of names (features[0], keep[1], ...)
            raise DataError(f"{where}: {role}=None is not a column name; list the names of columns.")
        if col is None:
            continue
        if not _has_column(df, col):
            raise DataError(f"{where}: column {col!r} (given as {role}=) is not in the frame."
                            f"{_suggest(col, df.columns)} Pass the right column name as {role}=.")
        if col in seen:
            raise DataError(f"{where}: the same column {col!r} is mapped to both {seen[col]} and "
                            f"{role}; each role needs its own column.")
        seen[col] = role


def _check_ids(df: pd.DataFrame, col: Any, role: str, where: str) -> pd.Series:
    s = df[col]
    na = s.isna().to_numpy()
    if na.any():
        raise DataError(f"{where}: column {col!r} ({role} ids) has missing values (NaN) in "
                        f"{_rows(df.index, na)}. Ids are never dropped or guessed: remove or fill "
                        "those rows first.")
    _check_hashable(s, f"column {col!r} ({role} ids)", where)
    return s


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _check_hashable(values: pd.Series | pd.Index, what: str, where: str, labels: pd.Index | None = None,
                    kind: str = "row") -> None:
    """Refuse values that cannot be labels (lists, dicts, arrays: unhashable), naming the rows (or ids).

    Only object columns can hold them; their values are hashed once in C (``pd.unique``) and looked at
    one by one only when that fails."""
    if values.dtype != object:
        return
    try:
        pd.unique(values)
    except TypeError:
        bad = np.fromiter((not _hashable(v) for v in values), dtype=bool, count=len(values))
        labels = (values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(values))) \
            if labels is None else labels
        example = next(v for v, b in zip(values, bad) if b)
        at = f"in {_rows(labels, bad)}" if kind == "row" else f"at positions {_fmt(np.flatnonzero(bad))}"
        raise DataError(f"{where}: {what} holds values that cannot be labels (lists, dicts or arrays, e.g. "
                        f"{example!r} of type {type(example).__name__}) {at}. Use strings or numbers: "
                        "e.g. join a list into one string.") from None


def _names_argument(value: Any, name: str, where: str, *, frame_ok: bool = False) -> tuple | None:
    """A names argument (``features=``, ``keep=``, ``scores=``...) as a tuple of names: one name (a
    string) or a list / tuple of them; None stays None. Anything else is a DataError."""
    if value is None or (frame_ok and isinstance(value, pd.DataFrame)):
        return value
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, pd.Index)):
        return tuple(value)
    table = " or a DataFrame" if frame_ok else ""
    raise DataError(f"{where}: {name}= must be a list of column names (or one name){table}; got "
                    f"{type(value).__name__} {value!r}.")


def _parse_outcome(s: pd.Series, col: Any, where: str) -> np.ndarray:
    """Outcomes as float64 1 / 0 / 0.5 from 0, 0.5, 1, ``"tie"`` or booleans; anything else fails."""
    na = s.isna().to_numpy()
    if na.any():
        raise DataError(f"{where}: column {col!r} (outcome) has missing values (NaN) in "
                        f"{_rows(s.index, na)}. Outcomes are never dropped silently: remove those "
                        f"rows (df.dropna(subset=[{col!r}])) or code them (0.5 or 'tie' = no preference).")
    if ptypes.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64)
    if ptypes.is_numeric_dtype(s.dtype):
        val = s.to_numpy(dtype=np.float64)
    else:  # object / string / category: "tie" strings and Python numbers or booleans
        obj = s.astype(object)
        is_str = obj.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        val = np.full(len(s), np.nan)
        val[is_str & (obj == TIE).to_numpy(dtype=bool)] = 0.5
        if (~is_str).any():
            num = pd.to_numeric(obj[~is_str], errors="coerce")
            val[~is_str] = num.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(val, (0.0, 0.5, 1.0))
    if bad.any():
        raise DataError(f"{where}: column {col!r} (outcome) has values outside {{0, 0.5, 1, 'tie', "
                        f"True, False}}: {_fmt(_distinct(s[bad]))} in "
                        f"{_rows(s.index, bad)}. Code 1 = a preferred, 0 = b preferred, 0.5 or 'tie' "
                        "= no preference; strings such as '1' are not converted, cast them first.")
    return val


def _sorted_index(values: pd.Series) -> pd.Index:
    """Sorted unique labels; mixed types (ints and strings) are sorted by their text."""
    uniq = pd.unique(values)
    try:
        return pd.Index(uniq).sort_values()
    except TypeError:
        uniq = np.asarray(uniq, dtype=object)
        keys = [(str(v), type(v).__name__) for v in uniq]  # loop over labels, not rows
        order = sorted(range(len(uniq)), key=keys.__getitem__)
        return pd.Index(uniq[order], dtype=object)


def _check_table(table: pd.DataFrame, ids: pd.Index, *, what: str, kind: str, where: str,
                 numeric: bool, allow_extra: bool = False, labels: pd.Series | None = None,
                 column: Any = None, obs: str = "comparisons") -> pd.DataFrame:
    """Validate a per-option / per-user table indexed by id; return it in ``ids`` order.

    ``labels`` (the id of each comparison, from data column ``column``) lets a missing-id error name
    the comparisons (rows) that need the missing ids; ``obs`` names the observations in messages
    (``"comparisons"``, ``"rankings"``).
    """
    idx = table.index
    _check_columns_unique(table.columns, where, f"the {what} table")
    _check_hashable(idx, f"the index of the {what} table", where, kind="position")
    if idx.hasnans:
        raise DataError(f"{where}: the {what} table has missing (NaN) {kind} ids in its index; "
                        f"label every row with its {kind} id.")
    if not idx.is_unique:
        dup = pd.unique(idx[idx.duplicated()])
        raise DataError(f"{where}: the {what} table has duplicate rows for {kind}(s) {_fmt(dup)}; "
                        f"each {kind} needs exactly one row (e.g. table[~table.index.duplicated()]).")
    for c in table.columns:
        s = table[c]
        if numeric and not ptypes.is_numeric_dtype(s.dtype):
            raise DataError(f"{where}: column {c!r} of the {what} table is not numeric (dtype "
                            f"{s.dtype}); features must be numbers: convert it with astype(float) "
                            "or one-hot encode it (pd.get_dummies).")
        na = s.isna().to_numpy()
        if na.any():
            raise DataError(f"{where}: the {what} table has missing values (NaN) in column {c!r} "
                            f"for {kind}(s) {_fmt(idx[na])}. Fill or remove them; nothing is imputed.")
        _check_hashable(s, f"column {c!r} of the {what} table", where)
        if ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype):
            _check_finite(s.to_numpy(dtype=np.float64), f"column {c!r} of the {what} table", idx, where, kind)
    missing = ids[~ids.isin(idx)]
    dtype_hint = (f" (the table index has dtype {idx.dtype}, the {kind} ids have dtype {ids.dtype})"
                  if not ids.isin(idx).any() else "")
    if len(missing):
        source = f" of column {column!r}" if column is not None else ""
        rows = (f", in {_rows(labels.index, labels.isin(missing).to_numpy())}"
                if labels is not None else "")
        raise DataError(f"{where}: the {what} table has no row for {len(missing)} {kind}(s){source} that "
                        f"appear in the {obs}: {_fmt(missing)}{dtype_hint}{rows}. Add rows for "
                        f"them to the table, or remove those {obs}.")
    extra = idx[~idx.isin(ids)]
    if len(extra) and not allow_extra:
        raise DataError(f"{where}: the {what} table has rows for {len(extra)} unknown {kind} id(s) "
                        f"with no {obs}: {_fmt(extra)}. Keep only {kind}s that appear in the "
                        "data, e.g. table.loc[table.index.isin(ids)].")
    if allow_extra:
        return table
    out = table.iloc[idx.get_indexer(ids)]
    out.index = ids
    return out


def _features_from_columns(df: pd.DataFrame, names: tuple, suffixes: tuple[str, ...],
                           where: str) -> tuple[np.ndarray, ...]:
    """One float64 (rows, len(names)) array per suffix from the columns ``<name><suffix>``
    (``("_a", "_b")`` for comparisons, ``("",)`` for the per-item columns of rankings)."""
    cols = [[f"{n}{suf}" for n in names] for suf in suffixes]
    flat = [c for side in cols for c in side]
    missing = [c for c in flat if c not in df.columns]
    if missing:
        needs = " and ".join(f"'<name>{suf}'" for suf in suffixes)
        raise DataError(f"{where}: features={list(names)!r} needs columns "
                        f"{needs} for every feature; missing "
                        f"{_fmt(missing)}.{_suggest(missing[0], df.columns)} For features that belong "
                        "to options, pass a per-option DataFrame as features= instead.")
    for c in flat:
        s = df[c]
        if not ptypes.is_numeric_dtype(s.dtype):
            raise DataError(f"{where}: feature column {c!r} is not numeric (dtype {s.dtype}); "
                            "convert it with astype(float) or one-hot encode it (pd.get_dummies).")
        _check_finite(s.to_numpy(dtype=np.float64, na_value=np.nan), f"feature column {c!r}", df.index, where)
    return tuple(df[c].to_numpy(dtype=np.float64).reshape(len(df), len(names)) for c in cols)


def _table_lookup(table: pd.DataFrame, labels: pd.Series) -> np.ndarray:
    pos = table.index.get_indexer(labels)
    return table.to_numpy(dtype=np.float64)[pos].reshape(len(labels), table.shape[1])


def _covariate_columns(df: pd.DataFrame, cols: tuple, user_codes: np.ndarray, users: pd.Index,
                       where: str) -> pd.DataFrame:
    """Per-user table from covariate columns of ``df`` that must be constant within each user."""
    _require_columns(df, {f"user_covariates[{i}]": c for i, c in enumerate(cols)}, where)
    for c in cols:
        na = df[c].isna().to_numpy()
        if na.any():
            raise DataError(f"{where}: covariate column {c!r} has missing values (NaN) in "
                            f"{_rows(df.index, na)}. Fill or remove them; nothing is imputed.")
        _check_hashable(df[c], f"covariate column {c!r}", where)
        if ptypes.is_numeric_dtype(df[c].dtype) and not ptypes.is_bool_dtype(df[c].dtype):
            _check_finite(df[c].to_numpy(dtype=np.float64), f"covariate column {c!r}", df.index, where)
    grouped = df[list(cols)].groupby(user_codes, sort=True)
    nunique = grouped.nunique()
    for c in cols:
        varying = nunique.index[nunique[c].to_numpy() > 1]
        if len(varying):
            raise DataError(f"{where}: covariate column {c!r} varies within user(s) "
                            f"{_fmt(users[varying])}; a user covariate must be constant for each "
                            "user. Fix the data, or model it as a per-comparison feature.")
    table = grouped.first()
    table.index = users[table.index.to_numpy()]
    return table


def _user_covariates(user_covariates: Any, df: pd.DataFrame, user_idx: np.ndarray, users: pd.Index,
                     where: str, *, labels: pd.Series | None = None, column: Any = None,
                     obs: str = "comparisons") -> tuple[pd.DataFrame | None, np.ndarray, tuple, dict]:
    """The user covariates of a reader: ``(user_table, covariates (U, P), covariate_names, spec)``.

    ``user_covariates`` is None, a table indexed by user id (checked by :func:`_check_table`; ``labels``
    and ``column`` name the rows of users missing from it) or names of columns of ``df`` constant
    within each user (``user_idx``: the user of each row of ``df``). ``spec`` holds ``covariate_mode``,
    ``covariate_columns`` and ``design`` (how new data are coded the same way)."""
    if user_covariates is None:
        return None, np.zeros((len(users), 0)), (), {}
    if isinstance(user_covariates, pd.DataFrame):
        user_table = _check_table(user_covariates, users, what="user covariate", kind="user", where=where,
                                  numeric=False, labels=labels, column=column, obs=obs)
        mode = "table"
    elif isinstance(user_covariates, (list, tuple, str)):
        cols = (user_covariates,) if isinstance(user_covariates, str) else tuple(user_covariates)
        user_table = _covariate_columns(df, cols, user_idx, users, where)
        mode = "columns"
    else:
        raise DataError(f"{where}: user_covariates must be a list of column names or a "
                        "DataFrame indexed by user id; got "
                        f"{type(user_covariates).__name__}.")
    design, names = _design_spec(user_table, where)
    spec = {"covariate_mode": mode, "covariate_columns": tuple(user_table.columns), "design": design}
    return user_table, _apply_design(user_table, design, where), names, spec


def _design_spec(table: pd.DataFrame, where: str) -> tuple[tuple, tuple[str, ...]]:
    """How each covariate becomes design columns: numeric as is, categorical one-hot (first dropped)."""
    spec, names = [], []
    for c in table.columns:
        s = table[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            observed = set(pd.unique(s.astype(object)))
            levels = tuple(v for v in s.cat.categories if v in observed)  # declared order
        elif (ptypes.is_bool_dtype(s.dtype) or ptypes.is_object_dtype(s.dtype)
              or ptypes.is_string_dtype(s.dtype)):
            levels = tuple(_sorted_index(s.astype(object)))
        elif ptypes.is_numeric_dtype(s.dtype):
            spec.append((c, None))
            names.append(str(c))
            continue
        else:
            raise DataError(f"{where}: covariate {c!r} has dtype {s.dtype}, which is neither numeric "
                            "nor categorical; convert it to numbers or to strings/categories.")
        spec.append((c, levels))
        names.extend(f"{c}[{lv}]" for lv in levels[1:])
    return tuple(spec), tuple(names)


def _apply_design(table: pd.DataFrame, spec: tuple, where: str) -> np.ndarray:
    blocks = [np.zeros((len(table), 0))]
    for col, levels in spec:
        s = table[col]
        if levels is None:
            if ptypes.is_bool_dtype(s.dtype) or not ptypes.is_numeric_dtype(s.dtype):
                raise DataError(f"{where}: covariate {col!r} must be numeric as in the training data "
                                f"(got dtype {s.dtype}).")
            blocks.append(s.to_numpy(dtype=np.float64)[:, None])
            continue
        codes = pd.Index(levels, dtype=object).get_indexer(s.astype(object))
        if (codes < 0).any():
            bad = pd.unique(s[codes < 0].astype(object))
            raise DataError(f"{where}: covariate {col!r} has level(s) {_fmt(bad)} unseen in the "
                            f"training data (levels {_fmt(levels, 10)}) for user(s) "
                            f"{_fmt(table.index[codes < 0])}; the model has no effect for them.")
        blocks.append((codes[:, None] == np.arange(1, len(levels))).astype(np.float64))
    return np.hstack(blocks)


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Component label (smallest member) of each of ``n`` nodes: min-label propagation."""
    lab = np.arange(n)
    while True:
        m = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]  # pointer jumping: a node's label is a node of the same component
        if np.array_equal(new, lab):
            return lab
        lab = new


def _warn_if_disconnected(a: np.ndarray, b: np.ndarray, options: pd.Index) -> None:
    _, comp = np.unique(_components(a, b, len(options)), return_inverse=True)
    k = int(comp.max()) + 1
    if k == 1:
        return
    parts = []
    for c in range(min(k, 4)):
        members = options[comp == c]
        more = ", ..." if len(members) > 6 else ""
        parts.append("{" + ", ".join(str(m) for m in members[:6]) + more + "}")
    more = f" | ... ({k - 4} more)" if k > 4 else ""
    warnings.warn(f"The comparison graph is disconnected: {k} components: {' | '.join(parts)}{more}. "
                  "Priors make the model fittable, but only differences within a component are "
                  "identified (worths in different components are not comparable). Collect "
                  "comparisons that link the components, or model options through shared features.",
                  DataWarning, stacklevel=4)


def _positions(rows: Any, n: int, what: str = "comparison") -> np.ndarray:
    arr = np.asarray(rows)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise DataError(f"subset: a boolean mask needs one value per {what} ({n}), "
                            f"got shape {arr.shape}.")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError("subset: rows must be a boolean mask or integer positions, got "
                        f"{arr.dtype} with shape {arr.shape}.")
    if arr.min() < 0 or arr.max() >= n:
        raise DataError(f"subset: positions must lie in [0, {n}); got {_fmt(arr[(arr < 0) | (arr >= n)])}.")
    return arr.astype(np.int64)


def _n_test(test_size: float | int, n: int, what: str) -> int:
    """How many of ``n`` groups go to the test side."""
    if n < 2:
        raise DataError(f"Cannot split by {what}: the data have only {n} {what}(s).")
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        k = int(test_size)
    elif isinstance(test_size, float) and 0 < test_size < 1:
        k = min(max(int(round(test_size * n)), 1), n - 1)
    else:
        raise DataError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}.")
    if not 1 <= k <= n - 1:
        raise DataError(f"test_size={test_size!r} leaves no {what} on one side: there are {n} "
                        f"{what}s; ask for between 1 and {n - 1}.")
    return k


def _group_split(codes: np.ndarray, test_size: float | int, seed: int, by: str) -> np.ndarray:
    """Test mask of a random hold-out of ``test_size`` (share or count) of the groups ``codes``."""
    groups = np.unique(codes)
    k = _n_test(test_size, len(groups), by)
    held = np.random.default_rng(seed).permutation(groups)[:k]
    return np.isin(codes, held)


def _group_folds(codes: np.ndarray, by: str, k: int, seed: int) -> list[np.ndarray]:
    """Test masks of ``k`` folds that partition the groups ``codes`` at random."""
    groups = np.unique(codes)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= len(groups):
        raise DataError(f"kfold: k must be an integer between 2 and the number of {by}s "
                        f"({len(groups)}), got {k!r}.")
    folds = np.array_split(np.random.default_rng(seed).permutation(groups), k)
    return [np.isin(codes, fold) for fold in folds]
