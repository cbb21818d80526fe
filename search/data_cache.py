"""Training data built once per distinct ``features.*`` setting, shared on disk across trials.

When the search samples ``features.*`` keys, each trial needs the data of its own setting; trials
with the same setting (and the same logs) load it from ``<cache>/training-data/<digest>.npz``
instead of building it again. The digest covers the feature config and a digest of the logs, so
other logs or another setting never reuse a file. Files are written atomically (temp + rename),
read with ``allow_pickle=False``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from model.features import FeatureConfig, TrainingData, build_training_data
from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog


def logs_digest(events: pd.DataFrame) -> str:
    """A digest of the columns the training data is built from (row order included)."""
    used = events[[C.USER, C.TRACK, C.TIME, C.TIMESTAMP]]
    return hashlib.sha256(pd.util.hash_pandas_object(used, index=False).to_numpy().tobytes()).hexdigest()[:16]


def data_digest(features: FeatureConfig, logs: str) -> str:
    blob = json.dumps({"features": dataclasses.asdict(features), "logs": logs}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def training_data(events: pd.DataFrame, catalog: Catalog, features: FeatureConfig,
                  cache_dir: str | Path | None = None, logs: str | None = None) -> TrainingData:
    """``build_training_data``, through the on-disk cache when ``cache_dir`` and ``logs`` are given."""
    if cache_dir is None or logs is None:
        return build_training_data(events, catalog, features)
    path = Path(cache_dir) / f"{data_digest(features, logs)}.npz"
    if path.is_file():
        try:
            return load(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged file: rebuild and replace it
    data = build_training_data(events, catalog, features)
    save(data, path)
    return data


def save(data: TrainingData, path: Path) -> None:
    """Write ``data`` to ``path`` atomically (concurrent trials may race: the last rename wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{f.name: np.asarray(getattr(data, f.name)) for f in dataclasses.fields(data)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> TrainingData:
    with np.load(path, allow_pickle=False) as z:
        arrays = {f.name: z[f.name] for f in dataclasses.fields(TrainingData)}
    arrays["n_tracks"] = int(arrays["n_tracks"])
    return TrainingData(**arrays)
