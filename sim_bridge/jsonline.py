"""One JSON-lines record → a dict, with errors that name the file, the line and the field."""
from __future__ import annotations

import json
from typing import Iterable


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
