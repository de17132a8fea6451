"""`knowlearn` command line: demo, generate, train, eval, export-lm-eval, ...

Errors in the user's input print as one line naming the file, line and field, and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import warnings
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from knowlearn.errors import KnowlearnError

if TYPE_CHECKING:
    from knowlearn.data.loaders import Loaded

DEMO_CONFIG = "demo.yaml"


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # Deprecation notices of the libraries (peft calls a renamed transformers method) are
    # for their developers, not for a user reading what knowlearn says.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\.")
    # A merge=false adapter stacked on another adapter has no config.json beside it: fine.
    warnings.filterwarnings("ignore", message="Could not find a config file", module=r"peft\.")
    logging.getLogger("accelerate").setLevel(logging.ERROR)


def shipped_config(name: str) -> Path:
    return Path(str(files("knowlearn") / "configs" / name))


def cmd_run(args: argparse.Namespace) -> int:
    """An experiment: arms x seeds from a YAML, in parallel, then the table (and report)."""
    return cmd_demo(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from knowlearn.experiment.arms import format_table, load_experiment, run_experiment

    exp = load_experiment(
        args.config or shipped_config(DEMO_CONFIG),
        [f"out={args.out}"] + args.overrides if args.out else args.overrides,
    )
    _quiet_libraries()
    print(
        f"knowlearn {args.command}: {len(exp.arms)} arms x {len(exp.seeds)} seed(s) -> {exp.out}",
        flush=True,
    )
    rows = run_experiment(exp)
    from knowlearn.report import write_report

    report = write_report(exp.out)
    print()
    print(format_table(rows))
    print(
        f"\nreport: {report} (plots in {Path(exp.out) / 'plots'}); runs: {Path(exp.out) / 'arms'}"
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from knowlearn.config import DataConfig, from_dict, parse_override
    from knowlearn.data import bios

    data: dict = {}
    for text in args.overrides:
        keys, value = parse_override(text)
        if len(keys) > 1 and keys[0] == "data":  # `data.people=20`, as train spells it
            keys = keys[1:]
        data[".".join(keys)] = value
    d = from_dict(DataConfig, data, prefix="data.")
    paths = bios.generate(
        args.out,
        people=d.people,
        seed=d.seed,
        renderings=d.renderings,
        permute=d.permute,
        fullname=d.fullname,
        train_fraction=d.train_fraction,
        question_templates=d.question_templates,
        value_first=d.value_first,
    )
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from knowlearn.config import load_config
    from knowlearn.io import dumps

    # The config first: a typo is reported before torch and transformers load (seconds).
    cfg = load_config(
        args.config, [f"out={args.out}", *args.overrides] if args.out else args.overrides
    )
    _quiet_libraries()
    from knowlearn.pipeline import run
    from knowlearn.results import HEADLINE, summary_row

    results = run(cfg, progress=not args.quiet)
    row = summary_row(results)
    print(dumps({k: round(row[k], 2) for k in HEADLINE}))
    print(f"results: {Path(cfg.out) / 'results.json'}")
    return 0


def cmd_augment(args: argparse.Namespace) -> int:
    import random

    from knowlearn.augment import TRANSFORMS, augment_document
    from knowlearn.augment.apply import format_documents, format_questions
    from knowlearn.config import load_config
    from knowlearn.data.records import write_records

    if args.preview < 0:
        raise KnowlearnError(
            f"must be >= 0 (formats to show), got {args.preview}", field="--preview"
        )
    cfg = load_config(args.config, args.overrides)
    _quiet_libraries()
    from knowlearn.pipeline import prepare_data

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


def _at_least_one(value: int, option: str) -> None:
    if value < 1:
        raise KnowlearnError(f"must be >= 1, got {value}", field=option)


def final_model(path: Path) -> Path:
    """A model directory: `path` itself, or a finished run directory's final model.

    An experiment directory, or a run that has not finished, is refused with what to pass
    instead (its model folders hold checkpoints or nothing yet).
    """
    if (path / "arms").is_dir():
        arms = sorted(str(p.parent) for p in path.glob("arms/*/seed*/results.json"))
        raise KnowlearnError(
            f"an experiment directory: choose one of its runs ({', '.join(arms[:4]) or 'none finished'})",
            file=path,
        )
    if (path / "config.yaml").is_file() and not (path / "config.json").is_file():
        if not (path / "results.json").is_file():
            done = [s for s in ("it", "cpt") if (path / s / "done.json").is_file()]
            hint = (
                f", or pass --model {path / done[0] / 'model'} for its {done[0]} model"
                if done
                else " (no stage has finished yet)"
            )
            raise KnowlearnError(
                f"a run directory that has not finished (no results.json): rerun its command to "
                f"finish it{hint}",
                file=path,
            )
        for stage in ("it/model", "cpt/model"):  # a run directory: its final model
            if (path / stage).is_dir():
                return path / stage
    return path


def cmd_ask(args: argparse.Namespace) -> int:
    """Greedy answer to one question, in the QA format the model was instruction-tuned on."""
    _at_least_one(args.max_new_tokens, "--max-new-tokens")
    if any(not q.strip() for q in args.question):
        raise KnowlearnError("a question is empty", field="question")
    path = final_model(Path(args.model))
    _quiet_libraries()
    from knowlearn.eval.qa import greedy_generate
    from knowlearn.models.load import load_model, load_tokenizer
    from knowlearn.train.batches import prompt_ids

    tok = load_tokenizer(path, trust_remote_code=args.trust_remote_code)
    model = load_model(path, trust_remote_code=args.trust_remote_code)
    for question in args.question:
        [(tokens, _)] = greedy_generate(
            model,
            tok,
            [prompt_ids(tok, question)],
            batch_size=1,
            max_new_tokens=args.max_new_tokens,
        )
        print(tok.decode(tokens, skip_special_tokens=True).strip())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from knowlearn.data.records import read_documents, read_qa
    from knowlearn.io import dumps

    _at_least_one(args.batch_size, "--batch-size")
    _at_least_one(args.max_new_tokens, "--max-new-tokens")
    qa = read_qa(args.qa)
    docs = read_documents(args.documents) if args.documents else None
    path = final_model(Path(args.model))
    _quiet_libraries()
    from knowlearn.eval.facts import fact_accuracy, fact_token_correct
    from knowlearn.eval.qa import predict, score
    from knowlearn.models.load import load_model, load_tokenizer

    model = load_model(path)  # first: a bad --model is reported as a model, not a tokenizer
    tok = load_tokenizer(args.tokenizer or path)
    print(f"knowlearn eval: {len(qa):,} questions, {path}", file=sys.stderr, flush=True)
    preds = predict(
        model,
        tok,
        qa,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        progress=not args.quiet,
    )
    out = {"qa": score(preds)}
    if docs is not None:
        out["memorization"] = fact_accuracy(fact_token_correct(model, tok, docs))
    print(dumps(out, indent=2))
    return 0


def run_qa_file(path: Path) -> Path:
    """A QA JSONL: `path` itself, or a run directory's QA (its data/qa.jsonl, else data.qa)."""
    if not (path / "config.yaml").is_file():
        return path
    if (path / "data" / "qa.jsonl").is_file():
        return path / "data" / "qa.jsonl"
    from knowlearn.config import load_config

    qa = load_config(path / "config.yaml").data.qa
    if qa is None:
        raise KnowlearnError("a run directory without QA yet (no data/qa.jsonl)", file=path)
    return Path(qa)


