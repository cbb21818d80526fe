"""The world in the course's file format: public catalog + hidden truth.

``tracks.json`` (public catalog), ``tracks.npy`` (float32 [N, dim] embeddings, hidden) and
``users.json`` (JSON lines of user parameters, hidden). Only the simulator and the oracle
policy may read the hidden parts. An optional ``top_tracks.json`` (public: botify's TopPop file,
computed from logged data) is what the ``toppop`` policy serves.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim_bridge.contract.catalog import Catalog, read_catalog, write_catalog
from sim_bridge.contract.files import atomic_path, atomic_write_text, parse_object
from sim_bridge.contract.recs import read_top_tracks

DEFAULT_INTEREST_NEIGHBOURS = 10
DEFAULT_SESSION_BUDGET = 5
DEFAULT_ARTIST_DISCOUNT_GAMMA = 0.8

TRACKS_JSON = "tracks.json"
TRACKS_NPY = "tracks.npy"
USERS_JSON = "users.json"
TOP_TRACKS_JSON = "top_tracks.json"


class WorldFormatError(ValueError):
    """A world file is missing or malformed."""


@dataclass(frozen=True)
class Users:
    """Hidden listener parameters, one row per user (docs/formats.md, docs/listener.md)."""

    user: np.ndarray  # int64 [U] user ids as logged
    interests: np.ndarray  # int64 [U, K] interest track ids, padded with -1
    n_interests: np.ndarray  # int64 [U]
    consume_bias: np.ndarray  # float64 [U]
    consume_sharpness: np.ndarray  # float64 [U]
    session_budget: np.ndarray  # int64 [U]
    artist_discount_gamma: np.ndarray  # float64 [U]
    interest_neighbours: np.ndarray  # int64 [U]

    def __len__(self) -> int:
        return len(self.user)


@dataclass(frozen=True)
class World:
    """A catalog plus the simulator's hidden truth about tracks and users."""

    catalog: Catalog
    embeddings: np.ndarray  # float32 [N, dim]
    users: Users
    top_tracks: np.ndarray | None = None  # public: the logged TopPop list, when the folder has one

    def __post_init__(self) -> None:
        if self.embeddings.shape[0] != self.catalog.n_tracks:
            raise WorldFormatError(
                f"{TRACKS_NPY} has {self.embeddings.shape[0]} rows but the catalog has "
                f"{self.catalog.n_tracks} tracks"
            )
        bad = (self.users.interests >= self.catalog.n_tracks).any()
        if bad:
            raise WorldFormatError(f"{USERS_JSON}: an interest refers to a track outside the catalog")


def load_world(folder: str | Path) -> World:
    """Load ``tracks.json``, ``tracks.npy`` and ``users.json`` from ``folder``."""
    folder = Path(folder)
    for name in (TRACKS_JSON, TRACKS_NPY, USERS_JSON):
        if not (folder / name).is_file():
            raise WorldFormatError(f"{folder}: missing {name} (expected the course's world format)")
    catalog = read_catalog(folder / TRACKS_JSON)
    embeddings = np.load(folder / TRACKS_NPY, allow_pickle=False).astype(np.float32, copy=False)
    if embeddings.ndim != 2:
        raise WorldFormatError(f"{folder / TRACKS_NPY}: expected a 2-d array, got shape {embeddings.shape}")
    top = None
    if (folder / TOP_TRACKS_JSON).is_file():
        top = read_top_tracks(folder / TOP_TRACKS_JSON)
        if top.max() >= catalog.n_tracks:
            raise WorldFormatError(f"{folder / TOP_TRACKS_JSON}: names a track outside the catalog")
    return World(catalog, embeddings, read_users(folder / USERS_JSON), top)


def save_world(world: World, folder: str | Path) -> None:
    """Write the world in the course format; the same world gives byte-identical files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_catalog(world.catalog, folder / TRACKS_JSON)
    with atomic_path(folder / TRACKS_NPY) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, world.embeddings.astype(np.float32))
    write_users(world.users, folder / USERS_JSON)


def write_users(users: Users, path: Path) -> None:
    """Write ``users.json`` (JSON lines), all optional fields included."""
    lines = []
    for i in range(len(users)):
        row = {
            "user": int(users.user[i]),
            "interests": [int(t) for t in users.interests[i, : users.n_interests[i]]],
            "consume_bias": float(users.consume_bias[i]),
            "consume_sharpness": float(users.consume_sharpness[i]),
            "session_budget": int(users.session_budget[i]),
            "artist_discount_gamma": float(users.artist_discount_gamma[i]),
            "interest_neighbours": int(users.interest_neighbours[i]),
        }
        lines.append(json.dumps(row))
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_users(path: Path) -> Users:
    """Read ``users.json``; errors name the file, line and field."""
    rows = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                rows.append(_parse_user(line, path, lineno))
    if not rows:
        raise WorldFormatError(f"{path}: no users")
    width = max(len(r["interests"]) for r in rows)
    interests = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        interests[i, : len(r["interests"])] = r["interests"]

    def col(name: str, dtype: type) -> np.ndarray:
        return np.array([r[name] for r in rows], dtype=dtype)

    return Users(
        user=col("user", np.int64),
        interests=interests,
        n_interests=np.array([len(r["interests"]) for r in rows], dtype=np.int64),
        consume_bias=col("consume_bias", np.float64),
        consume_sharpness=col("consume_sharpness", np.float64),
        session_budget=col("session_budget", np.int64),
        artist_discount_gamma=col("artist_discount_gamma", np.float64),
        interest_neighbours=col("interest_neighbours", np.int64),
    )


_USER_FIELDS = {"user": int, "consume_bias": (int, float), "consume_sharpness": (int, float)}
_USER_DEFAULTS = {
    "session_budget": DEFAULT_SESSION_BUDGET,
    "artist_discount_gamma": DEFAULT_ARTIST_DISCOUNT_GAMMA,
    "interest_neighbours": DEFAULT_INTEREST_NEIGHBOURS,
}


def _parse_user(line: str, path: Path, lineno: int) -> dict:
    where = f"{path}:{lineno}"
    obj = parse_object(line, where, _USER_FIELDS, WorldFormatError)
    for field, kinds in _USER_FIELDS.items():
        if isinstance(obj[field], bool) or not isinstance(obj[field], kinds):
            raise WorldFormatError(f"{where}: field '{field}' has the wrong type ({obj[field]!r})")
    interests = obj.get("interests")
    if not isinstance(interests, list) or not interests or not all(
        isinstance(t, int) and t >= 0 for t in interests
    ):
        raise WorldFormatError(f"{where}: field 'interests' must be a non-empty list of track ids")
    row = {**_USER_DEFAULTS, **{k: v for k, v in obj.items() if k in _USER_DEFAULTS}}
    row.update({k: obj[k] for k in _USER_FIELDS}, interests=interests)
    return row
