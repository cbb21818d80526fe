"""The search CLIs' one error convention: a user-facing problem is one line on stderr, exit 2.

Library code raises :class:`SearchError` (or one of the input errors below, raised by the
packages the search builds on); each ``python -m search.*`` ``main`` catches :data:`USER_ERRORS`
once and calls :func:`report`. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys

from sim_bridge.contract.files import ConfigError, OutputExistsError
from sim_bridge.contract.catalog import CatalogError
from sim_bridge.contract.logs import LogFormatError
from sim_bridge.contract.recs import RecFileError
from sim_bridge.world import WorldFormatError

EXIT_USAGE = 2


class SearchError(Exception):
    """A bad argument, config, input or experiment folder; the message names it."""


USER_ERRORS = (SearchError, ConfigError, WorldFormatError, CatalogError, LogFormatError, RecFileError,
               OutputExistsError, FileNotFoundError, PermissionError)


def report(exc: BaseException) -> int:
    """Print ``error: <message>`` (one line) on stderr; return the exit code."""
    print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    return EXIT_USAGE
