"""Where a training step's time goes, by the operator that launched each kernel (#17 item 4).

Kernel names alone mislead: FlashAttention-3's kernels are CUTLASS kernels named like GEMMs,
and a cast kernel does not say whether it cast a weight (autocast, every forward) or an
activation, a gradient or the fp32 logits. The profiler links every GPU kernel to the CPU
operator that launched it (`FunctionEvent.kernels`); this module classifies that operator
and the operators around it, and a cast by the shape it cast: a parameter's shape is a weight
(or its gradient), a last dimension of the vocabulary is the logits, anything else is an
activation. On a CPU, where there are no kernels, each operator's own CPU time stands in.

    from profile_buckets import time_by_bucket
    with torch.profiler.profile(record_shapes=True) as prof: ...
    time_by_bucket(prof.events(), param_shapes, vocab, device=True)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Operator names (lower-cased, "aten::" kept) -> bucket; the first operator up the chain from
# the launching one that matches decides. Casts are decided first, by shape (below).
OP_KINDS = (
    ("optimizer + grad norm", ("optimizer.", "_foreach_", "_fused_adam", "clip_grad")),
    ("attention", ("attention", "flash", "_efficient_", "cudnn_attention")),
    (
        "matmul",
        (
            "aten::mm",
            "aten::addmm",
            "aten::bmm",
            "aten::baddbmm",
            "aten::matmul",
            "aten::linear",
            "aten::_scaled_mm",
        ),
    ),
    ("loss (log-softmax, nll)", ("softmax", "nll_loss", "cross_entropy")),
)
CASTS = ("aten::_to_copy", "aten::to", "aten::copy_", "aten::empty_strided")
OTHER = "other elementwise (norms, activations, rotary, embedding)"


def ancestry(event: Any) -> list[Any]:
    """The event and its CPU parents, innermost first."""
    chain = []
    while event is not None:
        chain.append(event)
        event = event.cpu_parent
    return chain


def bucket_of(event: Any, param_shapes: set[tuple[int, ...]], vocab: int) -> str:
    """The bucket of the time `event` (an operator that launched kernels) spent."""
    chain = ancestry(event)
    names = [e.name.lower() for e in chain]
    # An optimizer's own casts and copies are the optimizer's, whatever their shape.
    if any(n.startswith("optimizer.") for n in names):
        return "optimizer + grad norm"
    if names[0] in CASTS:
        cast = next((e for e in chain if e.name == "aten::_to_copy"), None)
        shapes = getattr(cast, "input_shapes", None) or [[]]
        shape = tuple(shapes[0]) if shapes and isinstance(shapes[0], list | tuple) else ()
        if shape in param_shapes:
            return "casts: weights and their gradients"
        if shape and shape[-1] == vocab:
            return "casts: logits"
        if cast is not None:
            return "casts: activations and gradients"
    for name in names:
        for kind, patterns in OP_KINDS:
            if any(p in name for p in patterns):
                return kind
    return OTHER


def time_by_bucket(
    events: Iterable[Any], param_shapes: set[tuple[int, ...]], vocab: int, device: bool
) -> dict[str, float]:
    """Microseconds per bucket: the GPU kernels each CPU operator launched (`device`), or
    each CPU operator's own CPU time (no GPU)."""
    out: dict[str, float] = {}
    for e in events:
        if device:
            us = sum(k.duration for k in getattr(e, "kernels", []) or [])
        else:  # operators only: an annotation's or autograd node's self time is Python
            us = e.self_cpu_time_total if e.name.startswith("aten::") else 0
        if us <= 0:
            continue
        kind = bucket_of(e, param_shapes, vocab)
        out[kind] = out.get(kind, 0.0) + us
    return out
