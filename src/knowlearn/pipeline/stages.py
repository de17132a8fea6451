"""Stage planning: which stages a pipeline runs, on what examples, with which settings, and
the key each stage's output is cached under.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from knowlearn.augment.apply import format_documents, format_questions
from knowlearn.config import (
    FormatConfig,
    RunConfig,
    SAMConfig,
)
from knowlearn.data.records import Document, QAPair
from knowlearn.data.splits import VALIDATION
from knowlearn.eval.facts import fact_accuracy, fact_token_correct
from knowlearn.eval.qa import teacher_forced_em
from knowlearn.pipeline.corpus import base_corpus
from knowlearn.pipeline.rundir import file_digest
from knowlearn.train.batches import Example, document_examples, qa_examples
from knowlearn.train.epochs import EpochEval
from knowlearn.train.spec import StageSpec, TrainEnv

PIPELINES = {"standard": ["cpt", "it"], "pit": ["it", "cpt"], "mix": ["cpt"]}


def stage_names(cfg: RunConfig) -> list[str]:
    return PIPELINES[cfg.pipeline]


def resolve_precision(mixed_precision: str) -> str:
    """`auto`: bf16 where the GPU supports it, fp32 otherwise (CPUs here have no fast bf16)."""
    if mixed_precision != "auto":
        return mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def _sam_for(cfg: RunConfig, stage: str) -> SAMConfig | None:
    sam = cfg.optim.sam
    return sam if sam.rho > 0 and stage in sam.stages else None


def epoch_examples(
    make: Callable[[int], tuple[list[Example], int]], online: bool
) -> tuple[Callable[[int], list[Example]] | list[Example], int]:
    """Examples once (offline), or a function of the epoch (online re-sampling)."""
    first, truncated = make(0)
    if not online:
        return first, truncated
    return (lambda epoch: first if epoch == 0 else make(epoch)[0]), truncated


def it_epoch_eval(
    tok: PreTrainedTokenizerBase,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    batch_size: int,
) -> EpochEval:
    """IT's per-epoch curve: validation EM picks the epoch; held-out EM and memorization are
    logged beside it (never used to choose)."""
    val = [q for q in qa if q.split == VALIDATION]
    test = [q for q in qa if q.split == "test"]

    def evaluate(model: Any) -> dict[str, float]:
        memo = fact_accuracy(fact_token_correct(model, tok, docs, batch_size=batch_size))
        return {
            "validation_em": teacher_forced_em(model, tok, val, batch_size=batch_size),
            "test_em": teacher_forced_em(model, tok, test, batch_size=batch_size),
            "memorization": memo["all"]["acc"],
        }

    return EpochEval(evaluate, select="validation_em")


def plan_stages(
    cfg: RunConfig,
    docs: Sequence[Document],
    train_qa: Sequence[QAPair],
    tok: PreTrainedTokenizerBase,
) -> list[StageSpec]:
    """The training stages of `cfg.pipeline` (after Jiang et al. 2024, PIT):

    standard: CPT on every document (+ `mix_qa` train QA pairs) -> IT on the train QA.
    pit:      IT on the train entities' documents and QA first -> CPT on the other documents.
    mix:      one stage on every document and all train QA together.
    """
    train_entities = {q.entity for q in train_qa}
    rng = random.Random(f"mix/{cfg.seed}")
    mixed = rng.sample(list(train_qa), min(cfg.mix_qa, len(train_qa))) if cfg.mix_qa else []
    if cfg.pipeline == "pit":
        cpt_docs = [d for d in docs if d.entity not in train_entities]
        it_docs, it_qa = [d for d in docs if d.entity in train_entities], list(train_qa)
    elif cfg.pipeline == "mix":
        cpt_docs, it_docs, it_qa, mixed = list(docs), [], [], list(train_qa)
    else:
        cpt_docs, it_docs, it_qa = list(docs), [], list(train_qa)
    replay_pool = base_corpus(cfg)[0] if cfg.base.replay else []

    def cpt_examples(e: int) -> tuple[list[Example], int]:
        formatted = format_documents(cpt_docs, cfg.augment.cpt, cfg.seed, e)
        return concat_examples(
            document_examples(
                tok,
                formatted + replayed(replay_pool, cfg.base.replay, len(formatted), cfg.seed, e),
                cfg.cpt.max_length,
            ),
            qa_examples(tok, mixed, cfg.cpt.max_length),
        )

    def it_examples(e: int) -> tuple[list[Example], int]:
        return concat_examples(
            document_examples(
                tok, format_documents(it_docs, cfg.augment.cpt, cfg.seed, e), cfg.it.max_length
            ),
            qa_examples(
                tok, format_questions(it_qa, cfg.augment.it, cfg.seed, e), cfg.it.max_length
            ),
        )

    online = {
        "cpt": cfg.augment.cpt.online or bool(replay_pool),
        "it": cfg.augment.it.online or (bool(it_docs) and cfg.augment.cpt.online),
    }
    makers = {"cpt": cpt_examples, "it": it_examples}
    specs = {}
    for name in [n for n in ("cpt", "it") if n in stage_names(cfg)]:  # CPT's examples first
        data, truncated = epoch_examples(makers[name], online[name])
        sam = _sam_for(cfg, name)
        specs[name] = StageSpec(
            name,
            data,
            getattr(cfg, name),
            seed=cfg.seed,
            sam=sam,
            truncated=truncated,
            key=_stage_key(cfg, name, sam),
        )
    return [specs[n] for n in stage_names(cfg)]


def per_process_key(spec: StageSpec, env: TrainEnv) -> dict[str, int]:
    """The process count, where a stage's result depends on it: SAM perturbing each process
    with its own gradient (`sync=local`) or from a per-process subset (`perturb_fraction` <
    1). Elsewhere N processes split one global batch and give one process's result to float
    precision (tests/test_distributed.py): the stage's key is the same on any number."""
    processes = env.accelerator.num_processes if env.accelerator is not None else 1
    sam = spec.sam
    if processes > 1 and sam is not None and (sam.sync == "local" or sam.perturb_fraction < 1):
        return {"processes": processes}
    return {}


