"""Text to features: interpretable built-ins, bag-of-words, any encoder, precomputed embeddings.

:class:`TextFeatures` turns texts (the responses of alignment data) into a numeric table of option
features. It is a spec: ``TextFeatures(...)`` says what to compute, :meth:`TextFeatures.fit` learns the
reduction and standardisation from training texts and returns a *fitted* copy whose
:meth:`~TextFeatures.transform` computes the same features for any texts, and whose
:meth:`~TextFeatures.to_dict` state is plain JSON (saved with the data inside a saved fit).
``Comparisons.from_trl(..., text_features=TextFeatures(...))`` (and ``from_frame``, ``from_kwise``,
``from_counts``) fits it on the option labels, which are the response texts (see
``docs/data-contract.md``, "Text features").

Built-in features (``builtins=``), each computed for a whole column at once (pandas ``.str``
methods, numpy); on a text ``t``:

=================  ==================================================================================
``words``          number of words: maximal runs of non-whitespace characters (``len(t.split())``)
``log_words``      ``log(1 + words)``
``chars``          number of characters (Unicode code points, ``len(t)``)
``log_chars``      ``log(1 + chars)``
``lines``          number of non-blank lines
``headers``        Markdown ATX headings: lines of at most 3 spaces, 1-6 ``#``, then a space, a tab
                   or the end of the line
``lists``          Markdown list items: lines of optional indentation, a bullet (``-``, ``*``, ``+``)
                   or a number followed by ``.`` or ``)``, whitespace, then a non-space character
``code_blocks``    fenced code blocks: ``ceil(f / 2)`` for ``f`` lines that start (after at most 3
                   spaces) with ````` or ``~~~`` (an unclosed fence counts as a block)
``inline_code``    inline code spans: runs of text between single backticks on one line
``bold``           ``**bold**`` or ``__bold__`` spans on one line
``links``          Markdown links ``[text](target)``
``questions``      runs of question marks (``"Why?? Really?"`` has 2)
``exclamations``   runs of exclamation marks
``refusal``        1.0 when the text contains a phrase of the refusal / apology lexicon, else 0.0
``readability``    Flesch reading ease ``206.835 - 1.015 W / S - 84.6 Y / W`` with ``W`` words
                   (runs of letters, apostrophes inside), ``S`` sentences (runs of ``.``, ``!``, ``?``
                   before whitespace or the end) and ``Y`` syllables (hyphenation points + 1 per
                   word, from ``pyphen``'s ``en_US`` dictionary: optional extra
                   ``pip install bayespref[text]``); ``W`` and ``S`` count as at least 1. Higher is
                   easier. Each distinct word is hyphenated once (a Python loop over the vocabulary)
=================  ==================================================================================

The default is ``DEFAULT_BUILTINS`` = ``("log_words", "headers", "lists", "code_blocks",
"questions", "refusal")``. ``chars`` and ``log_chars`` are left out of the default because they move
with ``words`` almost one for one (correlation above 0.95 on HH-RLHF): with both in a model their
weights are not told apart (see the overlap diagnostics).

**Refusal / apology lexicon.** ``refusal`` matches :data:`DEFAULT_LEXICON` (below) unless
``lexicon=`` replaces it; extend it with ``lexicon=DEFAULT_LEXICON + ("my phrase",)``. A phrase
matches case-insensitively, as whole words (not inside a longer word), with any run of whitespace for
a space and a straight or curly apostrophe for ``'``. It is a heuristic: ``"I can't"`` also matches
``"I can't wait"``.

**Embeddings.** ``encoder=`` is any callable ``texts (list of str) -> array (n, d)``, e.g. a
sentence-transformers model's ``encode``; it is called once on the list of texts (batching is the
encoder's business) and is never saved: a saved :class:`TextFeatures` (and a saved fit) records that an
encoder of dimension ``d`` was used, and new texts can be transformed only after the encoder is passed
again (:meth:`TextFeatures.with_encoder`, ``Comparisons.with_text_encoder``). ``embedding_columns=``
names precomputed embeddings in the data (per-comparison columns ``<name>_a`` / ``<name>_b``, or
``<name>_chosen`` / ``<name>_rejected`` for TRL; each cell a number or a vector). The encoder's
output and the embedding columns form one block, optionally reduced to its first ``reduce``
principal components (``pc1``...) and whitened, both learned on the training texts (numpy, no
scikit-learn needed). ``bow=k`` adds ``k`` bag-of-words components (``bow1``...): tf-idf weighted
word counts (scikit-learn's ``CountVectorizer``, optional extra) reduced by a truncated SVD (latent
semantic analysis), learned on the training texts.

**Standardisation.** With ``standardise=True`` (default) every column is centred and scaled to unit
standard deviation over the training texts (each text once), so weights are per standard deviation
of the feature. A column that is constant on the training texts carries no information (its weight
would be set by the prior alone): it is dropped with a ``DataWarning`` (``fitted.dropped``).

Examples
--------
>>> tf = TextFeatures(builtins=("words", "questions", "refusal"), standardise=False)
>>> fitted = tf.fit(["Sure! Here you go.", "I'm sorry, I can't help with that. Why?", "Yes?"])
>>> fitted.transform(["Is it? Is it?", "Sorry, but no"]).to_numpy().tolist()
[[4.0, 2.0, 0.0], [3.0, 0.0, 1.0]]
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref.data.validation import SHOW, _fmt, _rows
from bayespref.errors import DataError, DataWarning

__all__ = ["BUILTINS", "DEFAULT_BUILTINS", "DEFAULT_LEXICON", "TextFeatures"]

FORMAT = "bayespref.TextFeatures/1"
INSTALL = "pip install bayespref[text]"

#: the refusal / apology lexicon of the ``refusal`` feature (matching rules in the module docstring)
DEFAULT_LEXICON: tuple[str, ...] = (
    # apologies
    "I'm sorry", "I am sorry", "sorry, but", "I apologize", "I apologise", "my apologies",
    # refusals
    "I can't", "I cannot", "I can not", "I won't", "I will not", "I'm not able to", "I am not able to",
    "I'm unable to", "I am unable to", "I'm not going to", "I am not going to", "I must decline",
    "I have to decline", "I refuse", "I'd rather not", "I would rather not", "I don't feel comfortable",
    "I do not feel comfortable", "I'm not comfortable", "I am not comfortable", "I shouldn't",
    "I should not", "I don't think I should", "I don't think I can", "not appropriate",
    "I'm not allowed", "I am not allowed",
    # self-description as a system, common in refusals
    "as an AI", "as a language model", "as an assistant",
)

_HEADERS = r"(?m)^ {0,3}#{1,6}(?:[ \t]|$)"
_LISTS = r"(?m)^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S"
_FENCES = r"(?m)^ {0,3}(?:```|~~~)"


def _count(pattern: str) -> Callable:
    return lambda s, _: s.str.count(pattern).to_numpy(dtype=np.float64)


def _readability(s: pd.Series, _) -> np.ndarray:
    import pyphen

    s = s.reset_index(drop=True)
    words = s.str.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*")
    n_words = np.maximum(words.str.len().to_numpy(dtype=np.float64), 1.0)
    flat = words.explode().dropna().str.lower()
    dic = pyphen.Pyphen(lang="en_US")
    syllables = {w: len(dic.positions(w)) + 1 for w in pd.unique(flat)}  # each distinct word once
    n_syl = flat.map(syllables).groupby(level=0).sum().reindex(s.index, fill_value=0).to_numpy(dtype=np.float64)
    n_sent = np.maximum(s.str.count(r"[.!?]+(?=\s|$)").to_numpy(dtype=np.float64), 1.0)
    return 206.835 - 1.015 * n_words / n_sent - 84.6 * n_syl / n_words


#: built-in feature -> function (texts as a pandas Series of str, lexicon regex) -> float array
BUILTINS: dict[str, Callable] = {
    "words": _count(r"\S+"),
    "log_words": lambda s, _: np.log1p(s.str.count(r"\S+").to_numpy(dtype=np.float64)),
    "chars": lambda s, _: s.str.len().to_numpy(dtype=np.float64),
    "log_chars": lambda s, _: np.log1p(s.str.len().to_numpy(dtype=np.float64)),
    "lines": _count(r"(?m)^[ \t]*\S"),
    "headers": _count(_HEADERS),
    "lists": _count(_LISTS),
    "code_blocks": lambda s, _: np.ceil(s.str.count(_FENCES).to_numpy(dtype=np.float64) / 2),
    "inline_code": _count(r"(?<!`)`[^`\n]+`(?!`)"),
    "bold": _count(r"\*\*[^*\n]+\*\*|__[^_\n]+__"),
    "links": _count(r"\[[^\]\n]+\]\([^)\s]+\)"),
    "questions": _count(r"\?+"),
    "exclamations": _count(r"!+"),
    "refusal": lambda s, lex: s.str.contains(lex, regex=True).to_numpy(dtype=np.float64),
    "readability": _readability,
}
#: the built-ins used by default (module docstring: why ``chars`` is not among them)
DEFAULT_BUILTINS: tuple[str, ...] = ("log_words", "headers", "lists", "code_blocks", "questions", "refusal")
_EXTRA = {"readability": "pyphen"}


def lexicon_pattern(lexicon: Sequence[str]) -> str:
    """The regular expression of a lexicon: case-insensitive whole-word match of any phrase.

    The phrases are merged into a word trie (``i (am sorry|can't|...)``), which the regex engine
    scans about 3x faster than a flat alternation of the phrases.

    >>> bool(re.search(lexicon_pattern(["I can't"]), "well, i  can’t do that"))
    True
    """
    trie: dict = {}
    for phrase in lexicon:
        node = trie
        for word in phrase.lower().split():
            node = node.setdefault(word, {})
        node[""] = {}  # a phrase ends here

    def alternatives(node: dict) -> str:
        alts = []
        for word in sorted(k for k in node if k):
            token, rest = re.escape(word).replace("'", "['’]"), alternatives(node[word])
            if rest:
                rest = r"(?:\s+" + rest + ")" + ("?" if "" in node[word] else "")
            alts.append(token + rest)
        return "(?:" + "|".join(alts) + ")" if alts else ""

    return r"(?i)(?<!\w)" + alternatives(trie) + r"(?!\w)"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _need(module: str, what: str) -> None:
    if not _installed(module):
        package = {"sklearn": "scikit-learn"}.get(module, module)
        raise DataError(f"TextFeatures: {what} needs {package}, which is not installed; install the "
                        f"optional extra: {INSTALL} (or pip install {package}).")


def _describe_positions(index: pd.Index) -> Callable[[np.ndarray], str]:
    return lambda mask: f"text(s) at {_rows(index, mask)}"


# ---------------------------------------------------------------------------------------------
# the spec
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class TextFeatures:
    """What features to compute from texts; :meth:`fit` returns a fitted copy that computes them.

    Parameters
    ----------
    builtins : sequence of str
        Built-in features, in order (see the module docstring for each exact definition); default
        :data:`DEFAULT_BUILTINS`. ``()`` for none.
    lexicon : sequence of str, optional
        Phrases of the ``refusal`` feature; default :data:`DEFAULT_LEXICON`.
    encoder : callable, optional
        ``texts -> array (n, d)``: e.g. ``SentenceTransformer(...).encode``. Not saved (see
        :meth:`with_encoder`).
    embedding_columns : str or sequence of str, optional
        Precomputed embeddings in the comparison data (``<name>_a`` / ``<name>_b`` columns; a
        number or a vector per cell), used through ``Comparisons.from_*(text_features=...)``; for
        :meth:`fit` / :meth:`transform` directly, pass ``embeddings=``.
    bow : int, optional
        Number of bag-of-words components (tf-idf + truncated SVD; needs scikit-learn).
    bow_options : dict, optional
        Options of scikit-learn's ``CountVectorizer`` (JSON values; default
        ``{"max_features": 5000}``), e.g. ``{"stop_words": "english", "ngram_range": [1, 2]}``.
    reduce : int, optional
        Reduce the embedding block (encoder and embedding columns) to its first ``reduce``
        principal components, learned on the training texts.
    whiten : bool
        Scale the principal components to unit variance on the training texts (without ``reduce``:
        rotate the whole block to its principal axes). With ``standardise=True`` the reduced
        components are scaled anyway; whitening then matters only without ``reduce``.
    standardise : bool
        Centre and scale every column to unit standard deviation on the training texts.
    prefix : str
        Put before every feature name (to avoid a clash with other features).

    Examples
    --------
    >>> fitted = TextFeatures(builtins=("log_words",)).fit(["a b", "a b c d", "a"])
    >>> fitted.feature_names, fitted.transform(["a b", "w x y z"]).round(3).to_numpy().tolist()
    (('log_words',), [[-0.094], [1.269]])
    """

    builtins: Sequence[str] = DEFAULT_BUILTINS
    lexicon: Sequence[str] | None = None
    encoder: Callable | None = None
    embedding_columns: str | Sequence[str] = ()
    bow: int | None = None
    bow_options: dict | None = None
    reduce: int | None = None
    whiten: bool = False
    standardise: bool = True
    prefix: str = ""
    state: dict | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        where = "TextFeatures"
        builtins = (self.builtins,) if isinstance(self.builtins, str) else tuple(self.builtins)
        unknown = [b for b in builtins if b not in BUILTINS]
        if unknown:
            raise DataError(f"{where}: unknown built-in feature(s) {_fmt(unknown)}; the built-ins are "
                            f"{_fmt(BUILTINS, len(BUILTINS))}.")
        if len(set(builtins)) != len(builtins):
            raise DataError(f"{where}: builtins={list(builtins)!r} names a feature twice.")
        fresh = self.state is None  # loaded (fitted) features need the extras only to transform new texts
        for b in builtins:
            if b in _EXTRA and fresh:
                _need(_EXTRA[b], f"the built-in {b!r}")
        lexicon = DEFAULT_LEXICON if self.lexicon is None else (
            (self.lexicon,) if isinstance(self.lexicon, str) else tuple(self.lexicon))
        if not lexicon or not all(isinstance(p, str) and p.strip() for p in lexicon):
            raise DataError(f"{where}: lexicon must be a non-empty sequence of non-empty phrases (str), "
                            f"got {self.lexicon!r}; extend the default with DEFAULT_LEXICON + ('...',).")
        if self.encoder is not None and not callable(self.encoder):
            raise DataError(f"{where}: encoder must be a callable texts -> array (n, d), e.g. "
                            f"SentenceTransformer(...).encode; got {type(self.encoder).__name__}.")
        cols = self.embedding_columns
        cols = () if cols is None else ((cols,) if isinstance(cols, str) else tuple(cols))
        for name, value in (("bow", self.bow), ("reduce", self.reduce)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 1):
                raise DataError(f"{where}: {name}={value!r} must be a whole number >= 1 (or None).")
        if self.bow is not None and fresh:
            _need("sklearn", "bow= (bag-of-words features)")
        options = dict(self.bow_options or {})
        if self.bow_options is not None and self.bow is None:
            raise DataError(f"{where}: bow_options are given but bow is None; pass bow=<number of components>.")
        dense = self.encoder is not None or bool(cols) or (self.state or {}).get("encoder_dim") is not None
        if (self.reduce is not None or self.whiten) and not dense:
            raise DataError(f"{where}: reduce= and whiten= apply to embeddings; pass encoder= or "
                            "embedding_columns= (bag-of-words has its own bow=k components).")
        if not builtins and not dense and self.bow is None:
            raise DataError(f"{where}: no features: pass builtins, an encoder, embedding_columns or bow.")
        for flag in ("whiten", "standardise"):
            if not isinstance(getattr(self, flag), bool):
                raise DataError(f"{where}: {flag} must be True or False.")
        if not isinstance(self.prefix, str):
            raise DataError(f"{where}: prefix must be a string.")
        object.__setattr__(self, "builtins", builtins)
        object.__setattr__(self, "lexicon", lexicon)
        object.__setattr__(self, "embedding_columns", cols)
        object.__setattr__(self, "bow_options", options if self.bow is not None else None)

    # -- state ----------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.state is not None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the output columns (fitted only)."""
        return tuple(self._fitted("feature_names")["names"])

    @property
    def dropped(self) -> tuple[str, ...]:
        """Columns left out because they were constant on the training texts (fitted only)."""
        return tuple(self._fitted("dropped")["dropped"])

    @property
    def needs_encoder(self) -> bool:
        """True when the features use an encoder that is not attached (e.g. after loading)."""
        return self.state is not None and self.state["encoder_dim"] is not None and self.encoder is None

    def _fitted(self, what: str) -> dict:
        if self.state is None:
            raise DataError(f"TextFeatures.{what}: not fitted; call fitted = text_features.fit(texts) first.")
        return self.state

    def with_encoder(self, encoder: Callable) -> TextFeatures:
        """The same (fitted) features with ``encoder`` attached, e.g. after loading them from JSON."""
        if self.state is not None and self.state["encoder_dim"] is None:
            raise DataError("TextFeatures.with_encoder: these features were computed without an encoder.")
        return dataclasses.replace(self, encoder=encoder)

    def to_dict(self) -> dict:
        """The spec and its fitted state as plain JSON values (the encoder itself is not included)."""
        cfg = {"builtins": list(self.builtins), "lexicon": list(self.lexicon),
               "embedding_columns": list(self.embedding_columns), "bow": self.bow,
               "bow_options": self.bow_options, "reduce": self.reduce, "whiten": self.whiten,
               "standardise": self.standardise, "prefix": self.prefix}
        return {"format": FORMAT, "config": cfg, "state": self.state,
                "encoder": None if self.encoder is None else _callable_name(self.encoder)}

    @classmethod
    def from_dict(cls, d: dict, encoder: Callable | None = None) -> TextFeatures:
        """Rebuild from :meth:`to_dict`; pass the ``encoder`` again if one was used."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DataError("TextFeatures.from_dict: not a serialised TextFeatures (unknown or missing 'format').")
        return cls(**d["config"], encoder=encoder, state=d["state"])

    # -- fit / transform ------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], embeddings: Any = None) -> TextFeatures:
        """Learn the reduction and standardisation on ``texts``; returns a fitted copy.

        ``embeddings``: the precomputed embeddings of the texts, an array (n, d) (needed when
        ``embedding_columns`` are set). Each text should appear once (the option texts).
        """
        texts = _as_texts(texts, "TextFeatures.fit")
        return self._fit(texts, embeddings, _describe_positions(texts.index), "TextFeatures.fit")[0]

    def transform(self, texts: Sequence[str], embeddings: Any = None) -> pd.DataFrame:
        """The features of ``texts``: a float DataFrame (one row per text, columns :attr:`feature_names`).

        The row index is that of ``texts`` when it is a Series, else 0..n-1.
        """
        where = "TextFeatures.transform"
        texts = _as_texts(texts, where)
        return self._transform(texts, embeddings, _describe_positions(texts.index), where)

    def _fit(self, texts: pd.Series, embeddings, describe, where,
             stacklevel: int = 3) -> tuple[TextFeatures, pd.DataFrame]:
        if len(texts) < 2:
            raise DataError(f"{where}: text features are learned from at least 2 texts, got {len(texts)}.")
        blocks, names, state = [], [], {"encoder_dim": None, "embedding_dim": None, "pca": None, "bow": None}
        if self.builtins:
            blocks.append(self._builtins(texts))
            names += list(self.builtins)
        dense, dense_names = self._dense(texts, embeddings, describe, where, state)
        if dense is not None:
            k = self.reduce
            if k is not None and k > min(dense.shape):
                raise DataError(f"{where}: reduce={k} exceeds the {dense.shape[1]} embedding dimension(s) "
                                f"or the {dense.shape[0]} texts; use reduce <= {min(dense.shape)}.")
            if k is not None or self.whiten:
                state["pca"] = _pca_fit(dense, k or min(dense.shape), self.whiten)
                dense = _pca_apply(dense, state["pca"])
                dense_names = [f"pc{j + 1}" for j in range(dense.shape[1])]
            blocks.append(dense)
            names += dense_names
        if self.bow is not None:
            bow, state["bow"] = _bow_fit(texts, self.bow, self.bow_options, where)
            blocks.append(bow)
            names += [f"bow{j + 1}" for j in range(bow.shape[1])]
        raw = np.hstack(blocks) if len(blocks) > 1 else blocks[0]
        sd = raw.std(axis=0)
        constant = ~(sd > 1e-12 * np.maximum(1.0, np.abs(raw).max(axis=0)))
        names = [self.prefix + n for n in names]
        if constant.all():
            raise DataError(f"{where}: every text feature ({_fmt(names, 10)}) is constant on the training "
                            "texts; there is nothing to learn from.")
        if constant.any():
            warnings.warn(f"{where}: text feature(s) {_fmt(np.array(names)[constant], 10)} are constant on "
                          "the training texts (e.g. no text has a Markdown header); they are left out "
                          "(their weights would be set by the prior alone). Leave them out of builtins= "
                          "to silence this.", DataWarning, stacklevel=stacklevel + 1)
        keep = np.flatnonzero(~constant)
        raw = raw[:, keep]
        center = raw.mean(axis=0) if self.standardise else np.zeros(raw.shape[1])
        scale = raw.std(axis=0) if self.standardise else np.ones(raw.shape[1])
        state.update(raw_names=names, keep=keep.tolist(), names=[names[i] for i in keep],
                     dropped=[names[i] for i in np.flatnonzero(constant)], center=center.tolist(),
                     scale=scale.tolist())
        fitted = dataclasses.replace(self, state=state)
        table = pd.DataFrame((raw - center) / scale, index=texts.index, columns=state["names"])
        return fitted, table

    def _transform(self, texts: pd.Series, embeddings, describe, where) -> pd.DataFrame:
        state = self._fitted("transform")
        blocks = []
        if self.builtins:
            blocks.append(self._builtins(texts))
        dense, _ = self._dense(texts, embeddings, describe, where, state)
        if dense is not None:
            if state["pca"] is not None:
                dense = _pca_apply(dense, state["pca"])
            blocks.append(dense)
        if state["bow"] is not None:
            blocks.append(_bow_apply(texts, state["bow"], self.bow_options, where))
        n = len(texts)
        raw = (np.hstack(blocks) if len(blocks) > 1 else blocks[0]).reshape(n, -1)[:, state["keep"]]
        out = (raw - np.asarray(state["center"])) / np.asarray(state["scale"])
        return pd.DataFrame(out, index=texts.index, columns=state["names"])

    def _builtins(self, texts: pd.Series) -> np.ndarray:
        for b in self.builtins:
            if b in _EXTRA:
                _need(_EXTRA[b], f"the built-in {b!r}")
        lex = lexicon_pattern(self.lexicon) if "refusal" in self.builtins else None
        return np.column_stack([BUILTINS[b](texts, lex) for b in self.builtins])

    def _dense(self, texts, embeddings, describe, where, state) -> tuple[np.ndarray | None, list]:
        """The encoder's output and the precomputed embeddings side by side (None if neither)."""
        parts, names = [], []
        fitted = self.state is not None
        if self.encoder is not None or (fitted and state["encoder_dim"] is not None):
            if self.encoder is None:
                raise DataError(f"{where}: these text features were computed with an encoder "
                                f"({self.state.get('encoder_name') or 'a callable'}, dimension "
                                f"{state['encoder_dim']}), which is not saved; pass it again: "
                                "data = data.with_text_encoder(encoder) (for a loaded fit: fit.data = "
                                "fit.data.with_text_encoder(encoder)), or text_features.with_encoder(encoder).")
            x = _call_encoder(self.encoder, texts, state["encoder_dim"] if fitted else None, describe, where)
            if not fitted:
                state["encoder_dim"] = x.shape[1]
                state["encoder_name"] = _callable_name(self.encoder)
            parts.append(x)
            names += [f"enc{j}" for j in range(x.shape[1])]
        if self.embedding_columns:
            if embeddings is None:
                raise DataError(f"{where}: embedding_columns={list(self.embedding_columns)!r} are set; pass the "
                                "texts' embeddings (embeddings=array (n, d)) or build the data with "
                                "Comparisons.from_*(..., text_features=...) from a frame with those columns.")
            e = _check_matrix(embeddings, len(texts), state["embedding_dim"] if fitted else None,
                              describe, where, "embeddings")
            if not fitted:
                state["embedding_dim"] = e.shape[1]
            parts.append(e)
            names += [f"emb{j}" for j in range(e.shape[1])]
        elif embeddings is not None:
            raise DataError(f"{where}: embeddings were passed but embedding_columns is empty; set "
                            "TextFeatures(embedding_columns=...) to use them.")
        if not parts:
            return None, []
        return (np.hstack(parts) if len(parts) > 1 else parts[0]), names


def _callable_name(f: Callable) -> str:
    owner = getattr(f, "__self__", None)
    name = getattr(f, "__qualname__", None) or type(f).__name__
    return f"{type(owner).__name__}.{getattr(f, '__name__', name)}" if owner is not None else name


def _as_texts(texts: Any, where: str, index: pd.Index | None = None) -> pd.Series:
    """``texts`` as an object Series of str; anything else is a DataError naming the positions."""
    if isinstance(texts, str):
        raise DataError(f"{where}: texts must be a sequence of strings, got one string; wrap it: [text].")
    s = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    if index is not None:
        s = pd.Series(s.to_numpy(dtype=object), index=index, dtype=object)
    if ptypes.infer_dtype(s, skipna=False) not in ("string", "empty"):
        bad = ~np.fromiter((isinstance(v, str) for v in s), dtype=bool, count=len(s))
        examples = ", ".join(f"{v!r} ({type(v).__name__})" for v in s[bad].iloc[:SHOW])
        raise DataError(f"{where}: text features need texts (str); found non-string values {examples} at "
                        f"{_rows(s.index, bad)}. Convert them (e.g. .astype(str)) or remove those rows; "
                        "nothing is converted silently.")
    return s.astype(object)


def _check_matrix(x: Any, n: int, d: int | None, describe, where: str, what: str) -> np.ndarray:
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: the {what} could not be read as a numeric array (n, d) ({exc}); "
                        "return one vector of numbers per text.") from exc
    if x.ndim != 2 or x.shape[0] != n:
        raise DataError(f"{where}: the {what} have shape {x.shape} for {n} texts; they must be a 2-D array "
                        f"with one row per text, shape ({n}, d) (e.g. np.asarray(out).reshape({n}, -1)).")
    if d is not None and x.shape[1] != d:
        raise DataError(f"{where}: the {what} have {x.shape[1]} columns, but {d} in training; use the same "
                        "encoder / embeddings as in training.")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DataError(f"{where}: the {what} contain NaN or infinite values for {describe(bad)}. Check "
                        "those texts (empty strings?) and the encoder, or remove those rows; nothing is imputed.")
    return x


