"""Files: atomic output, JSON-lines records and the one YAML config loader.

*Atomic output*: write to a temp file (or folder) beside the target, then rename it into place. A
reader never sees a half-written output under the target's name, and an existing output is only
replaced when the caller says so (``--force``).

*JSON lines*: one record → a dict, with errors that name the file, the line and the field.

*Configs*: YAML → typed dataclasses (validated by pydantic in strict mode: unknown keys and wrong
types are rejected), with errors that name the file and the dotted key
(``configs/x.yaml: train.lr: expected a number, got 'fast'``). Inner code only ever sees
dataclasses. A config may start from another: ``extends: base.yaml`` (relative to the file) loads
the base and lays this file's keys over it, nested mappings merged key by key (``key: null``
removes a key of the base).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

import pydantic
import yaml

T = TypeVar("T")


class OutputExistsError(FileExistsError):
    """The output is already there (or is the wrong kind of thing) and may not be replaced."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_output_file(path: str | Path, force: bool, flag: str = "--out") -> None:
    """Refuse a file output that exists (unless ``force``) or is a folder — before any work."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{flag} {path}: is a folder, expected a file path")
    if path.exists() and not force:
        raise OutputExistsError(f"{flag} {path}: already exists; pass --force to replace it")


def check_output_dir(path: str | Path, force: bool, flag: str = "--out", keep: Iterable[Path] = ()) -> None:
    """Refuse a folder output that is a file, or a non-empty folder without ``force``.

    ``keep``: paths that must survive (the working directory always does): a folder holding one
    of them is never replaced, even with ``force``.
    """
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{flag} {path}: is a file, expected a folder")
    for kept in (Path.cwd(), *keep):
        kept = Path(kept).absolute()
        if path.is_dir() and (kept == path or path in kept.parents):
            raise OutputExistsError(f"{flag} {path}: holds {kept}; choose another folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise OutputExistsError(f"{flag} {path}: already exists and is not empty; pass --force to replace it")


@contextlib.contextmanager
def atomic_dir(path: str | Path, force: bool = False, flag: str = "--out",
               keep: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; on success it becomes ``path``.

    An existing non-empty ``path`` is refused unless ``force`` (see :func:`check_output_dir`); with
    ``force`` it is replaced as a whole, so no file of an earlier output is left beside the new
    ones. On error the temp folder is removed and ``path`` is untouched.
    """
    path = Path(path).absolute()
    check_output_dir(path, force, flag, keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = path.with_name(f".{path.name}.old{os.getpid()}")
        if path.exists():
            os.replace(path, old)  # two renames: a crash in between leaves the old output hidden, never mixed
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- JSON lines


def parse_object(line: str, where: str, required: Iterable[str], error: type[ValueError]) -> dict:
    """Parse ``line`` (at ``where`` = "file:line") as a JSON object holding ``required`` keys."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(obj, dict):
        raise error(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for name in required:
        if name not in obj:
            raise error(f"{where}: missing required field '{name}'")
    return obj


# --------------------------------------------------------------------------- configs

EXTENDS = "extends"  # top-level key: the base config this one overrides


class ConfigError(ValueError):
    """A configuration file or mapping does not match its dataclass."""


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, its ``extends:`` chain resolved; errors name the file.

    ``extends: base.yaml`` (a path relative to this file) loads the base first and lays this
    file's keys over it: nested mappings are merged key by key, anything else is replaced, and a
    key set to null (``key: null``) is removed from the base.
    """
    return _resolve(Path(path), ())


def _resolve(path: Path, chain: tuple[Path, ...]) -> dict:
    data = _read_mapping(path)
    base = data.pop(EXTENDS, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {EXTENDS}: expected a file name, got {base!r}")
    here, base_path = path.resolve(), path.parent / base
    if base_path.resolve() in (*chain, here):
        cycle = " → ".join(p.name for p in (*chain, here, base_path.resolve()))
        raise ConfigError(f"{path}: {EXTENDS}: the configs extend each other in a cycle ({cycle})")
    if not base_path.is_file():
        raise ConfigError(f"{path}: {EXTENDS}: no such config file {base_path}")
    return deep_merge(_resolve(base_path, (*chain, here)), data)


def _read_mapping(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` laid over it: mappings merged key by key, other values replaced,
    a key set to null removed (so the field's default applies, or a mapping loses the entry)."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path, cls: type[T], section: str | None = None) -> T:
    """Load ``path`` (or its top-level ``section``) into dataclass ``cls``."""
    data = read_yaml(path)
    if section is not None:
        if section not in data:
            raise ConfigError(f"{path}: missing top-level key '{section}'")
        data = data[section]
    try:
        return from_dict(cls, data, prefix=section or "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def from_dict(cls: type[T], data: Any, prefix: str = "") -> T:
    """Build dataclass ``cls`` (nested dataclasses included) from a mapping, strictly.

    pydantic validates it as JSON in strict mode, which is the rule a YAML config wants: a
    mapping may fill a dataclass and a list a tuple, an integer may fill a float, and nothing
    else is converted (``"3"`` is not an integer, ``true`` not a number). The dataclasses'
    own ``__post_init__`` checks run as part of it.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or cls.__name__}: expected a mapping, got {type(data).__name__}")
    try:
        return _adapter(cls).validate_json(json.dumps(data, default=_plain), strict=True, extra="forbid")
    except pydantic.ValidationError as exc:
        raise ConfigError(_message(cls, exc.errors()[0], prefix)) from None
    except TypeError as exc:  # a value that is not plain data, or a __post_init__ check on a bad type
        raise ConfigError(f"{prefix or cls.__name__}: {exc}") from None


def with_overrides(obj: T, overrides: dict[str, Any]) -> T:
    """Return a copy of dataclass ``obj`` with dotted-key overrides (``model.hidden_dim``) applied."""
    data = dataclasses.asdict(obj)
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown key '{key}'")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"unknown key '{key}'")
        node[parts[-1]] = value
    return from_dict(type(obj), data)


@functools.cache
def _adapter(cls: type) -> pydantic.TypeAdapter:
    return pydantic.TypeAdapter(cls)


def _plain(value: Any) -> Any:
    """numpy scalars → Python numbers for ``json.dumps``; anything else is not config data."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"{value!r} is not plain data (a number, string, list or mapping)")


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true/false",
    "bool_parsing": "true/false", "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
    "dict_type": "a mapping", "dataclass_type": "a mapping", "model_type": "a mapping",
}  # fmt: skip


def _message(cls: type, error: dict, prefix: str) -> str:
    """One line for pydantic's first error: the dotted key, what was expected and what was given."""
    loc, kind, value = error["loc"], error["type"], error.get("input")
    key = _dotted_key(prefix, loc)
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        allowed = ", ".join(sorted(f.name for f in dataclasses.fields(_type_at(cls, loc[:-1]))))
        return f"unknown key '{key}' (allowed: {allowed})"
    if kind in ("value_error", "assertion_error"):
        cause = error.get("ctx", {}).get("error")
        return str(cause) if isinstance(cause, ConfigError) else f"{key or cls.__name__}: {cause or error['msg']}"
    if kind == "literal_error":
        allowed = ", ".join(repr(a) for a in typing.get_args(_type_at(cls, loc)))
        return f"{key}: expected one of {allowed}, got {value!r}"
    if kind in ("missing", "missing_argument"):
        return f"{key}: missing required key"
    expected = _EXPECTED.get(kind)
    if expected in ("a list", "a mapping"):
        return f"{key}: expected {expected}, got {type(value).__name__}"
    return f"{key}: expected {expected}, got {value!r}" if expected else f"{key}: {error['msg']}"


def _dotted_key(prefix: str, loc: tuple) -> str:
    key = prefix
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _type_at(tp: Any, loc: tuple) -> Any:
    """The annotated type at ``loc`` inside dataclass ``tp`` (optional wrappers removed)."""
    for part in (*loc, None):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
        if part is None:
            return tp
        if dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp)[part]
        elif typing.get_origin(tp) in (list, tuple, dict):
            tp = typing.get_args(tp)[-1]
    return tp
