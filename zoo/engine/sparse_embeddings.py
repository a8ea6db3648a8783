"""`training.train_embeddings = "sparse"`: the word-embedding matrix trains, but a step touches
only the rows of the tokens its batch holds.

The embedding gives a sparse gradient (`nn.Embedding(sparse=True)`: the rows a batch used), and
`LazyAdamW` updates those rows alone: a row's moments move only at the steps that use it, as in
TensorFlow's LazyAdam and torch's SparseAdam, and AdamW's decoupled weight decay reaches the rows
it updates. Every other parameter takes torch's own AdamW step, unchanged. torch's
`clip_grad_norm_` has no kernel for a sparse gradient, so `clip_grad_norm` computes the same total
norm here, the sparse gradient coalesced first (its repeated rows summed).

What this saves over training the dense matrix: its gradient (4 bytes a parameter), and AdamW's
pass over every row of it at every step; its two moments stay, one value each per parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from zoo.errors import ZooError


def make_sparse(model: Any) -> None:
    """Have the model's word embedding return sparse gradients."""
    embedding = model.get_input_embeddings()
    if not isinstance(embedding, torch.nn.Embedding):
        raise ZooError(
            f"training.train_embeddings = 'sparse' needs the model's word embedding to be a "
            f"torch nn.Embedding, but it is a {type(embedding).__name__}",
            hint="set train_embeddings = true (or false) for this model",
        )
    embedding.sparse = True


class LazyAdamW(torch.optim.AdamW):
    """AdamW, and for a parameter whose gradient is sparse, AdamW on the rows it holds."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = [
            (group, p)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None and p.grad.is_sparse
        ]
        # torch's AdamW has no sparse kernel: hide those gradients from its step.
        hidden = [p.grad for _, p in sparse]
        for _, p in sparse:
            p.grad = None
        try:
            super().step()
        finally:
            for (_, p), grad in zip(sparse, hidden, strict=True):
                p.grad = grad
        for group, p in sparse:
            self._rows_step(group, p)
        return loss

    def _rows_step(self, group: dict[str, Any], p: torch.Tensor) -> None:
        if group["amsgrad"] or group["maximize"]:
            raise ValueError("LazyAdamW does not do amsgrad or maximize on sparse gradients")
        grad = p.grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        step = float(state["step"])
        beta1, beta2 = group["betas"]
        lr, eps, decay = float(group["lr"]), group["eps"], group["weight_decay"]
        exp_avg = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(values, alpha=1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
        exp_avg_sq.addcmul_(values, values, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        denominator = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
        updated = p.index_select(0, rows).mul_(1 - lr * decay)
        updated.addcdiv_(exp_avg, denominator, value=-lr / (1 - beta1**step))
        p.index_copy_(0, rows, updated)


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """torch's `clip_grad_norm_` (the 2-norm over every gradient, each scaled by
    max_norm / norm when it is larger), for gradients that may be sparse."""
    grads = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()  # a repeated row counts once, with its summed gradient
        grads.append(p.grad)
    if not grads:
        return torch.tensor(0.0)
    norms = [torch.linalg.vector_norm(g.values() if g.is_sparse else g) for g in grads]
    total = torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]))
    if not math.isinf(max_norm):
        scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            (g.values() if g.is_sparse else g).mul_(scale.to(g.device))
    return total