def _call_encoder(encoder: Callable, texts: pd.Series, d: int | None, describe, where: str) -> np.ndarray:
    try:
        out = encoder(texts.tolist())
    except Exception as exc:
        raise DataError(f"{where}: the encoder raised {type(exc).__name__}: {exc}. It is called once with "
                        "the list of texts and must return an array (n, d).") from exc
    if hasattr(out, "detach"):  # a torch tensor
        out = out.detach().cpu().numpy()
    return _check_matrix(out, len(texts), d, describe, where, "encoder's outputs")


# -- PCA (numpy) -------------------------------------------------------------------------------------
def _pca_fit(x: np.ndarray, k: int, whiten: bool) -> dict:
    """Principal axes of ``x`` from the eigen-decomposition of its covariance (deterministic signs:
    the largest loading of each axis is positive)."""
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / x.shape[0]
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:k]
    vals, vecs = np.clip(vals[order], 0, None), vecs[:, order]
    signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])])
    vecs = vecs * np.where(signs == 0, 1.0, signs)
    sd = np.sqrt(vals)
    scale = np.where(sd > 0, sd, 1.0) if whiten else np.ones(k)
    return {"mean": mean.tolist(), "components": vecs.T.tolist(), "scale": scale.tolist()}


def _pca_apply(x: np.ndarray, pca: dict) -> np.ndarray:
    return (x - np.asarray(pca["mean"])) @ np.asarray(pca["components"]).T / np.asarray(pca["scale"])


