"""Atomic output: write to a temp file (or folder) beside the target, then rename it into place.

A reader never sees a half-written output under the target's name, and an existing output is
only replaced when the caller says so (``--force``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator


class OutputExistsError(FileExistsError):
    """The output is already there (or is the wrong kind of thing) and may not be replaced."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_output_file(path: str | Path, force: bool, flag: str = "--out") -> None:
    """Refuse a file output that exists (unless ``force``) or is a folder — before any work."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{flag} {path}: is a folder, expected a file path")
    if path.exists() and not force:
        raise OutputExistsError(f"{flag} {path}: already exists; pass --force to replace it")


def check_output_dir(path: str | Path, force: bool, flag: str = "--out", keep: Iterable[Path] = ()) -> None:
    """Refuse a folder output that is a file, or a non-empty folder without ``force``.

    ``keep``: paths that must survive (the working directory always does): a folder holding one
    of them is never replaced, even with ``force``.
    """
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{flag} {path}: is a file, expected a folder")
    for kept in (Path.cwd(), *keep):
        kept = Path(kept).absolute()
        if path.is_dir() and (kept == path or path in kept.parents):
            raise OutputExistsError(f"{flag} {path}: holds {kept}; choose another folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise OutputExistsError(f"{flag} {path}: already exists and is not empty; pass --force to replace it")


@contextlib.contextmanager
def atomic_dir(path: str | Path, force: bool = False, flag: str = "--out",
               keep: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; on success it becomes ``path``.

    An existing non-empty ``path`` is refused unless ``force`` (see :func:`check_output_dir`); with
    ``force`` it is replaced as a whole, so no file of an earlier output is left beside the new
    ones. On error the temp folder is removed and ``path`` is untouched.
    """
    path = Path(path).absolute()
    check_output_dir(path, force, flag, keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = path.with_name(f".{path.name}.old{os.getpid()}")
        if path.exists():
            os.replace(path, old)  # two renames: a crash in between leaves the old output hidden, never mixed
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
