"""search.data_cache: training data built once per features setting and logs, then loaded."""
import dataclasses

import numpy as np

from model.features import FeatureConfig, build_training_data
from tests.synthetic import synthetic_catalog, synthetic_events

from search.data_cache import data_digest, logs_digest, training_data


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name)))
               for f in dataclasses.fields(a))


def test_built_once_then_loaded_identical(tmp_path):
    catalog = synthetic_catalog(200, n_genres=4, seed=2)
    events = synthetic_events(catalog, n_users=40, n_events=2000, seed=2)
    feats, logs = FeatureConfig(min_positives=1), logs_digest(events)
    first = training_data(events, catalog, feats, tmp_path, logs)
    (path,) = tmp_path.glob("*.npz")
    assert path.stem == data_digest(feats, logs)
    again = training_data(events, catalog, feats, tmp_path, logs)
    assert _same(first, again) and _same(first, build_training_data(events, catalog, feats))
    assert isinstance(again.n_tracks, int)
    training_data(events, catalog, FeatureConfig(min_positives=2), tmp_path, logs)  # another setting
    assert len(list(tmp_path.glob("*.npz"))) == 2
    other_logs = logs_digest(events.iloc[:-1])
    assert other_logs != logs and data_digest(feats, other_logs) != data_digest(feats, logs)


def test_a_damaged_file_is_rebuilt(tmp_path):
    catalog = synthetic_catalog(100, n_genres=3, seed=3)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=3)
    feats, logs = FeatureConfig(min_positives=1), logs_digest(events)
    path = tmp_path / f"{data_digest(feats, logs)}.npz"
    path.write_bytes(b"not a zip")
    data = training_data(events, catalog, feats, tmp_path, logs)
    assert _same(data, build_training_data(events, catalog, feats))
    assert path.stat().st_size > 100  # replaced by a good file
