"""Atomic writes (bayespref._io): interrupts while a finished folder is moved into place."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal

import pytest

from bayespref import _io


def _files(folder: pathlib.Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir()}


@pytest.fixture
def previous(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous results")
    return out


def _interrupt_on_first(monkeypatch, owner, name):
    """Make ``owner.name`` send SIGINT to this process the first time it is called."""
    original = getattr(owner, name)
    calls = []

    def wrapped(*args, **kwargs):
        if not calls:
            calls.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


@pytest.fixture(autouse=True)
def python_default_sigint():
    """Start every test from Python's own SIGINT handler and give back what was there: these tests check
    what _io does to the handlers, and a library imported by an earlier test in the same process may
    have installed its own (seen in the full suite, never with this file alone)."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def test_deferred_signals_deliver_after_the_block():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with _io.deferred_signals() as held:
            os.kill(os.getpid(), signal.SIGINT)
            assert held
            done.append("rest of the block")
    assert done == ["rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interrupt_while_the_old_folder_moves_aside_keeps_it(previous, monkeypatch):
    calls = _interrupt_on_first(monkeypatch, pathlib.Path, "rename")
    with pytest.raises(KeyboardInterrupt):
        with _io.atomic_folder(previous) as tmp:
            (tmp / "new.txt").write_text("new results")
    assert calls
    assert _files(previous) == {"old.txt": "previous results"}
    assert [p.name for p in previous.parent.iterdir()] == ["out"]


def test_interrupt_after_the_new_folder_is_in_place_keeps_it_whole(previous, monkeypatch):
    calls = _interrupt_on_first(monkeypatch, shutil, "rmtree")  # removing the old folder
    with pytest.raises(KeyboardInterrupt):
        with _io.atomic_folder(previous) as tmp:
            (tmp / "new.txt").write_text("new results")
    assert calls
    assert _files(previous) == {"new.txt": "new results"}
    assert [p.name for p in previous.parent.iterdir()] == ["out"]


def test_interrupt_in_the_block_removes_the_temporary_file(tmp_path):
    target = tmp_path / "fit.nc"
    target.write_text("previous")
    with pytest.raises(KeyboardInterrupt):
        with _io.atomic_file(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_the_test_pause_hook(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(_io.PAUSE_ENV, "0.01")
    with _io.atomic_file(tmp_path / "a.txt") as tmp:
        tmp.write_text("a")
    assert _io.PAUSE_MARKER in capsys.readouterr().err
    assert (tmp_path / "a.txt").read_text() == "a"


class _Dropping:
    """An object whose ``__del__`` meets a signal: Python prints and drops the KeyboardInterrupt."""

    def __del__(self):
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_dropped_interrupt_still_stops_the_write(previous):
    with _io.interrupts_raise():
        _Dropping()  # collected at once: the KeyboardInterrupt is raised in __del__ and dropped
        assert _io.interrupted()
        with pytest.raises(KeyboardInterrupt):
            with _io.atomic_folder(previous) as tmp:
                (tmp / "new.txt").write_text("new results")
    assert not _io.interrupted()
    assert _files(previous) == {"old.txt": "previous results"}
    assert [p.name for p in previous.parent.iterdir()] == ["out"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_raises_keyboard_interrupt_in_the_block():
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with _io.interrupts_raise():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
