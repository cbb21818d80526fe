"""How the report looks: its sections, its figures (matplotlib, Agg), its Markdown and its
self-contained HTML page.

Each figure function draws one PNG atomically (``sim_bridge.contract.files.atomic_path``) and returns it;
:func:`render_markdown` links them and :func:`render_html` embeds them in one page. Inputs are
plain frames and arrays already prepared by :mod:`search.report`; nothing here reads the
experiment folder.
"""
from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures only ever go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim_bridge.contract.files import atomic_path  # noqa: E402

DPI = 110
SIG_COLOUR, NOSIG_COLOUR, BEST_COLOUR = "tab:green", "tab:grey", "tab:red"


@dataclass
class Section:
    """One part of the report: a title, notes (Markdown with `code` only), a PNG and/or a table."""

    title: str
    notes: list[str]
    image: str | None = None
    table: pd.DataFrame | None = None


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path


def history(values: pd.DataFrame, modes: dict[str, str], path: Path) -> Path:
    """Objective per finished trial in completion order (dots) and the running best (step line).

    ``values``: one row per finished trial, in completion order, one column per objective metric
    (``modes``: metric → "min" | "max"), plus ``trial_id``.
    """
    fig, axes = plt.subplots(len(modes), 1, figsize=(8, 3.2 * len(modes)), squeeze=False)
    x = np.arange(1, len(values) + 1)
    for ax, (metric, mode) in zip(axes[:, 0], modes.items()):
        y = values[metric].to_numpy(float)
        best = np.fmax.accumulate(y) if mode == "max" else np.fmin.accumulate(y)
        ax.plot(x, y, "o", color="tab:blue", alpha=0.7, label=f"{metric} per trial")
        ax.step(x, best, where="post", color=BEST_COLOUR, label=f"running best ({mode})")
        ax.set_xlabel("finished trial (completion order)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[0, 0].set_title("Optimization history")
    return _save(fig, path)


def importances(table: dict[str, dict[str, float]], path: Path) -> Path:
    """Horizontal bars of Optuna's parameter importances, one panel per objective metric."""
    fig, axes = plt.subplots(1, len(table), figsize=(6.5 * len(table), 0.45 * max(map(len, table.values())) + 1.5),
                             squeeze=False)
    for ax, (metric, imp) in zip(axes[0], table.items()):
        names = list(imp)[::-1]  # most important on top
        ax.barh(names, [imp[n] for n in names], color="tab:blue")
        for i, n in enumerate(names):
            ax.text(imp[n], i, f" {imp[n]:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, max(1e-9, max(imp.values())) * 1.2)
        ax.set_xlabel(f"importance for {metric}")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_title("Parameter importances (Optuna, PED-ANOVA)")
    return _save(fig, path)


def parallel_coordinates(axes_frame: pd.DataFrame, ticks: dict[str, list[tuple[float, str]]], colour_by: str,
                         best: int, path: Path) -> Path:
    """One line per finished trial across axes normalised to [0, 1].

    ``axes_frame``: one column per axis, already in [0, 1] (categoricals as codes / (n - 1)),
    the objective last. ``ticks``: axis → [(position in [0, 1], text)]. ``best``: row of the best trial.
    """
    cols = list(axes_frame.columns)
    x = np.arange(len(cols))
    z = axes_frame[colour_by].to_numpy(float)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(cols)), 5.5))
    for i, row in enumerate(axes_frame.to_numpy(float)):
        if i != best:
            ax.plot(x, row, color=cmap(z[i]), alpha=0.6, lw=1)
    ax.plot(x, axes_frame.to_numpy(float)[best], color=BEST_COLOUR, lw=2.5)
    for i, c in enumerate(cols):
        ax.axvline(i, color="black", lw=0.6)
        for pos, text in ticks[c]:
            ax.text(i + 0.04, pos, text, ha="left", va="center", fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 0.5})
    ax.set_xticks(x, [c.replace(".", ".\n", 1) for c in cols], fontsize=8)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    ax.set_xlim(-0.5, len(cols) - 0.5)
    sm = plt.cm.ScalarMappable(cmap=cmap)
    fig.colorbar(sm, ax=ax, pad=0.01, label=f"{colour_by} (normalised)")
    ax.set_title("Parallel coordinates (normalised axes; categoricals as codes; red: best trial)")
    return _save(fig, path)


