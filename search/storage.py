"""Where a search's experiment lives when ``--storage-path`` is a URI that every node reaches.

On one machine an experiment is the folder ``STORAGE/NAME``. On a cluster, trials on other nodes
write their checkpoints to Tune's storage directly, so it must be shared: a URI such as
``s3://BUCKET/PREFIX`` (the usual AWS environment variables; an S3-compatible server through
``AWS_ENDPOINT_URL`` or pyarrow's ``?endpoint_override=HOST:PORT&scheme=http``) or
``file:///mnt/shared/runs`` (a mount every node has). Then:

* Tune's state, the trials' folders and checkpoints go to ``URI/NAME``;
* the driver keeps the experiment's driver-side files (``search_run.json``, ``optuna.journal``,
  ``asha_stopped.txt``) in a local folder, ``--local-dir/NAME``, and :class:`Mirror` copies them
  to ``URI/NAME`` whenever a trial starts or ends, so a restart anywhere finds the study;
* when the search ends, :func:`download` makes the local folder a complete copy of ``URI/NAME``
  (Tune's files, every trial and checkpoint) and ``trials.parquet``, ``summary.md`` and ``best/``
  are written there and uploaded back: the bucket holds the whole experiment, and
  ``search.export``, ``search.confirm``, ``search.report`` and ``search.serve`` read the local copy
  as they read any experiment folder.

:func:`check` turns a bad URI (unknown scheme, credentials in it, a missing bucket, an unreachable
endpoint, no right to write) into one :class:`~search.errors.SearchError` before Ray starts.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
from pyarrow import fs as pafs
from ray import tune

from search.errors import SearchError

# written by the driver, next to Tune's files; the local copy is their source of truth
DRIVER_FILES = ("search_run.json", "optuna.journal", "asha_stopped.txt")
OBJECT_STORES = ("s3", "gcs")  # pyarrow's type_name of filesystems whose first path part is a bucket
PROBE = ".botify-tune-write-check"


def is_uri(path: str | os.PathLike) -> bool:
    """Whether ``--storage-path`` names a URI (``scheme://...``) rather than a local folder."""
    return "://" in str(path)


def redact(uri: str) -> str:
    """``uri`` for messages: without its query and without credentials written into it."""
    base = uri.split("?", 1)[0]
    scheme, sep, rest = base.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1] if '@' in rest.split('/', 1)[0] else rest}"


