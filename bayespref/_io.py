"""Atomic writes: temporary files and folders beside the target, renamed into place at the end."""

from __future__ import annotations

import os


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(path, directory: bool = False) -> None:
    """Give a temporary file/folder (created 0600/0700) the permissions a normal one would get."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())