# -- bag of words (scikit-learn) -----------------------------------------------------------------------
def _vectorizer(options: dict, vocabulary: dict | None = None):
    _need("sklearn", "bow= (bag-of-words features)")
    from sklearn.feature_extraction.text import CountVectorizer

    opts = dict(options or {})
    if "ngram_range" in opts:
        opts["ngram_range"] = tuple(opts["ngram_range"])
    if vocabulary is not None:
        return CountVectorizer(**{k: v for k, v in opts.items() if k not in ("max_features", "min_df", "max_df")},
                               vocabulary=vocabulary)
    return CountVectorizer(**{"max_features": 5000, **opts})


def _tfidf(counts, idf: np.ndarray):
    from scipy import sparse

    x = sparse.csr_matrix(counts, dtype=np.float64).multiply(idf).tocsr()
    norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sparse.diags(np.where(norm > 0, 1 / np.where(norm > 0, norm, 1), 0.0)) @ x


def _bow_fit(texts: pd.Series, k: int, options: dict, where: str) -> tuple[np.ndarray, dict]:
    from sklearn.decomposition import TruncatedSVD

    vec = _vectorizer(options)
    try:
        counts = vec.fit_transform(texts.tolist())
    except ValueError as exc:  # empty vocabulary
        raise DataError(f"{where}: bag-of-words found no vocabulary ({exc}); relax bow_options.") from exc
    n_terms = counts.shape[1]
    if k >= n_terms:
        raise DataError(f"{where}: bow={k} components need a vocabulary of more than {k} terms; the training "
                        f"texts have {n_terms}. Lower bow or relax bow_options.")
    df = np.asarray((counts > 0).sum(axis=0)).ravel()
    idf = np.log((1 + counts.shape[0]) / (1 + df)) + 1.0
    x = _tfidf(counts, idf)
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=0).fit(x)
    components = svd.components_
    state = {"vocabulary": {str(t): int(i) for t, i in vec.vocabulary_.items()}, "idf": idf.tolist(),
             "components": components.tolist()}
    return np.asarray(x @ components.T), state