def join(uri: str, name: str) -> str:
    """``uri/name``, the query (``?endpoint_override=...``) kept at the end."""
    base, sep, query = uri.partition("?")
    return f"{base.rstrip('/')}/{name}{sep}{query}"


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem and path of ``uri`` (a plain absolute path: the local filesystem)."""
    if not is_uri(uri):
        return pafs.LocalFileSystem(), str(Path(uri).resolve())
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OSError) as exc:
        raise SearchError(f"--storage-path {redact(uri)}: {_first_line(exc)}; expected s3://BUCKET/PREFIX, "
                          "gs://BUCKET/PREFIX or file:///ABSOLUTE/SHARED/PATH") from None


def check(uri: str) -> None:
    """Refuse a storage URI that a search could not use, before Ray starts (SearchError, one line):
    credentials written into it, an unknown scheme, a bucket that does not exist or cannot be
    reached, or a prefix this machine may not write (a probe file is written and deleted)."""
    if urlsplit(uri).username or urlsplit(uri).password:
        raise SearchError(f"--storage-path {redact(uri)}: credentials in the URI would be stored in Tune's "
                          "state; give them as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a profile) instead")
    filesystem, path = resolve(uri)
    where = f"--storage-path {redact(uri)}"
    if filesystem.type_name in OBJECT_STORES:
        bucket = path.split("/", 1)[0]
        try:
            info = filesystem.get_file_info(bucket)
        except OSError as exc:
            raise SearchError(f"{where}: cannot reach bucket '{bucket}' ({_first_line(exc)}); check the endpoint "
                              "(AWS_ENDPOINT_URL or ?endpoint_override=HOST:PORT&scheme=http) and the "
                              "credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE)") from None
        if info.type == pafs.FileType.NotFound:
            raise SearchError(f"{where}: bucket '{bucket}' does not exist (or these credentials cannot see it); "
                              "create it first")
    probe = f"{path.rstrip('/')}/{PROBE}-{os.getpid()}"
    try:
        filesystem.create_dir(path.rstrip("/"), recursive=True)
        with filesystem.open_output_stream(probe) as out:
            out.write(b"ok\n")
        filesystem.delete_file(probe)
    except OSError as exc:
        raise SearchError(f"{where}: cannot write there ({_first_line(exc)}); check the credentials "
                          "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and their rights") from None


def exists(uri: str, name: str) -> bool:
    """Whether ``uri/name`` is a file."""
    filesystem, path = resolve(uri)
    return filesystem.get_file_info(f"{path.rstrip('/')}/{name}").type == pafs.FileType.File


def files(uri: str, pattern: str) -> list[str]:
    """The paths (on ``resolve(uri)``'s filesystem) of the files directly in ``uri`` matching ``pattern``."""
    filesystem, path = resolve(uri)
    found = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(i.path for i in found if i.type == pafs.FileType.File and fnmatch.fnmatch(i.base_name, pattern))


def download(uri: str, local: Path, skip: tuple[str, ...] = DRIVER_FILES) -> None:
    """Make ``local`` a complete copy of the experiment at ``uri``: every entry but ``skip`` (the
    driver's own files, newer here) is copied beside ``local`` first, then moved into place."""
    filesystem, path = resolve(uri)
    local.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.download{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for info in filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
            if info.base_name in skip:
                continue
            target = tmp / info.base_name
            if info.type == pafs.FileType.Directory:
                target.mkdir()
            pafs.copy_files(info.path, str(target), source_filesystem=filesystem,
                            destination_filesystem=pafs.LocalFileSystem())
        for entry in tmp.iterdir():
            _replace(entry, local / entry.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def upload(local: Path, uri: str, names: tuple[str, ...]) -> None:
    """Copy ``names`` (files or folders of ``local``; missing ones skipped) to ``uri``, a folder
    replacing the one there as a whole."""
    filesystem, path = resolve(uri)
    filesystem.create_dir(path.rstrip("/"), recursive=True)  # a no-op on an object store
    for name in names:
        source, target = local / name, f"{path.rstrip('/')}/{name}"
        if source.is_dir():
            filesystem.delete_dir_contents(target, missing_dir_ok=True)
            filesystem.create_dir(target, recursive=True)
            pafs.copy_files(str(source), target, source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=filesystem)
        elif source.is_file():
            with filesystem.open_output_stream(target) as out:
                out.write(source.read_bytes())


def _replace(source: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(source, target)


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:240] + ("..." if len(text) > 240 else "")


@dataclass(frozen=True)
class Location:
    """An experiment's two places: ``local``, the folder here (the driver's files; at the end a
    complete copy), and ``remote``, its URI when ``--storage-path`` is one (else None)."""

    local: Path
    remote: str | None = None

    @property
    def tune_path(self) -> str:
        """Where Tune keeps the experiment (its ``Tuner.restore`` path)."""
        return self.remote or str(self.local)

    @property
    def storage_path(self) -> str:
        """Tune's ``storage_path``: the folder or URI the experiment folder is in."""
        if self.remote is None:
            return str(self.local.parent)
        base, sep, query = self.remote.partition("?")
        return f"{base.rstrip('/').rsplit('/', 1)[0]}{sep}{query}"

    def shown(self) -> str:
        """The experiment as messages name it."""
        return f"{redact(self.remote)} (local copy {self.local})" if self.remote else str(self.local)

    def push(self, names: tuple[str, ...] = DRIVER_FILES) -> None:
        """Upload ``names`` to the remote experiment (nothing when it is local)."""
        if self.remote is not None:
            upload(self.local, self.remote, names)

    def pull(self) -> None:
        """Make the local folder a complete copy of the remote experiment (nothing when local)."""
        if self.remote is not None:
            download(self.remote, self.local)


class Mirror(tune.Callback):
    """Uploads the driver's files (the Optuna journal above all) to the remote experiment each
    time a trial starts, ends, errs or is retried, and when the search ends; a failed upload is a
    warning (the next one catches up), never the end of the search."""

    def __init__(self, local: str, remote: str, min_interval_s: float = 2.0):
        self.location = Location(Path(local), remote)
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def _push(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self.min_interval_s:
            return
        try:
            self.location.push()
            self._last = time.monotonic()
        except OSError as exc:
            print(f"WARNING: could not copy the driver's files to {redact(self.location.remote)}: "
                  f"{_first_line(exc)}", flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._push()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._push(force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._push(force=True)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._push(force=True)

    def on_experiment_end(self, trials, **info):
        self._push(force=True)
