"""search.data_cache: training data built once per features.* setting and source, cached on disk
under a bound (search.cache_bound: least recently used out first), each trial saying hit or miss."""
import dataclasses
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from model.features import FeatureConfig, build_training_data
from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog
from tests.synthetic import synthetic_catalog, synthetic_events

from search import cache_bound
from search.cache_bound import bound_bytes, entries, put
from search.data_cache import data_digest, read_setting, source_digest, training_data
from sim_bridge.contract.files import ConfigError


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name)))
               for f in dataclasses.fields(a))


def test_built_once_then_loaded_identical(tmp_path):
    catalog = synthetic_catalog(200, n_genres=4, seed=2)
    events = synthetic_events(catalog, n_users=40, n_events=2000, seed=2)
    feats, source = FeatureConfig(min_positives=1), source_digest(events, catalog)
    first = training_data(events, catalog, feats, tmp_path, source)
    (path,) = tmp_path.glob("*.npz")
    assert path.stem == data_digest(feats, source) and first.hit is False
    again = training_data(events, catalog, feats, tmp_path, source)
    assert again.hit is True
    first, again = first.data, again.data
    assert _same(first, again) and _same(first, build_training_data(events, catalog, feats))
    assert isinstance(again.n_tracks, int)
    training_data(events, catalog, FeatureConfig(min_positives=2), tmp_path, source)  # another setting
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert source_digest(events.iloc[:-1], catalog) != source


def test_the_same_logs_with_other_genre_labels_get_their_own_training_data(tmp_path):
    catalog = synthetic_catalog(200, n_genres=4, seed=2)
    events = synthetic_events(catalog, n_users=40, n_events=2000, seed=2)
    tracks = catalog.tracks.copy()
    tracks[C.GENRE] = tracks[C.GENRE].iloc[::-1].to_numpy()  # same tracks, artists and logs; other labels
    relabelled, feats = Catalog(tracks), FeatureConfig(min_positives=1)
    first = training_data(events, catalog, feats, tmp_path, source_digest(events, catalog)).data
    second = training_data(events, relabelled, feats, tmp_path, source_digest(events, relabelled)).data
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert _same(second, build_training_data(events, relabelled, feats)) and not _same(first, second)


def test_a_damaged_file_is_rebuilt(tmp_path):
    catalog = synthetic_catalog(100, n_genres=3, seed=3)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=3)
    feats, source = FeatureConfig(min_positives=1), source_digest(events, catalog)
    path = tmp_path / f"{data_digest(feats, source)}.npz"
    path.write_bytes(b"not a zip")
    loaded = training_data(events, catalog, feats, tmp_path, source)
    assert loaded.hit is False and _same(loaded.data, build_training_data(events, catalog, feats))
    assert path.stat().st_size > 100  # replaced by a good file


def test_a_course_schema_catalog_is_digested_and_cached(tmp_path):
    """Genre id lists (the course's tracks.json) hash like any other column: no crash, and the
    ids themselves count (another list is another source)."""
    catalog = synthetic_catalog(100, n_genres=3, seed=3)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=3)
    lists = [[1, 47] if i % 3 else [1] for i in range(catalog.n_tracks)]
    course = Catalog(catalog.tracks.assign(**{C.GENRE: lists, C.POP: np.linspace(-1.4, 4.3, catalog.n_tracks)}))
    other = Catalog(course.tracks.assign(**{C.GENRE: [[1, 6] if i % 3 else [1] for i in range(catalog.n_tracks)]}))
    assert source_digest(events, course) != source_digest(events, other)
    data = training_data(events, course, FeatureConfig(min_positives=1), tmp_path, source_digest(events, course)).data
    assert data.genre_ids.tolist() == [1, 47] and data.item_pop.min() < 0


# ---------------------------------------------------------------- hits touch, entries record their setting


def test_a_hit_touches_its_entry_and_every_entry_records_its_setting(tmp_path):
    catalog = synthetic_catalog(100, n_genres=3, seed=4)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=4)
    feats, source = FeatureConfig(min_positives=1, positive_threshold=0.35), source_digest(events, catalog)
    training_data(events, catalog, feats, tmp_path, source)
    (path,) = tmp_path.glob("*.npz")
    os.utime(path, (1_000_000, 1_000_000))  # long unused
    assert training_data(events, catalog, feats, tmp_path, source).hit is True
    assert path.stat().st_mtime > 1_000_000 + 10**8  # touched: now the most recently used
    setting = read_setting(path)
    assert setting["source"] == source and setting["features"] == dataclasses.asdict(feats)