def cmd_export_lm_eval(args: argparse.Namespace) -> int:
    """The QA set as an lm-evaluation-harness task (YAML + JSONL + utils.py)."""
    from knowlearn.data.records import read_qa
    from knowlearn.eval.lm_eval_export import check_task_name, export_lm_eval, lm_eval_command

    _at_least_one(args.max_new_tokens, "--max-new-tokens")
    check_task_name(args.task)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise KnowlearnError("is a file, not a folder; choose another --out", file=out)
    model = str(final_model(Path(args.model))) if args.model else "MODEL_DIR"
    qa = read_qa(run_qa_file(Path(args.qa)))
    chosen = [q for q in qa if args.split == "all" or q.split == args.split]
    paths = export_lm_eval(chosen, out, name=args.task, max_new_tokens=args.max_new_tokens)
    print(f"{len(chosen):,} questions ({args.split}) -> {paths['data']}")
    for key in ("yaml", "utils"):
        print(f"{key}: {paths[key]}")
    print("run it: " + lm_eval_command(model, out, args.task))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from knowlearn.report import aggregate, collect, main_table, write_report

    if not Path(args.exp_dir).is_dir():
        raise KnowlearnError("no such directory", file=args.exp_dir)
    if not Path(args.exp_dir, "arms").is_dir():
        if Path(args.exp_dir, "config.yaml").is_file():  # one run of `knowlearn train`
            from knowlearn.report.run_report import write_run_report

            path = write_run_report(args.exp_dir)
            print(path.read_text(encoding="utf-8").split("\n## Plots")[0].rstrip())
            print(f"\nreport: {path} (plots/ beside it)")
            return 0
        raise KnowlearnError(
            "neither an experiment directory (arms/) nor a run directory (config.yaml)",
            file=args.exp_dir,
        )
    path = write_report(args.exp_dir)
    print(main_table(aggregate(collect(args.exp_dir))))
    print(f"\nreport: {path} (results.json and plots/ beside it)")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """QA pairs and paraphrases written by a local model from documents (resumes)."""
    from knowlearn.synth.config import load_synth_config

    flags = {"documents": args.documents, "model.path": args.model, "out": args.out}
    cfg = load_synth_config(args.config, args.overrides, flags)  # before torch loads
    _quiet_libraries()
    from knowlearn.synth.run import run_synth
    from knowlearn.synth.summary import format_summary

    print(format_summary(run_synth(cfg, progress=not args.quiet)))
    return 0


