"""Atomic writes: temporary files and folders beside the target, renamed into place at the end."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(path, directory: bool = False) -> None:
    """Give a temporary file/folder (created 0600/0700) the permissions a normal one would get."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_folder(out_dir):
    """Write a folder atomically: yields a temporary folder beside ``out_dir``.

    When the block ends normally the temporary folder replaces ``out_dir`` (an existing one is moved
    aside first and removed after); when it raises, the temporary folder is removed and ``out_dir``
    is left as it was, so no half-written report is ever left on disk.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        usual_mode(tmp, directory=True)
        yield tmp
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
