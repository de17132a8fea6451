"""How much of SAM's perturbation a bf16 forward pass sees: bf16(w + e) - bf16(w) against e.

    python bench/sam_bf16.py [--shape default|qwen2-1.5b] [--model DIR] [--out bench/results_sam_bf16.md]

`--shape default` (CPU, seconds): the embedded default model briefly trained on biographies
(SAM is used on trained weights; random init has other magnitudes). `--shape qwen2-1.5b`:
Qwen2-1.5B's config at random init, for a GPU; `--model DIR` loads real weights instead
(e.g. a downloaded Qwen2-1.5B). One batch's gradient gives e for SAM (rho 0.05, 0.5) and
ASAM (rho 0.5, weights scaled); knowlearn.optim.precision measures what bf16 keeps.
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import date
from pathlib import Path

import torch
import transformers

from knowlearn.config import ModelConfig
from knowlearn.data import bios
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.optim.precision import perturbation_kept, sam_perturbation
from knowlearn.train.batches import collate, document_examples

SETTINGS = [("SAM", 0.05, False), ("SAM", 0.5, False), ("ASAM", 0.5, True)]


def default_model(device: str, train_steps: int) -> tuple[torch.nn.Module, dict, str]:
    """The embedded default model after `train_steps` AdamW steps on 32 biographies."""
    people = bios.sample_people(32, seed=0)
    docs = bios.render_documents(people, seed=0)
    tok = train_tokenizer([d.text for d in docs], vocab_size=4096)
    examples, _ = document_examples(tok, docs, 256)
    batch = {k: v.to(device) for k, v in collate(examples, tok.pad_token_id).items()}
    model = build_tiny_model(ModelConfig(), tok, seed=0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(train_steps):
        opt.zero_grad()
        model(**batch, use_cache=False).loss.backward()
        opt.step()
    n = sum(p.numel() for p in model.parameters())
    return model, batch, f"embedded default ({n / 1e6:.2f}M params, {train_steps} AdamW steps)"


def big_model(shape: str, path: str | None, device: str, seq: int) -> tuple:
    sys.path.insert(0, str(Path(__file__).parent))
    from gpu_step import SHAPES

    if path:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        what = f"{path} (pre-trained weights)"
    else:
        with torch.device(device):  # random init on the GPU: seconds, not minutes on one thread
            model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**SHAPES[shape]))
        what = f"{shape} config, random init"
    model.to(device)
    ids = torch.randint(
        0, model.config.vocab_size, (2, seq), generator=torch.Generator().manual_seed(0)
    )
    ids = ids.to(device)
    return model, {"input_ids": ids, "labels": ids}, what


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="default", choices=["default", "qwen2-1.5b"])
    ap.add_argument("--model", default=None, help="a model directory (real weights)")
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--out", default="bench/results_sam_bf16.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.shape == "default" and not args.model:
        model, batch, what = default_model(device, args.train_steps)
    else:
        model, batch, what = big_model(args.shape, args.model, device, args.seq)
    model.zero_grad()
    model(**batch, use_cache=False).loss.backward()
    rows = [
        "# SAM's perturbation under bf16",
        "",
        f"`python bench/sam_bf16.py --shape {args.shape}`, {date.today()}, "
        f"{platform.machine()} ({device}), torch {torch.__version__}; {what}. "
        "d = bf16(w + e) - bf16(w), what a bf16 matmul sees of e.",
        "",
        "| method | rho | elements of e kept | cosine(d, e) | norm ratio: norm(d) / norm(e) |",
        "|---|---|---|---|---|",
    ]
    for name, rho, adaptive in SETTINGS:
        pairs = sam_perturbation(model.named_parameters(), rho, adaptive)
        got = perturbation_kept(pairs)
        rows.append(
            f"| {name} | {rho} | {got['kept']:.1%} | {got['cosine']:.3f} | {got['norm_ratio']:.3f} |"
        )
    text = "\n".join(rows) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
