"""The training-data cache: built once per distinct ``features.*`` setting.

When a search samples ``features.*`` keys every trial needs the data of its own setting; it is
loaded from ``<cache>/<digest>.npz`` (the digest covers the feature config and a digest of the
logs and the public catalog; written atomically, read with ``allow_pickle=False``).
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


def source_digest(events: pd.DataFrame, catalog: Catalog) -> str:
    """A digest of everything the training data is built from besides its config: the logs' columns
    (row order included) and the catalog's public columns (genres, artists, popularity: two worlds
    with the same logs but other genre labels must not share a cache file)."""
    h = hashlib.sha256()
    for frame in (events[[C.USER, C.TRACK, C.TIME, C.TIMESTAMP]], catalog.tracks[list(C.CATALOG_COLUMNS)]):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def data_digest(features: FeatureConfig, source: str) -> str:
    blob = json.dumps({"features": dataclasses.asdict(features), "source": source}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def training_data(events: pd.DataFrame, catalog: Catalog, features: FeatureConfig,
                  cache_dir: str | Path | None = None, source: str | None = None) -> TrainingData:
    """``build_training_data``, through the on-disk cache when ``cache_dir`` and ``source``
    (:func:`source_digest` of ``events`` and ``catalog``) are given."""
    if cache_dir is None or source is None:
        return build_training_data(events, catalog, features)
    path = Path(cache_dir) / f"{data_digest(features, source)}.npz"
    if path.is_file():
        try:
            return _load_data(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged file: rebuild and replace it
    data = build_training_data(events, catalog, features)
    _save_data(data, path)
    return data


def _save_data(data: TrainingData, path: Path) -> None:
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


def _load_data(path: Path) -> TrainingData:
    with np.load(path, allow_pickle=False) as z:
        arrays = {f.name: z[f.name] for f in dataclasses.fields(TrainingData)}
    arrays["n_tracks"] = int(arrays["n_tracks"])
    return TrainingData(**arrays)