def _bow_apply(texts: pd.Series, state: dict, options: dict, where: str) -> np.ndarray:
    vec = _vectorizer(options, vocabulary=state["vocabulary"])
    counts = vec.transform(texts.tolist())
    x = _tfidf(counts, np.asarray(state["idf"]))
    return np.asarray(x @ np.asarray(state["components"]).T)


# ---------------------------------------------------------------------------------------------
# options of a Comparisons (used by bayespref.data.comparisons)
# ---------------------------------------------------------------------------------------------
def _embedding_matrix(df: pd.DataFrame, name: str, suffix: str, where: str) -> np.ndarray:
    """The (N, d) embeddings of one side from column ``name + suffix`` (numbers or vectors)."""
    col = f"{name}{suffix}"
    if col not in df.columns:
        raise DataError(f"{where}: embedding_columns names {name!r}, so the data need a column {col!r} "
                        f"(and its other side); it is missing. The frame has columns {_fmt(df.columns, 12)}.")
    s = df[col]
    if ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype):
        x = s.to_numpy(dtype=np.float64).reshape(-1, 1)
    else:
        values = s.tolist()
        ok = np.fromiter((isinstance(v, (list, tuple, np.ndarray)) for v in values), dtype=bool, count=len(values))
        if not ok.all():
            raise DataError(f"{where}: embedding column {col!r} must hold numbers or vectors (lists / arrays "
                            f"of numbers); found other values in {_rows(df.index, ~ok)}.")
        lens = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
        if len(lens) and (lens != lens[0]).any():
            odd = lens != np.bincount(lens).argmax()
            raise DataError(f"{where}: embedding column {col!r} holds vectors of different lengths "
                            f"({sorted(set(lens.tolist()))[:SHOW]}); {_rows(df.index, odd)} differ from the "
                            "others. Every text needs an embedding of the same dimension.")
        try:
            x = np.array(values, dtype=np.float64).reshape(len(values), -1)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: embedding column {col!r} holds non-numeric vector entries ({exc}).") from exc
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DataError(f"{where}: embedding column {col!r} has NaN or infinite values in {_rows(df.index, bad)}. "
                        "Fill or remove those rows; nothing is imputed.")
    return x


