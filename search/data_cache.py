"""The training-data cache: built once per distinct ``features.*`` setting, kept under a bound.

When a search samples ``features.*`` keys every trial needs the data of its own setting; it is
loaded from ``<cache>/<digest>.npz`` (the digest covers the feature config and a digest of the
logs and the public catalog; written atomically, read with ``allow_pickle=False``), or built and
written there the first time. The space keeps those settings few: a ``features.*`` float must be
sampled on a grid (:mod:`search.config`). The folder is ``<cache root>/training-data`` (the root of
:func:`sim_bridge.defaults.cache_root`, whose world folders are no entries here) and stays under
``$BOTIFY_TUNE_CACHE_GB``, the least recently used entries evicted first (:mod:`search.cache_bound`).
Each entry records the setting it was built for (``python -m search.cache list`` shows it).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.features import FeatureConfig, TrainingData, build_training_data
from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog
from sim_bridge.defaults import cache_root

from search import cache_bound

FOLDER = "training-data"
SUFFIX = ".npz"
SETTING_KEY = "__setting__"  # the entry's JSON record of what it was built for
_DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


@dataclass(frozen=True)
class Loaded:
    """A trial's training data and where it came from: ``hit`` True (the cache), False (built and
    cached now) or None (built without the cache)."""

    data: TrainingData
    hit: bool | None


def cache_dir() -> Path:
    """The cache's folder under the cache root (``$BOTIFY_TUNE_CACHE`` or ``~/.cache/botify-tune``)."""
    return cache_root() / FOLDER


def source_digest(events: pd.DataFrame, catalog: Catalog) -> str:
    """A digest of everything the training data is built from besides its config: the logs' columns
    (row order included) and the catalog's public columns (genres, artists, popularity: two worlds
    with the same logs but other genre labels must not share a cache file)."""
    h = hashlib.sha256()
    for frame in (events[[C.USER, C.TRACK, C.TIME, C.TIMESTAMP]], catalog.tracks[list(C.CATALOG_COLUMNS)]):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def data_digest(features: FeatureConfig, source: str) -> str:
    return hashlib.sha256(_setting_json(features, source).encode()).hexdigest()[:16]


def _setting_json(features: FeatureConfig, source: str) -> str:
    return json.dumps({"features": dataclasses.asdict(features), "source": source}, sort_keys=True)


def training_data(events: pd.DataFrame, catalog: Catalog, features: FeatureConfig,
                  cache_dir: str | Path | None = None, source: str | None = None,
                  bound: int | None = None) -> Loaded:
    """``build_training_data``, through the on-disk cache when ``cache_dir`` and ``source``
    (:func:`source_digest` of ``events`` and ``catalog``) are given. ``bound``: the cache's size in
    bytes (default ``$BOTIFY_TUNE_CACHE_GB``)."""
    if cache_dir is None or source is None:
        return Loaded(build_training_data(events, catalog, features), hit=None)
    path = Path(cache_dir) / f"{data_digest(features, source)}{SUFFIX}"
    data = _load_data(path)
    if data is not None:
        cache_bound.touch(path)
        return Loaded(data, hit=True)
    data = build_training_data(events, catalog, features)
    _save_data(data, path, _setting_json(features, source), cache_bound.bound_bytes() if bound is None else bound)
    return Loaded(data, hit=False)


def read_setting(path: Path) -> dict | None:
    """The setting an entry records (``features``, ``source``); None for an entry without one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z[SETTING_KEY])) if SETTING_KEY in z.files else None
    except (*_DAMAGED, json.JSONDecodeError):
        return None


def _save_data(data: TrainingData, path: Path, setting: str, bound: int) -> None:
    """Write ``data`` beside ``path``, then move it in under the bound (concurrent trials may race:
    the last rename wins, and both wrote the same arrays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            arrays = {f.name: np.asarray(getattr(data, f.name)) for f in dataclasses.fields(data)}
            np.savez(fh, **arrays, **{SETTING_KEY: np.asarray(setting)})
        cache_bound.put(Path(tmp), path, bound)
    finally:
        Path(tmp).unlink(missing_ok=True)  # left only when something failed


def _load_data(path: Path) -> TrainingData | None:
    """The entry at ``path``; None when it is missing, evicted meanwhile, or damaged (rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {f.name: z[f.name] for f in dataclasses.fields(TrainingData)}
    except _DAMAGED:
        return None
    arrays["n_tracks"] = int(arrays["n_tracks"])
    return TrainingData(**arrays)
