"""Training throughput: knowlearn's CPT and IT steps vs Hugging Face Trainer, side by side.

    python bench/train_throughput.py [--steps 40] [--out bench/results_train.md]

Same tiny model (the embedded default), same biographies / QA, same batch size and optimizer
(AdamW, no clipping differences that matter for speed), one thread, alternating knowlearn and
Trainer in rounds so machine noise hits both. Tokens/s counts real (non-padding) tokens.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
import transformers
from transformers import Trainer, TrainingArguments

from knowlearn.config import ModelConfig, StageConfig
from knowlearn.data import bios
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.train.batches import IGNORE, document_examples, qa_examples
from knowlearn.train.loop import StageSpec, TrainEnv, train_stage


class Listed(torch.utils.data.Dataset):
    def __init__(self, examples):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i):
        e = self.examples[i]
        return {"input_ids": e.input_ids, "labels": e.labels}


def pad_collate(pad_id: int):
    def fn(rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id)
        labels = torch.full((len(rows), width), IGNORE)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = (
                torch.tensor(r["input_ids"]),
                torch.tensor(r["labels"]),
                1,
            )
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return fn


def knowlearn_tps(init: Path, examples, steps: int, batch: int, work: Path) -> float:
    n = steps * batch
    subset = examples[:n]
    cfg = StageConfig(epochs=1.0, lr=1e-3, batch_size=batch, checkpoint_every=0)
    t = time.perf_counter()
    train_stage(init, StageSpec("bench", subset, cfg, seed=0), work, TrainEnv(progress=False))
    return sum(len(e.input_ids) for e in subset) / (time.perf_counter() - t)


def trainer_tps(
    init: Path, examples, steps: int, batch: int, work: Path, pad_id: int, group_by_length: bool
) -> float:
    subset = examples[: steps * batch]
    t = time.perf_counter()  # like knowlearn's figure: model loading included
    model = transformers.AutoModelForCausalLM.from_pretrained(init)
    args = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=batch,
        num_train_epochs=1,
        learning_rate=1e-3,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.1,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        seed=0,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=Listed(subset), data_collator=pad_collate(pad_id)
    )
    t = time.perf_counter()
    trainer.train()
    return sum(len(e.input_ids) for e in subset) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="bench/results_train.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    people = bios.sample_people(400, seed=0)
    docs = bios.render_documents(people, seed=0, renderings=4, permute=True)
    qa = bios.make_qa(people, seed=0)
    tok = train_tokenizer([d.text for d in docs] + [q.question for q in qa], vocab_size=4096)
    stages = {
        "CPT (documents)": document_examples(tok, docs, 256)[0],
        "IT (QA, answer-only loss)": qa_examples(tok, qa, 256)[0],
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp) / "init"
        build_tiny_model(ModelConfig(), tok, seed=0).save_pretrained(init)
        tok.save_pretrained(init)
        for name, examples in stages.items():
            ours, theirs, theirs_grouped = [], [], []
            for r in range(args.rounds):
                ours.append(
                    knowlearn_tps(
                        init, examples, args.steps, args.batch, Path(tmp) / f"k{name[:3]}{r}"
                    )
                )
                theirs.append(
                    trainer_tps(
                        init,
                        examples,
                        args.steps,
                        args.batch,
                        Path(tmp) / "t",
                        tok.pad_token_id,
                        False,
                    )
                )
                theirs_grouped.append(
                    trainer_tps(
                        init,
                        examples,
                        args.steps,
                        args.batch,
                        Path(tmp) / "t",
                        tok.pad_token_id,
                        True,
                    )
                )
            k, t, g = (statistics.median(x) for x in (ours, theirs, theirs_grouped))
            rows.append(
                f"| {name} | {k:,.0f} | {t:,.0f} | {k / t:.2f}x | {g:,.0f} | {k / g:.2f}x | >= 1.0x |"
            )
    text = (
        "\n".join(
            [
                "# Training throughput: knowlearn vs Hugging Face Trainer",
                "",
                f"`python bench/train_throughput.py --steps {args.steps} --batch {args.batch} --rounds {args.rounds}`, {date.today()}, "
                f"{platform.machine()} CPU, 1 thread, torch {torch.__version__}, transformers {transformers.__version__}; embedded default "
                f"model, batch {args.batch}, {args.steps} optimizer steps per measurement, median of {args.rounds} alternating rounds. "
                "Tokens/s counts non-padding tokens; both include their optimizer and schedule.",
                "",
                "| stage | knowlearn tok/s | Trainer tok/s | ratio | Trainer group_by_length tok/s | ratio | goal |",
                "|---|---|---|---|---|---|---|",
                *rows,
            ]
        )
        + "\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
