"""``python -m search.cache list|clear``: the training-data cache's entries, their total against the
bound, and clearing them — never the worlds that share the cache root."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.features import FeatureConfig
from tests.search.conftest import REPO, run_main
from tests.synthetic import synthetic_catalog, synthetic_events

from search.cache_bound import when
from search.data_cache import source_digest, training_data


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.npz") if not p.name.startswith("."))


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A cache root with two recorded entries, one without a record, an unfinished write and a world."""
    root = tmp_path / "cache"
    monkeypatch.setenv("BOTIFY_TUNE_CACHE", str(root))
    monkeypatch.setenv("BOTIFY_TUNE_CACHE_GB", "0.5")
    folder = root / "training-data"
    catalog = synthetic_catalog(100, n_genres=3, seed=6)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=6)
    for threshold, used in ((0.35, 2_000_000), (0.6000000000000001, 1_000_000)):
        training_data(events, catalog, FeatureConfig(min_positives=1, positive_threshold=threshold), folder,
                      source_digest(events, catalog))
        (newest,) = [p for p in folder.glob("*.npz") if p.stat().st_mtime > 10**9]
        os.utime(newest, (used, used))
    np.savez(folder / "0000legacy.npz", train=np.zeros((3, 3), np.int32))  # an entry from before records
    os.utime(folder / "0000legacy.npz", (3_000_000, 3_000_000))
    (folder / ".0000legacy.tmp.npz").write_bytes(b"x" * 10)  # a killed trial's write
    world = root / "world-0123456789ab"
    world.mkdir()
    (world / "users.json").write_text("[]")
    np.savez(world / "kept.npz", a=np.arange(10))  # a world's files are never entries, whatever their name
    return root


def test_list_shows_each_entry_its_setting_the_total_and_the_bound(root):
    ran = run_main("search.cache", "list")
    assert ran.returncode == 0 and ran.stderr == ""
    lines = ran.stdout.splitlines()
    folder = root / "training-data"
    assert lines[0] == f"training-data cache {folder} (least recently used first)"
    rows = lines[1:4]
    assert [row.split()[0] for row in rows][2] == "0000legacy.npz"  # used last
    assert f"last used {when(1_000_000)}" in rows[0] and "positive_threshold=0.6 " in rows[0]
    assert f"last used {when(2_000_000)}" in rows[1] and "positive_threshold=0.35 " in rows[1]
    source = rows[0].split("source=")[1]
    assert rows[0].endswith(f"min_positives=1 positive_threshold=0.6 source={source}") and len(source) == 16
    assert rows[2].endswith("(setting not recorded)")
    total = sum((folder / name).stat().st_size for name in _entries(folder))
    assert lines[4] == f"3 entries, {total / 1e6:.1f} MB of the 500.0 MB bound ($BOTIFY_TUNE_CACHE_GB)"
    assert lines[5].startswith("1 unfinished writes (0.0 MB)")
    assert lines[6].startswith(f"not an entry (never evicted or cleared here): {root / 'world-0123456789ab'} (")


def test_clear_removes_the_entries_and_unfinished_writes_and_never_a_world(root):
    folder = root / "training-data"
    before = _entries(folder)
    ran = run_main("search.cache", "clear")
    assert ran.returncode == 0
    removed = [line.split()[1] for line in ran.stdout.splitlines() if line.startswith("removed ")]
    assert sorted(Path(p).name for p in removed) == sorted(before + [".0000legacy.tmp.npz"])
    assert ran.stdout.splitlines()[-1].startswith(f"cleared {folder}: 4 files, ")
    assert not list(folder.glob("*.npz"))  # hidden ones included
    assert (root / "world-0123456789ab" / "kept.npz").is_file() and (root / "world-0123456789ab" / "users.json").is_file()
    after = run_main("search.cache", "list").stdout.splitlines()
    assert after[1] == "0 entries, 0.0 MB of the 500.0 MB bound ($BOTIFY_TUNE_CACHE_GB)"
    again = run_main("search.cache", "clear")
    assert again.returncode == 0 and again.stdout.splitlines() == [f"cleared {folder}: 0 files, 0.0 MB"]


def test_clear_without_a_cache_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("BOTIFY_TUNE_CACHE", str(tmp_path / "none"))
    ran = run_main("search.cache", "clear")
    assert ran.returncode == 0 and "nothing to clear" in ran.stdout and not (tmp_path / "none").exists()


def test_a_bad_bound_is_one_line_and_exit_2(root, monkeypatch):
    monkeypatch.setenv("BOTIFY_TUNE_CACHE_GB", "lots")
    ran = run_main("search.cache", "list")
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr == ("error: $BOTIFY_TUNE_CACHE_GB: expected a size in gigabytes >= 0 (e.g. 4 or 0.5), "
                          "got 'lots'\n")


@pytest.mark.parametrize("args, error", [
    ([], "the following arguments are required"),
    (["purge"], "invalid choice: 'purge'"),
    (["clear", "--all"], "unrecognized arguments: --all"),
])
def test_bad_arguments_exit_2_and_remove_nothing(root, args, error):
    ran = subprocess.run([sys.executable, "-m", "search.cache", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 2 and error in ran.stderr and "usage: python -m search.cache" in ran.stderr
    assert len(_entries(root / "training-data")) == 3
