"""botify event log files (docs/formats.md): write and read them.

One event per request::

    {"message": "next", "timestamp": 1700000000000, "user": 7, "track": 12, "time": 0.57,
     "latency": 0.0012, "recommendation": 40, "experiments": {"STICKY": "T1"}}

``message`` is ``"next"`` for every step and ``"last"`` for a session's final request, which
carries no recommendation (written as ``"recommendation": null``, as botify's ``/last`` logs a
record whose recommendation is unset; on reading, a missing key is accepted too).

Formats, chosen by suffix: ``.parquet`` is the fast internal format; anything else is JSON lines
as botify's containers write them (``data.json``). JSON lines are written with vectorised
pyarrow string kernels (about a second per million events). Floats are written in their
shortest round-trip form, so values survive a round trip exactly; the spelling can differ from
Python's ``repr`` for very small numbers (``0.00001`` rather than ``1e-05``), which any JSON
reader treats the same.

:func:`read_logs` returns an event frame (:mod:`sim_bridge.contract.events`: its columns and dtypes).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from sim_bridge.contract import columns as C
from sim_bridge.contract.events import experiments_codes, shared_dicts
from sim_bridge.contract.files import parse_object, atomic_path

_INT_FIELDS = (C.TIMESTAMP, C.USER, C.TRACK)
_REQUIRED = (C.MESSAGE, C.TIMESTAMP, C.USER, C.TRACK, C.TIME)
_MESSAGES = (C.MESSAGE_NEXT, C.MESSAGE_LAST)
_ARROW_SCHEMA = pa.schema(
    [(C.MESSAGE, pa.string())]
    + [(name, pa.int64()) for name in _INT_FIELDS]
    + [(C.TIME, pa.float64()), (C.LATENCY, pa.float64()), (C.RECOMMENDATION, pa.int64())]
)
_WRITE_CHUNK = 1_000_000  # rows per JSON-lines chunk (keeps string offsets far below 2 GiB)


class LogFormatError(ValueError):
    """A log file is malformed; the message names the file, the line and the field."""


# --------------------------------------------------------------------------- writing


def write_logs(events: pd.DataFrame, path: str | Path) -> None:
    """Write events atomically: ``.parquet`` → Parquet, anything else → botify JSON lines."""
    _check_writable(events)
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            pq.write_table(_to_arrow(events), tmp)
        else:
            _write_json_lines(events, tmp)


def _check_writable(events: pd.DataFrame) -> None:
    missing = [c for c in C.EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"write_logs: missing columns {missing}")
    bad = ~events[C.MESSAGE].isin(_MESSAGES)
    if bad.any():
        raise ValueError(f"write_logs: message must be next/last, got {events[C.MESSAGE][bad].iloc[0]!r}")
    for name in (C.TIME, C.LATENCY):
        if not np.isfinite(events[name].to_numpy(dtype=np.float64)).all():
            raise ValueError(f"write_logs: {name} must be finite")
    for name in _REQUIRED[1:]:
        if events[name].isna().any():
            raise ValueError(f"write_logs: {name} has missing values")


def _to_arrow(events: pd.DataFrame) -> pa.Table:
    """Arrow table of the event columns; experiments as dictionary-encoded JSON text."""
    codes, uniques = experiments_codes(events[C.EXPERIMENTS].to_numpy(dtype=object))
    rec = events[C.RECOMMENDATION].astype("Int64")
    cols = {
        C.MESSAGE: pc.cast(pa.array(events[C.MESSAGE]), pa.string()),
        **{n: pa.array(events[n].to_numpy(dtype=np.int64)) for n in _INT_FIELDS},
        C.TIME: pa.array(events[C.TIME].to_numpy(dtype=np.float64)),
        C.LATENCY: pa.array(events[C.LATENCY].to_numpy(dtype=np.float64)),
        C.RECOMMENDATION: pa.array(rec, pa.int64()),
        C.EXPERIMENTS: pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32()), pa.array([json.dumps(d) for d in uniques], pa.string())
        ),
    }
    return pa.table(cols)


def _json_number(values: pa.Array) -> pa.Array:
    """Float → shortest round-trip text, with ``.0`` on integral values as Python writes them."""
    text = pc.cast(values, pa.string())
    integral = pc.match_substring_regex(text, r"^-?[0-9]+$")
    return pc.if_else(integral, pc.binary_join_element_wise(text, ".0", ""), text)


def _json_lines_chunk(table: pa.Table) -> pa.Array:
    """One JSON object per row, keys in botify's order, each line ending in a newline."""
    col = {name: table.column(name).combine_chunks() for name in table.column_names}
    exps = pc.take(col[C.EXPERIMENTS].dictionary, col[C.EXPERIMENTS].indices)
    rec = pc.fill_null(pc.cast(col[C.RECOMMENDATION], pa.string()), "null")
    pieces = [
        '{"message": "', col[C.MESSAGE],
        '", "timestamp": ', pc.cast(col[C.TIMESTAMP], pa.string()),
        ', "user": ', pc.cast(col[C.USER], pa.string()),
        ', "track": ', pc.cast(col[C.TRACK], pa.string()),
        ', "time": ', _json_number(col[C.TIME]),
        ', "latency": ', _json_number(col[C.LATENCY]),
        ', "recommendation": ', rec,
        ', "experiments": ', exps, "}\n",
    ]  # fmt: skip
    return pc.binary_join_element_wise(*pieces, "")


