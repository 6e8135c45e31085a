"""Readers: each module turns one raw format into the long frame that :class:`~bayespref.Comparisons`
validates (one row per judgement) and the roles of its columns. A reader is a function
``*_long(df, ..., require_outcome=True) -> (long_frame, roles)``; the ``Comparisons.from_*``
constructors call it and store it, so that :meth:`Comparisons.encode` reads new data the same way.
``roles`` maps ``a``, ``b``, ``outcome``, ``user``, ``prompt`` to columns of the long frame, and may add
``keep``: columns copied, under their names, into ``Comparisons.frame`` (scores, the Arena winner).
The readers of files and datasets (TRL, Arena, k-wise) accept any source :func:`as_frame` reads.
A new format is one new module here plus its ``from_*`` constructor.
"""

from bayespref.data.readers.arena import arena_long
from bayespref.data.readers.counts import counts_long, expand_counts
from bayespref.data.readers.kwise import kwise_long
from bayespref.data.readers.source import as_frame
from bayespref.data.readers.trl import trl_long
from bayespref.data.readers.wide import wide_long

#: reader name -> function, for saved data (``Comparisons.to_json`` stores the name); the older
#: underscore names are kept so that fits saved before the readers moved still load
READERS = {f.__name__: f for f in (counts_long, wide_long, trl_long, arena_long, kwise_long)}
READERS.update({f"_{name}": f for name, f in list(READERS.items())})

__all__ = ["READERS", "arena_long", "as_frame", "counts_long", "expand_counts", "kwise_long", "trl_long",
           "wide_long"]