def _option_inputs(text: TextFeatures, df: pd.DataFrame, a_lab: pd.Series, b_lab: pd.Series,
                   suffixes: tuple, where: str, only: pd.Index | None = None):
    """The distinct option texts (in order of first appearance, or ``only``), their embeddings
    (None without embedding columns) and a function naming the comparison rows of options."""
    both = pd.concat([a_lab, b_lab], ignore_index=True)
    codes, uniq = pd.factorize(both)
    uniq = pd.Index(uniq)
    side = np.repeat(np.array([s.lstrip("_") for s in suffixes], dtype=object), len(df))
    rows = np.concatenate([df.index.to_numpy(dtype=object)] * 2)
    if ptypes.infer_dtype(uniq, skipna=False) != "string":
        bad = ~np.fromiter((isinstance(v, str) for v in both), dtype=bool, count=len(both))
        examples = ", ".join(f"{v!r} ({type(v).__name__})" for v in pd.unique(both[bad])[:SHOW])
        shown = ", ".join(f"{_fmt([r])[1:-1]} ({s})" for r, s in zip(rows[bad][:SHOW], side[bad][:SHOW]))
        raise DataError(f"{where}: text_features computes features from the option labels, which must be texts "
                        f"(str); found non-string options {examples} in {int(bad.sum())} place(s): row {shown}. "
                        "Convert them (e.g. df[col].astype(str)) or remove those rows.")
    pick = np.arange(len(uniq)) if only is None else uniq.get_indexer(only)
    first = np.unique(codes, return_index=True)[1]  # first appearance of each option
    emb = None
    if text.embedding_columns:
        per = [np.vstack([_embedding_matrix(df, name, suffixes[0], where),
                          _embedding_matrix(df, name, suffixes[1], where)]) for name in text.embedding_columns]
        e = np.hstack(per)
        ref = e[first[codes]]
        differ = ~np.isclose(e, ref, rtol=1e-6, atol=1e-9).all(axis=1)
        if differ.any():
            raise DataError(f"{where}: the same option text has different embeddings in row "
                            f"{', '.join(f'{_fmt([r])[1:-1]} ({s})' for r, s in zip(rows[differ][:SHOW], side[differ][:SHOW]))}"
                            f"{' and more' if differ.sum() > SHOW else ''} and its first appearance; one text, "
                            "one embedding.")
        emb = e[first[pick]]

    def describe(mask: np.ndarray) -> str:
        bad_options = uniq[pick[np.asarray(mask, bool)]]
        hit = both.isin(bad_options).to_numpy()
        shown = ", ".join(f"{_fmt([r])[1:-1]} ({s})" for r, s in zip(rows[hit][:SHOW], side[hit][:SHOW]))
        more = f" and {int(hit.sum()) - SHOW} more" if hit.sum() > SHOW else ""
        return f"{int(np.asarray(mask).sum())} text(s), in row(s) {shown}{more}"

    return pd.Series(uniq[pick].to_numpy(dtype=object), index=uniq[pick], dtype=object), emb, describe