def test_without_a_cache_folder_the_data_is_built_and_no_hit_is_claimed(tmp_path):
    catalog = synthetic_catalog(100, n_genres=3, seed=4)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=4)
    loaded = training_data(events, catalog, FeatureConfig(min_positives=1))
    assert loaded.hit is None and not list(tmp_path.iterdir())


# ---------------------------------------------------------------- the bound (search.cache_bound)

SIZE = 300_000  # bytes of each test entry: printed as 0.3 MB


def _entry(folder: Path, name: str, used: float, size: int = SIZE) -> Path:
    path = folder / name
    path.write_bytes(b"x" * size)
    os.utime(path, (used, used))
    return path


def _tmp(folder: Path, size: int = SIZE) -> Path:
    return _entry(folder, f".new.{size}.npz", 0, size)


def test_the_least_recently_used_entries_are_evicted_first_one_line_each(tmp_path):
    for name, used in (("b.npz", 2_000_000), ("a.npz", 1_000_000), ("c.npz", 3_000_000)):
        _entry(tmp_path, name, used)
    lines = []
    assert put(_tmp(tmp_path), tmp_path / "d.npz", bound=3 * SIZE, log=lines.append)
    assert lines == [f"data cache: evicted {tmp_path / 'a.npz'} (0.3 MB, last used {cache_bound.when(1_000_000)})"]
    assert [e.path.name for e in entries(tmp_path, ".npz")] == ["b.npz", "c.npz", "d.npz"]  # d: used now
    lines.clear()
    assert put(_tmp(tmp_path, 2 * SIZE), tmp_path / "e.npz", bound=3 * SIZE, log=lines.append)
    assert [line.split()[3] for line in lines] == [str(tmp_path / "b.npz"), str(tmp_path / "c.npz")]
    assert [e.path.name for e in entries(tmp_path, ".npz")] == ["d.npz", "e.npz"]
    assert sum(e.size for e in entries(tmp_path, ".npz")) <= 3 * SIZE
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "d.npz", "e.npz"]  # no temporary file left


def test_an_entry_replaced_in_place_is_not_evicted_and_hidden_files_are_no_entries(tmp_path):
    _entry(tmp_path, "a.npz", 1_000_000)
    _entry(tmp_path, "b.npz", 2_000_000)
    _entry(tmp_path, ".b.unfinished.npz", 1)  # another writer's temporary file
    lines = []
    assert put(_tmp(tmp_path), tmp_path / "a.npz", bound=2 * SIZE, log=lines.append)
    assert lines == [] and sorted(e.path.name for e in entries(tmp_path, ".npz")) == ["a.npz", "b.npz"]


def test_an_entry_larger_than_the_bound_is_not_kept(tmp_path):
    _entry(tmp_path, "a.npz", 1_000_000)
    lines, tmp = [], _tmp(tmp_path, 2 * SIZE)
    assert not put(tmp, tmp_path / "big.npz", bound=SIZE, log=lines.append)
    assert not tmp.exists() and not (tmp_path / "big.npz").exists() and (tmp_path / "a.npz").exists()
    assert lines == [f"data cache: not kept {tmp_path / 'big.npz'} (0.6 MB): larger than the bound (0.3 MB, "
                     "$BOTIFY_TUNE_CACHE_GB)"]


def test_a_bound_of_one_entry_keeps_the_last_setting_and_says_what_it_evicted(tmp_path, capsys):
    catalog = synthetic_catalog(200, n_genres=4, seed=5)
    events = synthetic_events(catalog, n_users=40, n_events=2000, seed=5)
    source = source_digest(events, catalog)
    first = training_data(events, catalog, FeatureConfig(min_positives=1, positive_threshold=0.3), tmp_path, source)
    (old,) = tmp_path.glob("*.npz")
    bound = int(old.stat().st_size * 1.5)  # room for one entry
    hits = [training_data(events, catalog, FeatureConfig(min_positives=1, positive_threshold=t), tmp_path, source,
                          bound=bound).hit for t in (0.3, 0.5, 0.3)]
    assert first.hit is False and hits == [True, False, False]  # 0.5 evicted 0.3, then 0.3 evicted 0.5
    evicted = [line for line in capsys.readouterr().out.splitlines() if line.startswith("data cache: evicted")]
    assert len(evicted) == 2 and evicted[0].split()[3] == str(old) != evicted[1].split()[3]
    (kept,) = entries(tmp_path, ".npz")
    assert read_setting(kept.path)["features"]["positive_threshold"] == 0.3


