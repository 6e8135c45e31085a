"""Checks of arguments: the one place where an option's type, range and meaning are checked.

Every option of a model spec (:class:`bayespref.models.ModelSpec`), of an inference method's
settings (:mod:`bayespref.inference.settings`) and of a TOML run spec (:mod:`bayespref.cli.runspec`)
is checked here, before anything is compiled, and a bad value raises a
:class:`~bayespref.ModelError` that names the argument, the value and what is allowed::

    chains=0 must be a whole number >= 1.
    BradleyTerry: worth_scale=-1.0 must be a finite number > 0 (a prior scale).

A class declares a table ``{field: rule}`` (:class:`Whole`, :class:`Real`, :class:`OneOf`,
:class:`Flag`) and calls :func:`check_fields` in ``__post_init__``; a field without a rule is
checked against its annotation (:func:`conforms`): strictly, so that a bool is not taken for a
number, a float not for a whole number and a string not for a bool (``"yes"`` is refused where
True/False is expected). The CLI reads its TOML values through the same classes, so a spec is
typed exactly as a call is.

Why not a library (pydantic, attrs validators)? The options are few kinds (whole numbers and reals
in a range, choices, flags, seeds), the specs are frozen standard dataclasses that normalise some
options in ``__post_init__``, some fields hold callables or JAX keys, and every error must be a
bayespref error in the package's wording with the allowed range; a library would add a dependency
and a translation layer for its own error type, for checks that fit in this module.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any

import numpy as np

from bayespref.errors import ModelError

INF = math.inf
#: seeds are whole numbers below this bound (JAX's PRNGKey keeps 32 bits: 2**32 would repeat seed 0)
SEED_BOUND = 2**32


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not _is_bool(value)


def fail(name: str, value: Any, allowed: str, *, error: type = ModelError, where: str = "") -> typing.NoReturn:
    """Raise ``error("<where><name>=<value> must be <allowed>.")``."""
    raise error(f"{where}{name}={value!r} must be {allowed}.")


# -- rules ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rule:
    """What a value may be; ``none``: None is allowed too; ``note``: why (shown after the range)."""

    none: bool = dataclasses.field(default=False, kw_only=True)
    note: str = dataclasses.field(default="", kw_only=True)

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, name: str, value, *, error: type = ModelError, where: str = ""):
        """``value`` if it is allowed, else raise ``error`` naming ``name``, the value and the range."""
        if (value is None and self.none) or (value is not None and self.accepts(value)):
            return value
        allowed = self.describe() + (" (or None)" if self.none else "") + (f" ({self.note})" if self.note else "")
        fail(name, value, allowed, error=error, where=where)


@dataclasses.dataclass(frozen=True)
class Whole(Rule):
    """A whole number (an int, not a bool or a float) in ``[low, high]``."""

    low: int = 0
    high: int | None = None

    def accepts(self, value) -> bool:
        return _is_whole(value) and value >= self.low and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.high is None:
            return f"a whole number >= {self.low}"
        return f"a whole number from {self.low} to {self.high}"


@dataclasses.dataclass(frozen=True)
class Real(Rule):
    """A finite number (an int or a float, not a bool, never NaN or inf) in the interval given."""

    low: float = -INF
    high: float = INF
    open_low: bool = False
    open_high: bool = False

    def accepts(self, value) -> bool:
        if not _is_real(value) or not math.isfinite(value):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def describe(self) -> str:
        if self.low == -INF and self.high == INF:
            return "a finite number"
        if self.high == INF:
            return f"a finite number {'>' if self.open_low else '>='} {self.low:g}"
        lo, hi = ("(" if self.open_low else "["), (")" if self.open_high else "]")
        return f"a number in {lo}{self.low:g}, {self.high:g}{hi}"


@dataclasses.dataclass(frozen=True)
class OneOf(Rule):
    """One of ``options``, compared with their type (``0`` is not ``False``, ``1`` not ``True``)."""

    options: tuple = ()

    def accepts(self, value) -> bool:
        try:
            return any(value is o or (type(value) is type(o) and value == o) for o in self.options)
        except (TypeError, ValueError):  # e.g. an array compared with a string
            return False

    def describe(self) -> str:
        return f"one of {self.options}"


@dataclasses.dataclass(frozen=True)
class Flag(Rule):
    """True or False (a bool; 0/1 and strings such as "yes" are refused)."""

    def accepts(self, value) -> bool:
        return _is_bool(value)

    def describe(self) -> str:
        return "True or False"


FLAG = Flag()
#: a prior scale or any other strictly positive number
POSITIVE = Real(0, INF, open_low=True)
NON_NEGATIVE = Real(0, INF)
FINITE = Real()
PROBABILITY_OPEN = Real(0, 1, open_low=True, open_high=True)


def seed(value, name: str = "seed", *, error: type = ModelError, where: str = ""):
    """``value`` if it is a seed: a whole number in ``[0, 2**32)`` or a JAX PRNG key (a typed key or
    the uint32 key data of ``jax.random.PRNGKey``); otherwise ``error`` naming ``name``."""
    if _is_whole(value) and 0 <= value < SEED_BOUND:
        return value
    dtype = str(getattr(value, "dtype", ""))
    if dtype.startswith("key<") or (dtype == "uint32" and getattr(value, "ndim", 0) >= 1):
        return value
    fail(name, value, f"a whole number from 0 to {SEED_BOUND - 1} or a JAX PRNG key (jax.random.key(0))",
         error=error, where=where)


# -- annotations -----------------------------------------------------------------------------------------
def conforms(value, hint) -> bool:
    """Whether ``value`` has the type ``hint`` (an annotation), strictly: ``bool`` is only a bool,
    ``int`` only a whole number (no bool, no float), ``float`` a real number (ints included, no bool),
    ``str`` only a string, ``Sequence[str]`` a string or a list/tuple of strings. Unknown kinds of
    annotation accept anything."""
    if hint is Any or hint is object:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(conforms(value, h) for h in args)
    if hint is bool:
        return _is_bool(value)
    if hint is int:
        return _is_whole(value)
    if hint is float:
        return _is_real(value)
    if hint is str:
        return isinstance(value, str)
    if hint in (dict, collections.abc.Mapping) or origin in (dict, collections.abc.Mapping):
        return isinstance(value, collections.abc.Mapping)
    if hint in (list, tuple, collections.abc.Sequence) or origin in (list, tuple, collections.abc.Sequence):
        seq = hint if origin is None else origin
        if isinstance(value, str):
            return seq is collections.abc.Sequence and (not args or conforms(value, args[0]))
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis) else None
        return item is None or all(conforms(v, item) for v in value)
    if hint is collections.abc.Callable or origin is collections.abc.Callable:
        return callable(value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def describe(hint) -> str:
    """A reader's name for an annotation: ``int | None`` -> "a whole number or None"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(describe(h) for h in args)
    names = {bool: "True or False", int: "a whole number", float: "a number", str: "a string",
             type(None): "None", None: "None", dict: "a table (dict)", list: "a list", tuple: "a tuple"}
    if hint in names:
        return names[hint]
    if origin in (list, tuple, collections.abc.Sequence):
        return f"a list of {describe(args[0]).removeprefix('a ')}s" if args else "a list"
    if origin in (dict, collections.abc.Mapping):
        return "a table (dict)"
    return getattr(hint, "__name__", str(hint))


def typed(name: str, value, hint, *, error: type = ModelError, where: str = ""):
    """``value`` if it conforms to ``hint`` (:func:`conforms`), else ``error`` naming the value's type."""
    if not conforms(value, hint):
        raise error(f"{where}{name}={value!r} ({type(value).__name__}) must be {describe(hint)}.")
    return value


@functools.cache
def _hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that cannot be resolved: no type checks
        return {}


def field_types(cls) -> dict[str, Any]:
    """Field name -> annotated type of the dataclass ``cls`` (what :func:`check_fields` checks)."""
    hints = _hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def check_fields(obj, rules: dict[str, Rule] | None = None, *, error: type = ModelError, where: str = "") -> None:
    """Check every field of the dataclass instance ``obj``: by its rule in ``rules`` when it has one,
    else by its annotation (:func:`typed`). Raises ``error`` at the first bad value."""
    rules = rules or {}
    for name, hint in field_types(type(obj)).items():
        value = getattr(obj, name)
        if name in rules:
            rules[name].check(name, value, error=error, where=where)
        else:
            typed(name, value, hint, error=error, where=where)