def _write_json_lines(events: pd.DataFrame, tmp: Path) -> None:
    table = _to_arrow(events)
    with open(tmp, "wb") as fh:
        for start in range(0, len(table), _WRITE_CHUNK):
            lines = _json_lines_chunk(table.slice(start, _WRITE_CHUNK))
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
            lo, hi = offsets[lines.offset], offsets[lines.offset + len(lines)]
            fh.write(memoryview(lines.buffers()[2])[lo:hi])


# --------------------------------------------------------------------------- reading


def read_logs(path: str | Path) -> pd.DataFrame:
    """Events from a Parquet file, a JSON-lines file, or a folder of them (searched recursively).

    A folder is read as the course's log-download tool lays it out (one subfolder per
    container, each holding ``data.json``): every ``data.json``, ``*.json``, ``*.jsonl`` and
    ``*.parquet`` under it, in sorted path order. Returns columns :data:`columns.EVENT_COLUMNS`.
    Raises :class:`LogFormatError` naming file, line and field for malformed JSON lines.
    """
    path = Path(path)
    if not path.is_dir():
        return _read_file(path)
    files = sorted(
        p for p in path.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix in (".json", ".jsonl", ".parquet")
    )  # fmt: skip
    if not files:
        raise FileNotFoundError(f"{path}: no log files (data.json, *.json, *.jsonl, *.parquet)")
    return pd.concat([_read_file(p) for p in files], ignore_index=True)