def _user_path(text: str) -> str:
    """`~` expanded, as the shell does for a bare word but not for `--out=~/x` or a quoted path."""
    return os.path.expanduser(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="knowlearn",
        description="Teach language models new facts they can recall (CPT -> IT -> QA).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser(
        "demo",
        help="the embedded default, end to end: arms on synthetic biographies with a tiny model",
    )
    d.add_argument(
        "--config", type=_user_path, help="experiment YAML (default: the shipped demo.yaml)"
    )
    d.add_argument("--out", type=_user_path, help="run directory (default: from the config)")
    d.add_argument(
        "overrides", nargs="*", help="key=value overrides of the base config, e.g. data.people=100"
    )
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser(
        "run", help="an experiment: arms x seeds of a base config (YAML), in parallel, cached"
    )
    r.add_argument(
        "--config",
        required=True,
        type=_user_path,
        help="experiment YAML, or a shipped preset's name (paper, remedies, base_model, ...)",
    )
    r.add_argument("--out", type=_user_path, help="experiment directory (default: from the config)")
    r.add_argument(
        "overrides",
        nargs="*",
        help="key=value: out/seeds/parallel/arms.*, else applied to every arm's base",
    )
    r.set_defaults(func=cmd_run)

    g = sub.add_parser("generate", help="write synthetic biographies (documents.jsonl, qa.jsonl)")
    g.add_argument("--out", required=True, type=_user_path, help="output folder")
    g.add_argument(
        "overrides",
        nargs="*",
        help="data options, e.g. people=200 seed=1 renderings=5 permute=true",
    )
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser(
        "train", help="one run: data -> CPT -> IT -> evaluation, into a run directory (resumes)"
    )
    t.add_argument(
        "--config",
        type=_user_path,
        help="run YAML, or a shipped preset's name (default: the embedded default)",
    )
    t.add_argument("--out", type=_user_path, help="run directory (the same as out=DIR)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("overrides", nargs="*", help="key=value overrides, e.g. out=runs/x cpt.lr=1e-3")
    t.set_defaults(func=cmd_train)

    a = sub.add_parser(
        "augment",
        help="write formatted copies of a run's documents and questions; --preview N shows one document in N formats",
    )
    a.add_argument("--config", type=_user_path, help="run YAML (default: the embedded default)")
    a.add_argument(
        "--out", type=_user_path, help="output folder (default: OUT/augmented of the config)"
    )
    a.add_argument(
        "--preview",
        type=int,
        default=0,
        metavar="N",
        help="print the first document in N sampled formats",
    )
    a.add_argument("overrides", nargs="*", help="key=value overrides, e.g. augment.cpt.copies=4")
    a.set_defaults(func=cmd_augment)

    im = sub.add_parser(
        "import",
        help="convert PIT JSON, Wiki2023 JSONL, an evidence list or a folder of .txt/.md (+ QA) "
        "to knowlearn's JSONL",
    )
    im.add_argument("--layout", required=True, choices=["pit", "wiki2023", "evidence", "folder"])
    im.add_argument(
        "--out", required=True, help="output folder (documents.jsonl, qa.jsonl, load_report.json)"
    )
    im.add_argument(
        "--documents",
        help="pit: instance JSON of documents; wiki2023: documents JSONL (or JSON array); "
        'evidence: a JSON array (or JSONL) of {"evidence_text", "qa_pairs", "title"}',
    )
    im.add_argument(
        "--mix", help="pit: instance JSON mixing documents and QA (instead of --documents)"
    )
    im.add_argument(
        "--mix-split",
        choices=["train", "test"],
        default="train",
        help="pit: the split of the --mix file's QA pairs (default: train)",
    )
    im.add_argument(
        "--split",
        choices=["train", "test"],
        default="test",
        help="evidence: the split of QA pairs that name none (default: test)",
    )
    im.add_argument("--qa-train", help="QA file whose pairs are used for instruction tuning")
    im.add_argument("--qa-test", help="QA file whose pairs are held out and scored")
    im.add_argument("--folder", help="folder: the .txt/.md documents")
    im.add_argument(
        "--qa",
        help="folder: QA JSONL or JSON array (question, answer, optional entity/document, split)",
    )
    im.set_defaults(func=cmd_import)

    k = sub.add_parser("ask", help="answer questions with a trained model (greedy)")
    k.add_argument(
        "--model",
        required=True,
        type=_user_path,
        help="a run directory (its final model) or a model directory",
    )
    k.add_argument("--max-new-tokens", type=int, default=24)
    k.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own code (off by default)",
    )
    k.add_argument("question", nargs="+", help="one or more questions")
    k.set_defaults(func=cmd_ask, overrides=[])

    e = sub.add_parser(
        "eval", help="score a model directory on a QA JSONL (and memorization on documents)"
    )
    e.add_argument(
        "--model",
        required=True,
        type=_user_path,
        help="a run directory (its final model) or a local Hugging Face causal LM directory",
    )
    e.add_argument("--qa", required=True, type=_user_path, help="QA JSONL")
    e.add_argument("--documents", type=_user_path, help="documents JSONL, for fact memorization")
    e.add_argument(
        "--tokenizer", type=_user_path, help="tokenizer directory (default: the model's)"
    )
    e.add_argument("--batch-size", type=int, default=128)
    e.add_argument("--max-new-tokens", type=int, default=24)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser(
        "export-lm-eval",
        help="write a QA set as an lm-evaluation-harness task (same prompt, greedy, SQuAD EM)",
    )
    x.add_argument(
        "--qa", required=True, type=_user_path, help="QA JSONL, or a run directory (its QA)"
    )
    x.add_argument("--out", required=True, type=_user_path, help="folder for the task files")
    x.add_argument(
        "--split", default="test", choices=["test", "train", "all"], help="questions to export"
    )
    x.add_argument("--task", default="knowlearn_qa", help="the lm-eval task name")
    x.add_argument("--max-new-tokens", type=int, default=24, help="as eval.max_new_tokens")
    x.add_argument("--model", type=_user_path, help="model named in the printed lm_eval command")
    x.set_defaults(func=cmd_export_lm_eval)

    rp = sub.add_parser(
        "report",
        help="report.md, results.json and plots/ of an experiment directory; "
        "report.md and plots/ of one run's directory",
    )
    rp.add_argument(
        "exp_dir",
        metavar="DIR",
        type=_user_path,
        help="an experiment directory (with arms/) or a run directory (knowlearn train's out)",
    )
    rp.set_defaults(func=cmd_report)

    sy = sub.add_parser(
        "synth",
        help="QA pairs and paraphrases written by a local model from your documents (resumes)",
    )
    sy.add_argument("--config", type=_user_path, help="synth YAML (keys: knowlearn.synth.config)")
    sy.add_argument("--documents", type=_user_path, help="documents JSONL (as documents=FILE)")
    sy.add_argument("--model", type=_user_path, help="local model directory (as model.path=DIR)")
    sy.add_argument("--out", type=_user_path, help="output folder (as out=DIR)")
    sy.add_argument("--quiet", action="store_true", help="no progress bar")
    sy.add_argument("overrides", nargs="*", help="key=value, e.g. qa_per_document=5 temperature=0")
    sy.set_defaults(func=cmd_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may come before or after options (`train cpt.lr=1e-3 --quiet x=1`).
    args, extra = parser.parse_known_args(argv)
    bad = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        return args.func(args)
    except KnowlearnError as e:
        # One line, even when a name from the user's data holds a line break.
        msg = str(e).replace("\r", "\\r").replace("\n", "\\n")
        print(f"knowlearn: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("knowlearn: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # Every file is written to a temp file and renamed, so what was there is intact.
        where = f"{e.filename}: " if e.filename else ""
        print(
            f"knowlearn: error: {where}no space left on the device ({e.strerror}); files already "
            "written are intact: free some space and rerun the same command to resume",
            file=sys.stderr,
        )
        return 1