def _stage_key(cfg: RunConfig, name: str, sam: SAMConfig | None) -> dict[str, Any]:
    """What a stage's output depends on besides its input model: its key in the cache (bf16
    weights named only when chosen, so the keys of fp32 stages cached before it stay)."""
    weights = {"weights": cfg.weights} if cfg.weights != "fp32" else {}
    return weights | {
        "data": cfg.data,
        "files": [
            file_digest(cfg.data.documents),
            file_digest(cfg.data.qa),
            file_digest(cfg.augment.paraphrases),
        ],
        "seed": cfg.seed,
        "precision": resolve_precision(cfg.mixed_precision),
        "pipeline": cfg.pipeline,
        "lora": cfg.model.lora,
        "stage": name,
        "cfg": getattr(cfg, name),
        "formats": [cfg.augment.cpt, _it_formats_for(name, cfg)],
        "mix_qa": cfg.mix_qa,
        "replay": cfg.base.replay if name == "cpt" else 0.0,
        "sam": sam,
    }


def _it_formats_for(stage: str, cfg: RunConfig) -> FormatConfig:
    """The question formats a stage's key names: IT's own; for CPT the default stands in,
    since CPT reads no questions (an arm that only formats its IT questions reuses the
    plain arm's CPT stage, and keys cached before this rule are unchanged)."""
    return cfg.augment.it if stage == "it" else FormatConfig()


def replayed(
    pool: Sequence[Document], share: float, n_docs: int, seed: int, epoch: int
) -> list[Document]:
    """round(share x n_docs) base documents for this epoch, a fresh draw each epoch (never
    augmented): rehearsal of what the base model knew, so CPT does not overwrite it."""
    k = min(round(share * n_docs), len(pool))
    return random.Random(f"replay/{seed}/{epoch}").sample(list(pool), k) if k else []


def concat_examples(*parts: tuple[list[Example], int]) -> tuple[list[Example], int]:
    return [e for examples, _ in parts for e in examples], sum(n for _, n in parts)
