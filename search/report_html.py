"""The report as one self-contained HTML page: inline CSS, PNGs as base64 data URIs, no scripts.

It opens from disk with no network. Takes the sections built by :mod:`search.report`.
"""
from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import numpy as np

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.8em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; } th { background: #eee; }
code { background: #f3f3f3; padding: 0 3px; }
"""


def _text(s: str) -> str:
    """Escaped text; Markdown `code` spans become <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(s))


def _cell(v) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) and math.isfinite(v) else str(v)


def _table(frame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = ["<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in r) + "</tr>"
            for r in frame.itertuples(index=False)]
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(title: str, intro: list[str], sections, folder: Path) -> str:
    """The page; each section's image is read from ``folder`` and embedded."""
    parts = [f"<h1>{html.escape(title)}</h1>", *[f"<p>{_text(p)}</p>" for p in intro if p]]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{_text(n)}</p>" for n in s.notes]
        if s.image:
            parts.append(_image(folder / s.image, s.title))
        if s.table is not None and not s.table.empty:
            parts.append(_table(s.table))
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