def test_the_bound_is_read_from_the_environment():
    assert bound_bytes({}) == 4 * 10**9  # the default: 4 GB
    assert bound_bytes({"BOTIFY_TUNE_CACHE_GB": "0.5"}) == 5 * 10**8
    assert bound_bytes({"BOTIFY_TUNE_CACHE_GB": "0"}) == 0
    for bad in ("four", "-1", "nan", "inf"):
        with pytest.raises(ConfigError, match=r"\$BOTIFY_TUNE_CACHE_GB: expected a size in gigabytes >= 0"):
            bound_bytes({"BOTIFY_TUNE_CACHE_GB": bad})


def _writer(folder: str, worker: int, bound: int) -> None:
    folder = Path(folder)
    for i in range(12):
        tmp = folder / f".w{worker}.{i}.npz"
        tmp.write_bytes(b"x" * (SIZE // 3))
        put(tmp, folder / f"w{worker}-{i}.npz", bound, log=lambda line: None)
        for entry in entries(folder, ".npz"):  # readers race the evictions: a vanished file is no error
            cache_bound.touch(entry.path)


def test_concurrent_writers_in_separate_processes_keep_the_bound(tmp_path):
    bound = 4 * (SIZE // 3)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, bound)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    left = entries(tmp_path, ".npz")
    assert len(left) == 4 and sum(e.size for e in left) <= bound  # exactly full, never past it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".w")]  # every temporary file moved in


# ---------------------------------------------------------------- hits and misses in the trial's reports


@pytest.fixture(scope="module")
def smoke_inputs():
    from sim_bridge import defaults
    from sim_bridge.contract.logs import read_logs
    from sim_bridge.world import load_world

    return load_world(defaults.ensure_smoke_world()), read_logs(defaults.ensure_smoke_logs())


def test_each_trial_reports_whether_its_data_came_from_the_cache(tmp_path, smoke_inputs):
    from model.config import load_experiment_config
    from sim_bridge import defaults
    from sim_bridge.contract.files import with_overrides

    from search.trial import TrialInputs, TrialSetup, run_trial
    from tests.search.conftest import TINY

    world, events = smoke_inputs
    cfg = with_overrides(load_experiment_config(defaults.CONFIG_DIR / "train.yaml"), TINY)
    setup = TrialSetup(data_cache=str(tmp_path), source_digest=source_digest(events, world.catalog))
    inputs = TrialInputs(world, None, events, None)
    reports = []
    for _ in range(2):
        rows = []
        out = run_trial(cfg, inputs, setup, on_epoch=lambda row, **kw: rows.append(row))
        reports.append((out.metrics["data_cache_hit"], [row["data_cache_hit"] for row in rows]))
    assert reports == [(0.0, [0.0]), (1.0, [1.0])]  # a miss (built and cached), then a hit
    shared = TrialInputs(world, build_training_data(events, world.catalog, cfg.features), None, None)
    assert "data_cache_hit" not in run_trial(cfg, shared, TrialSetup()).metrics  # no cache, no claim


def test_the_trainable_passes_the_hit_on_in_every_epoch_report(monkeypatch):
    from search import trainable

    sent = []
    monkeypatch.setattr(trainable, "report", lambda metrics, checkpoint_dir=None: sent.append(metrics))
    trainable._report_epoch({"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "data_cache_hit": 1.0}, rung_lift=3.0)
    trainable._report_epoch({"epoch": 1, "train_loss": 0.5, "val_loss": 0.4}, rung_lift=3.0)
    assert sent[0]["data_cache_hit"] == 1.0 and "data_cache_hit" not in sent[1]


def test_summary_md_counts_the_runs_hits_and_misses(tmp_path):
    import pandas as pd

    from search.config import objective
    from search.trials import SUMMARY_FILE, cache_counts, write_summary

    frame = pd.DataFrame({"trial_id": list("abcde"), "status": ["finished", "stopped", "finished", "errored", "stopped"],
                          "score": [1.0, np.nan, 2.0, np.nan, np.nan],
                          "data_cache_hit": [0.0, 1.0, 1.0, np.nan, 1.0]})  # the errored trial never reported
    assert cache_counts(frame) == "Training data: 3 from the cache, 1 built (cache misses).\n"
    write_summary(frame, objective("score"), tmp_path)
    assert "Training data: 3 from the cache, 1 built (cache misses)." in (tmp_path / SUMMARY_FILE).read_text()
    shared = frame.assign(data_cache_hit=None)  # no features.* sampled: one shared dataset, no cache
    assert cache_counts(shared) == cache_counts(frame.drop(columns="data_cache_hit")) == ""
    write_summary(shared, objective("score"), tmp_path)
    assert "Training data" not in (tmp_path / SUMMARY_FILE).read_text()
