"""How much of SAM's perturbation survives bf16: the forward pass sees bf16(w + e), not w + e.

Under bf16 autocast the matmuls cast fp32 weights to bf16, and with bf16 weights the sum is
rounded on the spot; either way an element of e smaller than half a bf16 step of w (w's
magnitude x 2^-9) is rounded away. `perturbation_kept` measures it on real tensors
(bench/sam_bf16.py runs it on a model; docs/sam.md reports the figures).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def perturbation_kept(
    pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], dtype: torch.dtype = torch.bfloat16
) -> dict[str, float]:
    """For (w, e) pairs: the perturbation the forward pass sees, d = dtype(w + e) - dtype(w),
    against e. Returns the share of e's nonzero elements with d != 0 ("kept"), the cosine
    of d and e, and ||d|| / ||e||."""
    kept = nonzero = 0
    dot = dd = ee = 0.0
    for w, e in pairs:
        w64, e64 = w.detach().double(), e.detach().double()
        d = (w64 + e64).to(dtype).double() - w64.to(dtype).double()
        mask = e64 != 0
        nonzero += int(mask.sum())
        kept += int((d[mask] != 0).sum())
        dot += float((d * e64).sum())
        dd += float(d.square().sum())
        ee += float(e64.square().sum())
    if nonzero == 0 or dd == 0:
        return {"kept": 0.0, "cosine": 0.0, "norm_ratio": 0.0}
    return {
        "kept": kept / nonzero,
        "cosine": dot / math.sqrt(dd * ee),
        "norm_ratio": math.sqrt(dd / ee),
    }


def sam_perturbation(
    named: Iterable[tuple[str, torch.Tensor]],
    rho: float,
    adaptive: bool = False,
    eta: float = 0.01,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(w, e) for the params with a gradient, as knowlearn's SAM computes e (ASAM: the
    default scope, names containing "weight" scaled by T = |w| + eta), in fp64."""
    named = [(n, p) for n, p in named if p.grad is not None]
    ts = [p.detach().double().abs() + eta if adaptive and "weight" in n else None for n, p in named]
    tg = [p.grad.double() * (1.0 if t is None else t) for (_, p), t in zip(named, ts, strict=True)]
    norm = math.sqrt(sum(float(x.square().sum()) for x in tg))
    return [
        (p, x * (1.0 if t is None else t) * (rho / norm))
        for (_, p), x, t in zip(named, tg, ts, strict=True)
    ]