def _read_file(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return _from_arrow(pq.read_table(path), path)
    try:
        table = pj.read_json(
            path, parse_options=pj.ParseOptions(explicit_schema=_ARROW_SCHEMA, unexpected_field_behavior="infer")
        )
        return _from_arrow(table, path)
    except (pa.ArrowInvalid, LogFormatError):
        return _scan_json_lines(path)  # slow path: locates and reports the bad line


def _from_arrow(table: pa.Table, path: Path) -> pd.DataFrame:
    """Validate an Arrow table vectorised and convert it; LogFormatError on any problem."""
    names = set(table.column_names)
    if not names.issuperset(_REQUIRED) or any(table.column(n).null_count for n in _REQUIRED):
        raise LogFormatError(f"{path}: missing required fields")
    message = pc.cast(table.column(C.MESSAGE).combine_chunks(), pa.string())
    if not pc.all(pc.is_in(message, pa.array(_MESSAGES))).as_py() and len(message):
        raise LogFormatError(f"{path}: message must be next/last")
    cols = {C.MESSAGE: pd.array(message, dtype="str")}
    for name in _INT_FIELDS:
        cols[name] = table.column(name).to_numpy().astype(np.int64)
    cols[C.TIME] = table.column(C.TIME).to_numpy().astype(np.float64)
    cols[C.LATENCY] = _optional(table, C.LATENCY, pa.float64()).fill_null(0.0).to_numpy()
    cols[C.RECOMMENDATION] = _nullable_int(_optional(table, C.RECOMMENDATION, pa.int64()))
    if not (np.isfinite(cols[C.TIME]).all() and np.isfinite(cols[C.LATENCY]).all()):
        raise LogFormatError(f"{path}: time and latency must be finite")
    cols[C.EXPERIMENTS] = _experiments_from_arrow(table, path)
    return _finish(cols)


def _nullable_int(values: pa.Array) -> pd.arrays.IntegerArray:
    """Arrow int64 with nulls → pandas ``Int64`` without a per-element pass."""
    data = pc.fill_null(values, 0).to_numpy().astype(np.int64)
    mask = values.is_null().to_numpy(zero_copy_only=False)
    return pd.arrays.IntegerArray(data, mask)


def _optional(table: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(len(table), type_)
    return pc.cast(table.column(name).combine_chunks(), type_)


def _experiments_from_arrow(table: pa.Table, path: Path) -> np.ndarray:
    """object [n] of dicts from a struct column (JSON) or JSON text (Parquet)."""
    n = len(table)
    if C.EXPERIMENTS not in table.column_names:
        return shared_dicts(np.zeros(n, dtype=np.int64), [{}])
    col = table.column(C.EXPERIMENTS).combine_chunks()
    if pa.types.is_null(col.type):
        return shared_dicts(np.zeros(n, dtype=np.int64), [{}])
    if pa.types.is_dictionary(col.type) or pa.types.is_string(col.type):
        codes, texts = _codes(col)
        return shared_dicts(codes, [json.loads(t) if t else {} for t in texts + [None]])
    if not pa.types.is_struct(col.type) or any(
        not (pa.types.is_string(f.type) or pa.types.is_null(f.type)) for f in col.type
    ):
        raise LogFormatError(f"{path}: field 'experiments' must map names to arm strings")
    return _struct_to_dicts(col)


def _struct_to_dicts(col: pa.StructArray) -> np.ndarray:
    """Struct rows → dicts of their non-null fields; rows with equal content share one dict."""
    n = len(col)
    fields = [f.name for f in col.type]
    if not fields:
        return shared_dicts(np.zeros(n, dtype=np.int64), [{}])
    children = col.flatten()  # applies the struct's own nulls to its children
    codes, uniques = zip(*(_codes(c) for c in children))
    # one mixed-radix key per row (code -1 = field absent), then hash-factorize the keys
    key = np.zeros(n, dtype=np.int64)
    for code, values in zip(codes, uniques):
        key = key * (len(values) + 1) + code + 1
    if np.prod([len(u) + 1.0 for u in uniques]) >= 2.0**62:
        raise LogFormatError("too many distinct experiment assignments")
    inverse, keys = pd.factorize(key)
    first = np.empty(len(keys), dtype=np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)  # last write wins → first occurrence
    dicts = [
        {f: str(u[c[i]]) for f, u, c in zip(fields, uniques, codes) if c[i] >= 0} for i in first
    ]
    return shared_dicts(inverse, dicts)


def _codes(values: pa.Array) -> tuple[np.ndarray, list]:
    """Dictionary codes (int64 [n], -1 for null) and the distinct values of an Arrow array."""
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values)
    codes = pc.fill_null(values.indices, -1).to_numpy().astype(np.int64)
    return codes, values.dictionary.to_pylist()


def _finish(cols: dict) -> pd.DataFrame:
    """DataFrame with the canonical event dtypes."""
    frame = pd.DataFrame(
        {
            C.MESSAGE: pd.array(cols[C.MESSAGE], dtype="str"),
            **{n: np.asarray(cols[n], dtype=np.int64) for n in _INT_FIELDS},
            C.TIME: np.asarray(cols[C.TIME], dtype=np.float64),
            C.LATENCY: np.asarray(cols[C.LATENCY], dtype=np.float64),
            C.RECOMMENDATION: cols[C.RECOMMENDATION],
            C.EXPERIMENTS: np.asarray(cols[C.EXPERIMENTS], dtype=object),
        }
    )
    return frame


# --------------------------------------------------------------------------- slow path


def _scan_json_lines(path: Path) -> pd.DataFrame:
    """Parse line by line, raising LogFormatError at the first bad line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                rows.append(_parse_event(line, f"{path}:{lineno}"))
    cols = {name: [r[name] for r in rows] for name in C.EVENT_COLUMNS}
    cols[C.EXPERIMENTS] = shared_dicts(np.arange(len(rows)), cols[C.EXPERIMENTS])
    cols[C.RECOMMENDATION] = pd.array(cols[C.RECOMMENDATION], dtype="Int64")
    return _finish(cols)


def _parse_event(line: str, where: str) -> dict:
    obj = parse_object(line, where, _REQUIRED, LogFormatError)
    if obj[C.MESSAGE] not in _MESSAGES:
        raise LogFormatError(f"{where}: field 'message' must be \"next\" or \"last\", got {_show(obj[C.MESSAGE])}")
    for name in _INT_FIELDS:
        _check_int(obj[name], name, where)
    _check_number(obj[C.TIME], C.TIME, where)
    latency = obj.get(C.LATENCY)
    if latency is not None:
        _check_number(latency, C.LATENCY, where)
    rec = obj.get(C.RECOMMENDATION)
    if rec is not None:
        _check_int(rec, C.RECOMMENDATION, where)
    exps = obj.get(C.EXPERIMENTS) or {}
    if not isinstance(exps, dict) or not all(isinstance(v, str) for v in exps.values()):
        raise LogFormatError(f"{where}: field 'experiments' must map names to arm strings, got {_show(exps)}")
    return {**obj, C.LATENCY: 0.0 if latency is None else latency, C.RECOMMENDATION: rec, C.EXPERIMENTS: exps}


def _check_int(value: object, name: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise LogFormatError(f"{where}: field '{name}' must be an integer, got {_show(value)}")


def _check_number(value: object, name: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LogFormatError(f"{where}: field '{name}' must be a number, got {_show(value)}")


def _show(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
