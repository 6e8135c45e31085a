"""Atomic writes: temporary files and folders beside the target, renamed into place at the end.

An interrupt (Ctrl-C's SIGINT, or SIGTERM where a handler turns it into ``KeyboardInterrupt``, as
the command line does) never leaves a half-written target or temporary leftovers: while the
finished temporary copy is being moved into place, and while a failed one is being removed, the two
signals are held back (:func:`deferred_signals`) and delivered once that step is over. One that
arrives before the move leaves the target as it was; one that arrives during the final clean-up (the
new target is in place) is delivered after it.

Python delivers a signal to whatever code runs next, and a ``KeyboardInterrupt`` raised inside a
garbage-collector callback or a ``__del__`` method is printed and dropped ("Exception ignored in
..."), so a run could go on as if never interrupted. :func:`interrupts_raise` (used by the command
line) therefore also remembers the signals it turns into ``KeyboardInterrupt``, and the atomic
writers check that memory (:func:`check_interrupted`) before they start and before the final
rename: an interrupt that was dropped still stops the run before anything is written.

Test hook: ``BAYESPREF_TEST_PAUSE_BEFORE_RENAME=<seconds>`` makes :func:`atomic_folder` and
:func:`atomic_file` print ``bayespref-test: paused before rename`` to stderr and sleep that long just
before moving the finished copy into place, so that tests can interrupt a run while it writes. It is
for tests only.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import threading
import time

#: the signals held back while a finished result is moved into place
HELD_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)
#: environment variable of the test hook (seconds to sleep before the final rename)
PAUSE_ENV = "BAYESPREF_TEST_PAUSE_BEFORE_RENAME"
PAUSE_MARKER = "bayespref-test: paused before rename"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(path, directory: bool = False) -> None:
    """Give a temporary file/folder (created 0600/0700) the permissions a normal one would get."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


#: signals turned into KeyboardInterrupt by :func:`interrupts_raise` since its block began
_RECEIVED: list[int] = []


@contextlib.contextmanager
def interrupts_raise():
    """During the block, SIGINT and SIGTERM raise ``KeyboardInterrupt`` and are remembered (see the
    module's docstring; :func:`check_interrupted`); the previous handlers come back at the end. Outside
    the main thread the block runs with the signals as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        _RECEIVED.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {}
    _RECEIVED.clear()
    try:
        for sig in HELD_SIGNALS:
            previous[sig] = signal.signal(sig, interrupt)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        _RECEIVED.clear()


def interrupted() -> bool:
    """Whether a signal arrived during the block of :func:`interrupts_raise` (even one whose
    ``KeyboardInterrupt`` Python dropped)."""
    return bool(_RECEIVED)


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if :func:`interrupted`."""
    if _RECEIVED:
        raise KeyboardInterrupt(signal.Signals(_RECEIVED[0]).name)


class _Held:
    """The signals that arrived while :func:`deferred_signals` held them back."""

    def __init__(self):
        self.signals: list[int] = []

    def __bool__(self) -> bool:
        return bool(self.signals)


@contextlib.contextmanager
def deferred_signals():
    """Hold SIGINT and SIGTERM back during the block; deliver them, in order, when it ends.

    Yields an object that is true once a signal has arrived, so the block can tell whether it has
    been interrupted (and undo its work) before reaching a point of no return. Outside the main
    thread (where Python cannot install handlers) the block runs with the signals as they are.
    """
    held = _Held()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = {}
    try:
        for sig in HELD_SIGNALS:
            previous[sig] = signal.signal(sig, lambda signum, frame: held.signals.append(signum))
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for sig in dict.fromkeys(held.signals):  # each signal once, as the OS would merge them
            signal.raise_signal(sig)  # the restored handler acts on it (KeyboardInterrupt for SIGINT)


def _test_pause() -> None:
    """The test hook: sleep ``BAYESPREF_TEST_PAUSE_BEFORE_RENAME`` seconds (tests only)."""
    seconds = os.environ.get(PAUSE_ENV)
    if seconds:
        print(PAUSE_MARKER, file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(out_dir):
    """Write a folder atomically: yields a temporary folder beside ``out_dir``.

    When the block ends normally the temporary folder replaces ``out_dir`` (an existing one is moved
    aside first and removed after); when it raises, or an interrupt arrives before the temporary
    folder is in place, the temporary folder is removed and ``out_dir`` is left as it was, so no
    half-written report is ever left on disk.
    """
    out_dir = pathlib.Path(out_dir)
    check_interrupted()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with deferred_signals():  # an interrupt here is raised once ``tmp`` is known (and removed)
            tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
            usual_mode(tmp, directory=True)
        yield tmp
        _test_pause()
        with deferred_signals() as held:
            _swap(tmp, out_dir, lambda: bool(held) or interrupted())
        check_interrupted()  # one remembered but dropped before the swap left things as they were
    except BaseException:
        if tmp is not None:
            with deferred_signals():
                _remove(tmp)  # nothing to do when it was renamed into place
        raise


def _swap(tmp: pathlib.Path, target: pathlib.Path, stop) -> None:
    """Put the folder ``tmp`` in the place of ``target``, with the signals held back (``stop()`` tells
    whether one has arrived): the old ``target`` goes aside, ``tmp`` takes its name, the old one is
    removed. An interrupt before ``tmp`` takes the name, or an error, puts the old one back."""
    old = None
    try:
        if not stop() and target.exists():
            old = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            target.rename(old / target.name)
        if stop():  # it arrived before the new folder went in: leave things as they were
            if old is not None:
                (old / target.name).rename(target)
            _remove(tmp)
        else:
            tmp.rename(target)  # the point of no return
    except BaseException:
        if old is not None and not target.exists() and (old / target.name).exists():
            (old / target.name).rename(target)
        _remove(tmp)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path):
    """Write a file atomically: yields a temporary path beside ``path``, renamed onto it at the end.

    When the block raises, or an interrupt arrives before the rename, the temporary file is removed
    and ``path`` is left as it was.
    """
    path = pathlib.Path(path)
    check_interrupted()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with deferred_signals():
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp = pathlib.Path(name)
            usual_mode(tmp)
        yield tmp
        _test_pause()
        with deferred_signals() as held:
            if held or interrupted():
                tmp.unlink()
            else:
                os.replace(tmp, path)
        check_interrupted()
    except BaseException:
        if tmp is not None:
            with deferred_signals():
                tmp.unlink(missing_ok=True)
        raise
