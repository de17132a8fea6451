"""SAM step cost vs the AdamW step, side by side in one process.

    python bench/sam_step.py [--steps 30] [--out bench/results_sam.md]

Runs the embedded default model (tiny Llama, hidden 128, 4 layers) on a batch of 32
biographies, alternating AdamW and SAM steps so machine noise hits both alike, and
writes a markdown table: median step time of each, their ratio (goal <= 2.05x: SAM's
floor is two forward-backward passes), and the extra memory SAM holds at its peak
(the saved weights, counted exactly) against one copy of the trainable parameters
(goal <= 1.0x). Cheap SAM (`optim.sam.perturb_fraction`, the first pass on a share of
the batch, default 1/4 here) runs in the same alternation (goal <= 1.3x the AdamW step).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch
import transformers

from knowlearn.config import ModelConfig
from knowlearn.data import bios
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.optim.sam import SAM
from knowlearn.optim.sam_step import sam_step
from knowlearn.train.batches import collate, document_examples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fraction", type=float, default=0.25, help="cheap SAM's first-pass share")
    ap.add_argument("--out", default="bench/results_sam.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    people = bios.sample_people(args.batch, seed=0)
    docs = bios.render_documents(people, seed=0)
    tok = train_tokenizer([d.text for d in docs], vocab_size=4096)
    examples, _ = document_examples(tok, docs, 256)
    batch = {k: v.to(device) for k, v in collate(examples, tok.pad_token_id).items()}
    model = build_tiny_model(ModelConfig(), tok, seed=0).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    adamw = torch.optim.AdamW(params, lr=1e-4)
    sam = SAM(torch.optim.AdamW(params, lr=1e-4), rho=0.05)
    cheap = SAM(torch.optim.AdamW(params, lr=1e-4), rho=0.05)
    k = max(1, round(args.fraction * args.batch))
    subset = [{key: v[:k] for key, v in batch.items()}]

    def loss_fn(mb: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**mb, use_cache=False).loss

    def adamw_step() -> None:
        adamw.zero_grad(set_to_none=True)
        loss_fn(batch).backward()
        adamw.step()

    extra = []
    orig_perturb = sam.perturb

    def perturb_and_measure() -> None:
        orig_perturb()
        extra.append(sum(t.numel() * t.element_size() for _, t in sam._backup))

    sam.perturb = perturb_and_measure

    def sam_once() -> None:
        sam_step(sam, [batch], loss_fn)

    def cheap_once() -> None:
        sam_step(cheap, [batch], loss_fn, perturb_with=subset)

    def timed(fn) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    for _ in range(3):  # warm-up
        adamw_step()
        sam_once()
        cheap_once()
    t_adamw, t_sam, t_cheap = [], [], []
    for _ in range(args.steps):
        t_adamw.append(timed(adamw_step))
        t_sam.append(timed(sam_once))
        t_cheap.append(timed(cheap_once))
    a, s, c = (statistics.median(t) for t in (t_adamw, t_sam, t_cheap))
    n_params = sum(p.numel() for p in params)
    rows = [
        "# SAM step vs AdamW step",
        "",
        f"`python bench/sam_step.py --steps {args.steps} --batch {args.batch} --threads {args.threads}`, "
        f"{date.today()}, {platform.processor() or platform.machine()} ({device}), torch {torch.__version__}, "
        f"transformers {transformers.__version__}; embedded default model ({n_params / 1e6:.2f}M params), "
        f"batch {args.batch} biographies, {int(batch['attention_mask'].sum())} tokens.",
        "",
        "| metric | AdamW | SAM | ratio | goal |",
        "|---|---|---|---|---|",
        f"| median step time (ms) | {a * 1e3:.1f} | {s * 1e3:.1f} | {s / a:.2f}x | <= 2.05x |",
        f"| median step time (ms), cheap SAM: first pass on {k} of {args.batch} examples "
        f"(`optim.sam.perturb_fraction={args.fraction}`) | {a * 1e3:.1f} | {c * 1e3:.1f} | "
        f"{c / a:.2f}x | <= 1.3x |",
        f"| extra memory held by the optimizer wrapper (MB) | 0 | {max(extra) / 2**20:.2f} | "
        f"{max(extra) / param_bytes:.2f}x of one parameter copy ({param_bytes / 2**20:.2f} MB) | <= 1.0x |",
    ]
    text = "\n".join(rows) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
