"""The cache's bound: a folder of entry files kept under a size, the least recently used out first.

An entry is a visible file with the folder's suffix (``*.npz``); hidden files — temporary writes
(``.<name>.*``) and the lock (``.lock``) — are not entries. An entry's last use is its modification
time: written when it is made, touched on every hit (access times are unreliable: ``noatime``,
``relatime``). Before a new entry is moved in, the least recently used entries are removed until the
entries and the newcomer fit the bound, one printed line each.

Trials in separate processes share the folder: a writer moves its finished temporary file in
(atomic rename) while holding an exclusive lock on ``.lock``, so two writers never evict past each
other; readers take no lock, and a file that disappears under anyone is simply gone (a reader
treats it as a miss).

The bound is ``$BOTIFY_TUNE_CACHE_GB`` (decimal gigabytes, default :data:`DEFAULT_GB`; 0 keeps
nothing).
"""
from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sim_bridge.contract.files import ConfigError

ENV = "BOTIFY_TUNE_CACHE_GB"
DEFAULT_GB = 4.0
GB = 10**9
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Entry:
    """One cached file: its path, size in bytes and last use (seconds since the epoch)."""

    path: Path
    size: int
    used: float


def bound_bytes(environ: dict[str, str] | None = None) -> int:
    """The bound in bytes: ``$BOTIFY_TUNE_CACHE_GB`` or :data:`DEFAULT_GB` (ConfigError when bad)."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not raw:
        return int(DEFAULT_GB * GB)
    try:
        gb = float(raw)
    except ValueError:
        gb = math.nan
    if not (math.isfinite(gb) and gb >= 0):
        raise ConfigError(f"${ENV}: expected a size in gigabytes >= 0 (e.g. 4 or 0.5), got {raw!r}")
    return int(gb * GB)


def entries(folder: str | Path, suffix: str) -> list[Entry]:
    """The folder's entries, least recently used first (ties by name); none when it does not exist."""
    found = []
    for path in Path(folder).glob(f"*{suffix}"):
        if path.name.startswith("."):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:  # evicted or cleared by another process meanwhile
            continue
        found.append(Entry(path, stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda e: (e.used, e.path.name))


def touch(path: Path) -> None:
    """Mark ``path`` used now (a hit); a file evicted meanwhile is left alone."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)


def put(tmp: Path, path: Path, bound: int, log: Callable[[str], None] = print) -> bool:
    """Move the finished file ``tmp`` to ``path`` after evicting what it needs room from (an entry
    already at ``path`` is replaced, not evicted). False — and ``tmp`` removed — when ``tmp``
    alone is larger than the bound, or was removed meanwhile (a concurrent clear)."""
    with locked(path.parent):
        try:
            size = tmp.stat().st_size
        except FileNotFoundError:
            return False
        if size > bound:
            tmp.unlink(missing_ok=True)
            log(f"data cache: not kept {path} ({size_text(size)}): larger than the bound ({size_text(bound)}, ${ENV})")
            return False
        evict(path.parent, path.suffix, bound - size, keep=path, log=log)
        try:
            os.replace(tmp, path)
        except FileNotFoundError:
            return False
        touch(path)  # used now, however long the write took
    return True


def evict(folder: Path, suffix: str, room: int, keep: Path | None = None,
          log: Callable[[str], None] = print) -> list[Entry]:
    """Remove the least recently used entries (never ``keep``) until the rest take at most ``room``
    bytes; print one line each and return them."""
    current = [e for e in entries(folder, suffix) if e.path != keep]
    total = sum(e.size for e in current)
    removed = []
    for entry in current:
        if total <= room:
            break
        remove(entry)
        total -= entry.size
        removed.append(entry)
        log(f"data cache: evicted {entry.path} ({size_text(entry.size)}, last used {when(entry.used)})")
    return removed


def remove(entry: Entry) -> None:
    """Delete ``entry``'s file; one already gone (another process) is fine."""
    entry.path.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock (``.lock``, created with the folder when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def size_text(size: int) -> str:
    """A size in decimal megabytes, or gigabytes from 1 GB up."""
    return f"{size / GB:.2f} GB" if size >= GB else f"{size / 10**6:.1f} MB"


def when(seconds: float) -> str:
    """A local time, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
