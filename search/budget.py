"""Raising a stopped experiment's sample budget before ``Tuner.restore`` (``--resume --num-samples N``).

Tune stores the number of samples inside its search-generator state (``search_gen_state-*.json``,
a cloudpickled dict with ``counter``/``total_samples``/``finished``) and ``Tuner.restore`` offers no
way to change it. This is the one place that touches that private file; the resume test guards it
against Ray upgrades.
"""
from __future__ import annotations

import os
from pathlib import Path

import ray.cloudpickle as cloudpickle

STATE_GLOB = "search_gen_state-*.json"


def raise_budget(exp_dir: str | Path, num_samples: int) -> None:
    """Set the budget to ``num_samples`` when larger; a smaller value cannot undo created trials."""
    for path in sorted(Path(exp_dir).glob(STATE_GLOB)):
        state = cloudpickle.loads(path.read_bytes())
        if num_samples > state["total_samples"]:
            state["total_samples"] = num_samples
            state["finished"] = False
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            tmp.write_bytes(cloudpickle.dumps(state))
            os.replace(tmp, path)