def fit_options(text: TextFeatures, df: pd.DataFrame, a_lab: pd.Series, b_lab: pd.Series,
                options: pd.Index, suffixes: tuple, where: str) -> tuple[TextFeatures, pd.DataFrame]:
    """Fit ``text`` on the options' texts (each once); returns the fitted spec and its table
    (indexed by ``options``)."""
    if not isinstance(text, TextFeatures):
        raise DataError(f"{where}: text_features must be a bayespref.TextFeatures, got {type(text).__name__}.")
    texts, emb, describe = _option_inputs(text, df, a_lab, b_lab, suffixes, where, only=options)
    if text.is_fitted:  # fitted elsewhere (e.g. on other training data): applied as it is
        return text, text._transform(texts, emb, describe, where)
    return text._fit(texts, emb, describe, where, stacklevel=6)  # user -> from_* -> _from_long -> ...


def transform_options(text: TextFeatures, df: pd.DataFrame, a_lab: pd.Series, b_lab: pd.Series,
                      needed: pd.Index, suffixes: tuple, where: str) -> pd.DataFrame:
    """The features of the options ``needed`` (labels among ``a_lab`` / ``b_lab``)."""
    texts, emb, describe = _option_inputs(text, df, a_lab, b_lab, suffixes, where, only=needed)
    return text._transform(texts, emb, describe, where)
