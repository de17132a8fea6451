"""Batched generation (transformers `generate`, KV cache, left padding), greedy or sampled
with one seeded torch.Generator per sequence.

`generate()` samples from the global RNG, so a sequence's tokens would depend on which
other sequences share its batch and on the order of the batches. Here sampling happens in
a logits processor that draws each row's token with that row's own generator (seeded from
the run's seed, the document and the prompt) and leaves greedy decoding nothing else to
choose: a document's text depends on its seed alone, so a resumed run writes what an
uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)


@dataclass(frozen=True)
class Generated:
    text: str  # decoded, special tokens left out, stripped
    stopped: bool  # an end-of-sequence token came within max_new_tokens


def sequence_seed(seed: int, *parts: str) -> int:
    """A 63-bit seed for one sequence, from SHA-256 (not hash(): the same in every process)."""
    key = "\x1f".join([str(seed), *parts]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> 1


class RowSampler(LogitsProcessor):
    """Draws each row's next token from softmax(logits / temperature) with the row's own
    generator, and masks every other token, so greedy selection returns the draw."""

    def __init__(self, seeds: Sequence[int], temperature: float, device: torch.device) -> None:
        self.temperature = temperature
        self.generators = []
        for s in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(s)
            self.generators.append(g)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        picks = torch.cat(
            [torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(self.generators)]
        )
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(picks), device=scores.device), picks] = 0.0
        return out


def eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every token that ends a turn: the tokenizer's eos and the model's generation eos
    (instruct models end a reply with their own, e.g. <|im_end|>)."""
    ids = {tokenizer.eos_token_id}
    gen = model.generation_config.eos_token_id
    ids |= set(gen) if isinstance(gen, list | tuple) else {gen}
    return sorted(i for i in ids if i is not None)


@torch.no_grad()
def generate_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[int]],
    seeds: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float,
) -> list[Generated]:
    """One generate() call over `prompts` (token ids), left-padded; `seeds` matter only
    when sampling (temperature > 0)."""
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    eos = eos_ids(model, tokenizer)
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :] = torch.tensor(p)
        mask[r, width - len(p) :] = 1
    processors = LogitsProcessorList(
        [RowSampler(seeds, temperature, device)] if temperature > 0 else []
    )
    # Explicit settings: a model's own generation_config (top_p, repetition_penalty, ...)
    # would otherwise change what "greedy" or "temperature T" means from model to model.
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        repetition_penalty=1.0,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    out = model.generate(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        generation_config=config,
        logits_processor=processors,
    )[:, width:].tolist()
    result = []
    for toks in out:
        end = next((i for i, t in enumerate(toks) if t in eos), None)
        stopped = end is not None
        kept = toks[:end] if stopped else toks
        result.append(Generated(tokenizer.decode(kept, skip_special_tokens=True).strip(), stopped))
    return result
