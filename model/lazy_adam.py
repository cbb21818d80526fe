"""Lazy Adam for the embedding tables: Adam on the rows a step's sparse gradient touched.

The same update as ``torch.optim.SparseAdam`` (first and second moments of the touched rows only,
bias correction by the parameter's step count) with Adam's coupled L2 weight decay added to those
rows' gradients, as ``torch.optim.Adam(weight_decay=...)`` adds it to every row. SparseAdam builds
and coalesces several sparse tensors per step, a large part of a training epoch of the search's
models on a CPU (``torch.profiler``; see docs/results.md). Here the gradient's row indices are
made unique once, duplicates summed with ``index_add_``, and the moments and weights updated with
row gathers and scatters (``index_select``, ``index_copy_``: on one CPU thread faster than
advanced indexing).
"""
from __future__ import annotations

import math

import torch


class LazyAdam(torch.optim.Optimizer):
    """Adam for parameters with sparse (COO, row-wise) gradients, e.g. ``nn.Embedding(sparse=True)``
    or ``nn.EmbeddingBag(sparse=True)``: rows a step did not touch keep their moments and weights."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"LazyAdam: invalid lr {lr}, betas {betas}, eps {eps} or weight_decay {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict) -> None:
        grad = p.grad
        if not grad.is_sparse:
            raise RuntimeError("LazyAdam: expected a sparse gradient (an embedding with sparse=True)")
        rows, inverse = torch.unique(grad._indices()[0], return_inverse=True)
        values = grad._values()
        g = torch.zeros((len(rows), *values.shape[1:]), dtype=values.dtype, device=values.device)
        g.index_add_(0, inverse, values)  # duplicates summed, as coalescing does
        if group["weight_decay"]:
            g.add_(p.index_select(0, rows), alpha=group["weight_decay"])
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        m = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(g, alpha=1 - beta1)
        v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, m)
        state["exp_avg_sq"].index_copy_(0, rows, v)
        step_size = group["lr"] * math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
        p.index_add_(0, rows, m.div_(v.sqrt_().add_(group["eps"])), alpha=-step_size)
