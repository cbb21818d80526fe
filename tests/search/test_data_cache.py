"""search.data_cache: training data built once per features.* setting and source, cached on disk."""
import dataclasses

import numpy as np

from model.features import FeatureConfig, build_training_data
from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog
from tests.synthetic import synthetic_catalog, synthetic_events

from search.data_cache import data_digest, source_digest, training_data


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name)))
               for f in dataclasses.fields(a))


def test_built_once_then_loaded_identical(tmp_path):
    catalog = synthetic_catalog(200, n_genres=4, seed=2)
    events = synthetic_events(catalog, n_users=40, n_events=2000, seed=2)
    feats, source = FeatureConfig(min_positives=1), source_digest(events, catalog)
    first = training_data(events, catalog, feats, tmp_path, source)
    (path,) = tmp_path.glob("*.npz")
    assert path.stem == data_digest(feats, source)
    again = training_data(events, catalog, feats, tmp_path, source)
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
    first = training_data(events, catalog, feats, tmp_path, source_digest(events, catalog))
    second = training_data(events, relabelled, feats, tmp_path, source_digest(events, relabelled))
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert _same(second, build_training_data(events, relabelled, feats)) and not _same(first, second)


def test_a_damaged_file_is_rebuilt(tmp_path):
    catalog = synthetic_catalog(100, n_genres=3, seed=3)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=3)
    feats, source = FeatureConfig(min_positives=1), source_digest(events, catalog)
    path = tmp_path / f"{data_digest(feats, source)}.npz"
    path.write_bytes(b"not a zip")
    data = training_data(events, catalog, feats, tmp_path, source)
    assert _same(data, build_training_data(events, catalog, feats))
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
    data = training_data(events, course, FeatureConfig(min_positives=1), tmp_path, source_digest(events, course))
    assert data.genre_ids.tolist() == [1, 47] and data.item_pop.min() < 0
