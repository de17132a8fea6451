"""Data: `knowlearn generate`, `augment`, `import` and `synth`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from knowlearn.commands.common import quiet_libraries
from knowlearn.errors import KnowlearnError

if TYPE_CHECKING:
    from knowlearn.data.loaders import Loaded


def cmd_generate(args: argparse.Namespace) -> int:
    """Synthetic biographies, with the options spelled as `knowlearn train` spells them."""
    from knowlearn.config import DataConfig, from_dict, parse_override
    from knowlearn.data import bios

    data: dict = {}
    for text in args.overrides:
        keys, value = parse_override(text)
        if len(keys) > 1 and keys[0] == "data":  # `data.people=20`, as train spells it
            keys = keys[1:]
        data[".".join(keys)] = value
    d = from_dict(DataConfig, data, prefix="data.")
    paths = bios.generate_from(args.out, d)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_augment(args: argparse.Namespace) -> int:
    """Formatted copies of a run's training text, written or previewed (no training)."""
    import random

    from knowlearn.augment import TRANSFORMS, augment_document
    from knowlearn.augment.apply import format_documents, format_questions
    from knowlearn.config import load_config
    from knowlearn.data.records import write_records

    if args.preview < 0:
        raise KnowlearnError(
            f"must be >= 0 (formats to show), got {args.preview}", field="--preview"
        )
    cfg = load_config(args.config, args.overrides, transforms=TRANSFORMS)
    quiet_libraries()
    from knowlearn.pipeline.corpus import prepare_data

    out = Path(args.out or Path(cfg.out) / "augmented")
    docs, qa = prepare_data(cfg, out / "source")
    if cfg.augment.cpt.copies == 0 and not args.preview:
        raise KnowlearnError(
            "augment.cpt.copies is 0: nothing to write (set augment.cpt.copies=4, or use --preview N)",
            field="augment.cpt.copies",
        )
    if cfg.augment.cpt.copies or cfg.augment.it.copies:
        aug_docs = format_documents(docs, cfg.augment.cpt, cfg.seed)
        aug_qa = format_questions([q for q in qa if q.split == "train"], cfg.augment.it, cfg.seed)
        write_records(out / "documents.jsonl", aug_docs)
        write_records(out / "qa_train.jsonl", aug_qa)
        print(
            f"{len(docs)} documents -> {len(aug_docs)} ({out / 'documents.jsonl'}); {len(aug_qa)} training questions ({out / 'qa_train.jsonl'})"
        )
    if args.preview:
        names = list(cfg.augment.cpt.transforms or TRANSFORMS)
        copies = augment_document(
            docs[0],
            random.Random(cfg.seed),
            names,
            args.preview,
            True,
            cfg.augment.cpt.max_chain,
            spaced=cfg.augment.cpt.space_before_sentences,
        )
        for k, d in enumerate(copies):
            print(f"\n--- {'original' if k == 0 else f'format {k}'} ({d.id}) ---")
            print(d.text)
    return 0


def _load_pit(args: argparse.Namespace) -> Loaded:
    """PIT: a documents file (or a mix of documents and QA) and QA files."""
    from knowlearn.data import loaders

    if args.mix and args.documents:
        raise KnowlearnError(
            "give --documents (documents only) or --mix (documents and QA in one file), not both",
            field="--mix",
        )
    if args.mix:
        return loaders.load_pit_split(
            args.mix, args.qa_train, args.qa_test, mix_split=args.mix_split
        )
    if not args.documents:
        raise KnowlearnError(
            "--layout pit needs --documents (and --qa-train/--qa-test files) or --mix"
        )
    return loaders.load_pit_split(args.documents, args.qa_train, args.qa_test)


def _load_layout(args: argparse.Namespace) -> Loaded:
    """(documents, qa, report) from the layout the arguments name."""
    from knowlearn.data import loaders

    if args.layout == "folder":
        if not args.folder:
            raise KnowlearnError("--layout folder needs --folder (and --qa, if you have questions)")
        return loaders.load_folder(args.folder, args.qa)
    if args.layout == "pit":
        return _load_pit(args)
    if args.layout == "evidence":
        if not args.documents:
            raise KnowlearnError(
                "--layout evidence needs --documents (a list of {evidence_text, qa_pairs})"
            )
        return loaders.load_evidence(args.documents, split=args.split)
    if not args.documents:
        raise KnowlearnError("--layout wiki2023 needs --documents and --qa-train/--qa-test")
    splits = {k: v for k, v in (("train", args.qa_train), ("test", args.qa_test)) if v}
    return loaders.load_wiki2023(args.documents, splits)


def cmd_import(args: argparse.Namespace) -> int:
    """Convert a known layout (PIT JSON, Wiki2023 JSONL, an evidence list, a folder of
    .txt/.md) to knowlearn's JSONL; every input is checked before anything is written."""
    from knowlearn.data import loaders

    docs, qa, report = _load_layout(args)
    paths = loaders.write_loaded(args.out, docs, qa, report=report)
    print(report.summary())
    for name, path in paths.items():
        print(f"{name}: {path}")
    if qa:
        print(
            f"train on them: knowlearn train data.documents={paths['documents']} data.qa={paths.get('qa', '...')}"
        )
    else:
        print(
            f"no questions: have a local model write them with knowlearn synth --documents "
            f"{paths['documents']} --model MODEL_DIR --out OUT"
        )
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """QA pairs and paraphrases written by a local model from documents (resumes)."""
    from knowlearn.synth.config import load_synth_config

    flags = {"documents": args.documents, "model.path": args.model, "out": args.out}
    cfg = load_synth_config(args.config, args.overrides, flags)  # before torch loads
    quiet_libraries()
    from knowlearn.synth.run import run_synth
    from knowlearn.synth.summary import format_summary

    print(format_summary(run_synth(cfg, progress=not args.quiet)))
    return 0
