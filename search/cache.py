"""``python -m search.cache list|clear``: the training-data cache on disk.

``list`` shows each entry (least recently used first: the next to be evicted) with its size, last
use and the setting it was built for, then the total against the bound (``$BOTIFY_TUNE_CACHE_GB``),
and, for information, the other folders under the cache root (the worlds and their logs: never
evicted or cleared here). ``clear`` removes every entry, and the temporary files of writes that
never finished, printing each; it asks nothing. A search running meanwhile just builds its data
again. Bad arguments or a bad ``$BOTIFY_TUNE_CACHE_GB``: one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from model.features import FeatureConfig

from search import cache_bound, errors
from search.cache_bound import Entry, size_text, when
from search.data_cache import SUFFIX, cache_dir, read_setting


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"list": list_entries, "clear": clear}[args.command](cache_dir())
    except errors.USER_ERRORS as exc:
        return errors.report(exc)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.cache", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="{list,clear}")
    sub.add_parser("list", help="the entries, their total and the bound")
    sub.add_parser("clear", help="remove every training-data entry (never the worlds)")
    return p


def list_entries(folder: Path) -> int:
    bound = cache_bound.bound_bytes()
    found = cache_bound.entries(folder, SUFFIX)
    print(f"training-data cache {folder} (least recently used first)")
    for entry in found:
        print(f"{entry.path.name}  {size_text(entry.size):>9}  last used {when(entry.used)}  {setting_text(entry)}")
    total = sum(e.size for e in found)
    print(f"{len(found)} entries, {size_text(total)} of the {size_text(bound)} bound (${cache_bound.ENV})")
    unfinished = _unfinished(folder)
    if unfinished:
        print(f"{len(unfinished)} unfinished writes ({size_text(sum(e.size for e in unfinished))}): "
              "in progress, or left by a killed trial (clear removes them)")
    others = [p for p in sorted(folder.parent.iterdir()) if p != folder] if folder.parent.is_dir() else []
    for path in others:
        print(f"not an entry (never evicted or cleared here): {path} ({size_text(_size(path))})")
    return 0


def clear(folder: Path) -> int:
    if not folder.is_dir():
        print(f"nothing to clear: {folder} does not exist")
        return 0
    with cache_bound.locked(folder):
        removed = cache_bound.entries(folder, SUFFIX) + _unfinished(folder)
        for entry in removed:
            cache_bound.remove(entry)
            print(f"removed {entry.path} ({size_text(entry.size)})")
    print(f"cleared {folder}: {len(removed)} files, {size_text(sum(e.size for e in removed))}")
    return 0


def setting_text(entry: Entry) -> str:
    """The entry's features where they differ from the defaults, and its source digest."""
    setting = read_setting(entry.path)
    if setting is None:
        return "(setting not recorded)"
    defaults = dataclasses.asdict(FeatureConfig())
    changed = {k: v for k, v in setting["features"].items() if defaults.get(k) != v}
    words = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(changed.items())]
    return " ".join(words + [f"source={setting['source']}"])


def _unfinished(folder: Path) -> list[Entry]:
    """Temporary files of writes that never finished (``.<digest>.*.npz``)."""
    found = []
    for path in folder.glob(f".*{SUFFIX}"):
        try:
            found.append(Entry(path, path.stat().st_size, path.stat().st_mtime))
        except FileNotFoundError:
            continue
    return found


def _size(path: Path) -> int:
    """Bytes under ``path`` (a file or a folder); files vanishing meanwhile count nothing."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for child in path.rglob("*"):
        try:
            total += child.stat().st_size if child.is_file() else 0
        except FileNotFoundError:
            continue
    return total


if __name__ == "__main__":
    raise SystemExit(main())
