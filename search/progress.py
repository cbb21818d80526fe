"""The search's console progress view: Tune's own output is off (``verbose=0``) and
:class:`StatusTable`, a Tune callback, prints instead — a line when a trial starts, a line after
each of its epochs, and :func:`render`'s view each time a trial ends.

The driver (:mod:`search.run`) attaches it; a StatusTable is pickled with the tuner (``tuner.pkl``),
so ``--resume`` finds it again (``search.run`` still imports the name, for runs pickled before it
moved here).
"""
from __future__ import annotations

import time
from pathlib import Path

from ray import tune

from search.config import Objective
from search.formatting import PROGRESS_COLUMNS, fmt, lift_text, progress_cells
from search.trials import STOP_REASONS, asha_stopped, retries, stop_reason, trial_status


class StatusTable(tune.Callback):
    """The search's console output (Tune's own is off: ``verbose=0``): a line when a trial starts
    (its sampled values as ``:.3g``, so a weight decay of 1e-6 reads ``1e-06``, not Tune's ``0.``),
    a line after each of its epochs, and the progress view each time a trial ends (:func:`render`):
    counts by state and by stop reason, the running trials and the best finished ones, and the best
    so far with the wall time (since the search started) when it was found."""

    def __init__(self, obj: Objective, top: int = 5, started_at: float | None = None,
                 asha_file: str | Path | None = None):
        self.obj = obj
        self.top = top
        self.started_at = started_at  # search_run.json's, so a resumed run counts from the first start
        self.asha_file = None if asha_file is None else str(asha_file)

    def _render(self, trials, ended: dict) -> str:
        # getattr: a StatusTable unpickled from an older run's tuner.pkl (--resume) lacks the newer fields
        asha_file = getattr(self, "asha_file", None)
        asha = asha_stopped(Path(asha_file).parent) if asha_file else set()
        return render(trials, self.obj, self.top, ended=ended, started_at=getattr(self, "started_at", None),
                      asha=asha)

    def on_trial_start(self, iteration, trials, trial, **info):
        print(f"trial {trial.trial_id} started: {config_text(trial.config or {})}", flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        line = epoch_line(trial.trial_id, result)
        if line:
            print(line, flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        print(self._render(trials, {trial.trial_id: "TERMINATED"}), flush=True)

    def on_trial_recover(self, iteration, trials, trial, **info):
        print(f"trial {trial.trial_id} failed ({failure_text(trial)}); retry {retries(trial)} of "
              f"{trial.max_failures} (--max-failures), from its last checkpoint or its start", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        print(f"trial {trial.trial_id} errored (see {trial.path}/error.txt); the search goes on", flush=True)
        print(self._render(trials, {trial.trial_id: "ERROR"}), flush=True)


def failure_text(trial) -> str:
    """The last line of the trial's error file, e.g. that its node died; "see error.txt" else."""
    path = Path(getattr(trial, "error_file", None) or Path(str(getattr(trial, "path", ""))) / "error.txt")
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        lines = []
    return lines[-1][:200] if lines else f"see {path}"


def sort_key(obj: Objective):
    """Best first: by the objective (``multi``: by time per session)."""
    metric = "time_per_session" if obj.multi else obj.metric
    sign = 1.0 if (obj.multi or obj.mode == "max") else -1.0
    return lambda result: -sign * result[metric]


def trial_state(status: str, result: dict, asha: bool) -> tuple[str, str | None]:
    """(state as trials.parquet names it, stop reason) of a trial with Tune ``status``."""
    state = trial_status(status, result)
    return state, stop_reason(state, result, asha)


def render(trials, obj: Objective, top: int, ended: dict | None = None, started_at: float | None = None,
           asha: set[str] = frozenset(), now: float | None = None) -> str:
    """The progress view: a counts line, a stop-reasons line, the best so far (and when it was
    found, in wall time since ``started_at``) with its sampled config, then a table (:data:`PROGRESS_COLUMNS`)
    of the running trials and the ``top`` best finished ones.

    ``ended`` gives the status of the trial being reported (Tune calls back before updating it);
    ``asha``: the ids of the trials ASHA stopped.
    """
    status = {t.trial_id: (ended or {}).get(t.trial_id, t.status) for t in trials}
    states = {t.trial_id: trial_state(status[t.trial_id], t.last_result or {}, t.trial_id in asha) for t in trials}
    count = {s: sum(v[0] == s for v in states.values()) for s in ("finished", "stopped", "errored", "running", "pending")}
    lines = [f"trials: {count['finished']} finished, {count['stopped']} stopped early, "
             f"{count['errored']} errored, {count['running']} running, {count['pending']} pending"]
    retried = sum(retries(t) > 0 for t in trials)
    if retried:
        lines[0] += f" ({retried} retried after a failure: --max-failures)"
    reasons = [r for _, r in states.values() if r]
    if reasons:
        lines.append("stop reasons: " + ", ".join(f"{reasons.count(r)} {r}" for r in dict.fromkeys(
            [*[r for r in STOP_REASONS if r in reasons], *sorted(set(reasons))])))
    final = [t for t in trials if states[t.trial_id][0] == "finished"]
    best = sorted(final, key=lambda t: sort_key(obj)(t.last_result))[:top]
    if best:
        lines.append(best_line(best[0], obj, started_at, now))
        lines.append(f"  its config: {config_text(getattr(best[0], 'config', None) or {})}")
    shown = best + [t for t in trials if states[t.trial_id][0] == "running"]
    if shown:
        rows = [list(PROGRESS_COLUMNS)]
        rows += [progress_cells(t.trial_id, states[t.trial_id][0],
                                {**t.last_result, "stop_reason": states[t.trial_id][1]}) for t in shown]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def best_line(trial, obj: Objective, started_at: float | None, now: float | None = None) -> str:
    """``best so far: <id> score 95.1 (lift +96.0 [...]) found at 12.3 min`` — the time is the
    trial's final report's timestamp minus the search's start."""
    result = trial.last_result
    metric = "time_per_session" if obj.multi else obj.metric
    text = f"best so far: {trial.trial_id} {metric} {fmt(result.get(metric), 4)}"
    if metric != "lift_vs_sticky":
        text += f" (lift {lift_text(result.get('lift_vs_sticky'), result.get('lift_lower'), result.get('lift_upper'))})"
    found = result.get("timestamp")
    if started_at is not None and isinstance(found, (int, float)):
        text += f", found at {_wall(found - started_at)} of wall time"
    if started_at is not None:
        text += f" ({_wall((time.time() if now is None else now) - started_at)} elapsed)"
    return text


def epoch_line(trial_id: str, result: dict) -> str | None:
    """``trial <id> epoch 4: val_loss 0.2101, best rung lift 95.3`` for a per-epoch report; None
    for the final one (the progress view follows it)."""
    if result.get("final") or not isinstance(result.get("epoch"), (int, float)):
        return None
    return (f"trial {trial_id} epoch {int(result['epoch'])}: val_loss {fmt(result.get('val_loss'), 4)}, "
            f"best rung lift {fmt(result.get('rung_lift'), 4)}")


def config_text(config: dict) -> str:
    """The sampled values as ``lr=0.00123 weight_decay=1e-06 ...`` (``:.3g``; a key by its last
    dotted part unless two keys share it); Tune's ``seed`` left out."""
    keys = [k for k in config if "." in k]
    last = [k.rsplit(".", 1)[1] for k in keys]
    return " ".join(f"{name if last.count(name) == 1 else key}={fmt(config[key])}"
                    for key, name in zip(keys, last)) or "-"


def _wall(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