def loss_vs_lift(frame: pd.DataFrame, pareto: np.ndarray | None, best: int, path: Path) -> Path:
    """``val_loss`` against ``lift_vs_sticky`` with its CI; the Pareto front joined when given."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    x, y = frame["val_loss"].to_numpy(float), frame["lift_vs_sticky"].to_numpy(float)
    err = np.vstack([y - frame["lift_lower"].to_numpy(float), frame["lift_upper"].to_numpy(float) - y])
    ax.errorbar(x, y, yerr=err, fmt="o", color="tab:blue", ecolor="lightsteelblue", alpha=0.8,
                label="finished trial (95% CI of lift)")
    if pareto is not None and pareto.any():
        order = np.argsort(x[pareto])
        ax.plot(x[pareto][order], y[pareto][order], "D-", color="tab:orange", label="Pareto front (val_loss ↓, time ↑)")
    ax.plot(x[best], y[best], "*", color=BEST_COLOUR, ms=16, label="best trial")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("validation loss")
    ax.set_ylabel("lift vs sticky_artist, time per session (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title("Validation loss vs lift")
    return _save(fig, path)


def forest(rows: pd.DataFrame, path: Path) -> Path:
    """Effects with their CIs, one row each (``label, effect, lower, upper, significant``), top down."""
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows.itertuples(index=False)):
        colour = SIG_COLOUR if r.significant else NOSIG_COLOUR
        ax.plot([r.lower, r.upper], [yi, yi], color=colour, lw=2)
        ax.plot(r.effect, yi, "o", color=colour, ms=6)
        ax.text(r.upper, yi, f"  {r.effect:+.1f}% [{r.lower:+.1f}, {r.upper:+.1f}]", va="center", fontsize=7)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(y, rows["label"], fontsize=8)
    lo, hi = min(np.nanmin(rows["lower"]), 0.0), max(np.nanmax(rows["upper"]), 0.0)
    span = hi - lo + 1
    ax.set_xlim(lo - 0.05 * span, hi + 0.45 * span)  # room for the labels right of each CI
    ax.set_xlabel("effect on mean time per session vs sticky_artist (%, 95% CI)")
    ax.plot([], [], "o-", color=SIG_COLOUR, label="significant")
    ax.plot([], [], "o-", color=NOSIG_COLOUR, label="not significant")
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("A/B effects vs sticky_artist")
    return _save(fig, path)


def training_curves(epochs: pd.DataFrame, title: str, path: Path) -> Path:
    """Per-epoch train/val loss (top) and learning rate (bottom) of one trial."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), sharex=True, height_ratios=[2, 1])
    for col, colour in (("train_loss", "tab:blue"), ("val_loss", "tab:orange")):
        if col in epochs:
            top.plot(epochs["epoch"], epochs[col], "o-", color=colour, ms=3, label=col)
    top.set_ylabel("loss")
    top.grid(alpha=0.3)
    top.legend(fontsize=8)
    top.set_title(title)
    if "lr" in epochs:
        bottom.plot(epochs["epoch"], epochs["lr"], "o-", color="tab:purple", ms=3)
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("epoch")
    bottom.grid(alpha=0.3)
    return _save(fig, path)


def time_to_target(line: pd.DataFrame, target: float | None, path: Path) -> Path:
    """Best finished lift so far vs wall-clock minutes (step line); every trial's end as a dot,
    trials stopped early as grey crosses at their end time (they have no final lift).

    ``line``: :func:`search.timeline.timeline` (trial_id, status, end_s, lift_vs_sticky).
    """
    fig, ax = plt.subplots(figsize=(8, 3.6))
    done = line[line["status"] == "finished"]
    minutes = done["end_s"].to_numpy(float) / 60
    lift = done["lift_vs_sticky"].to_numpy(float)
    if len(done):
        ax.plot(minutes, lift, "o", color="tab:blue", alpha=0.6, label="finished trial")
        ax.step(minutes, np.fmax.accumulate(lift), where="post", color=BEST_COLOUR, label="best so far")
    stopped = line[line["status"] == "stopped"]
    if len(stopped):
        floor = np.nanmin(lift) if len(done) else 0.0
        ax.plot(stopped["end_s"].to_numpy(float) / 60, np.full(len(stopped), floor), "x", color=NOSIG_COLOUR,
                label="stopped early (no final lift)")
    if target is not None:
        ax.axhline(target, color="tab:green", ls="--", lw=1, label=f"target {target:+.0f}%")
    ax.set_xlabel("wall clock since the search started (minutes)")
    ax.set_ylabel("paired lift vs sticky_artist (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Time to target")
    return _save(fig, path)


# ---------------------------------------------------------------- the Markdown page


def cell(v) -> str:
    """A table cell, in Markdown and HTML alike: a float as ``:.4g``, anything else as text."""
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) and math.isfinite(v) else str(v)


def render_markdown(title: str, intro: list[str], sections: list[Section]) -> str:
    """``report.md``: the sections in order, each image linked beside it."""
    lines = [f"# {title}", "", *intro, ""]
    for s in sections:
        lines += [f"## {s.title}", "", *[f"{n}\n" for n in s.notes]]
        if s.image:
            lines += [f"![{s.title}]({s.image})", ""]
        if s.table is not None and not s.table.empty:
            lines += ["| " + " | ".join(map(str, s.table.columns)) + " |", "|" + "---|" * len(s.table.columns)]
            lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in s.table.itertuples(index=False)]
            lines.append("")
    return "\n".join(lines) + "\n"



# ---------------------------------------------------------------- the self-contained HTML page
# Inline CSS, PNGs as base64 data URIs, no scripts: it opens from disk with no network.

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


def _table(frame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = ["<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>"
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
