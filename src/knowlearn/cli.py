"""`knowlearn` command line: demo, generate, train, eval, export-lm-eval, ...

Errors in the user's input print as one line naming the file, line and field, and exit 2.
This module parses; knowlearn.commands runs each command.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable

from knowlearn.commands.common import final_model, renamed_keys_in_one_line, shipped_config
from knowlearn.commands.data import cmd_augment, cmd_generate, cmd_import, cmd_synth
from knowlearn.commands.experiment import cmd_demo, cmd_report, cmd_run
from knowlearn.commands.model import cmd_ask, cmd_eval, cmd_export_lm_eval, cmd_train
from knowlearn.config import EvalConfig
from knowlearn.errors import KnowlearnError

__all__ = ["build_parser", "final_model", "main", "shipped_config"]

Subparsers = argparse._SubParsersAction  # what add_subparsers returns
EVAL = EvalConfig()  # the defaults that eval, ask and export-lm-eval share with a run


def _user_path(text: str) -> str:
    """`~` expanded, as the shell does for a bare word but not for `--out=~/x` or a quoted path."""
    return os.path.expanduser(text)


def _add_demo(sub: Subparsers) -> None:
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


def _add_run(sub: Subparsers) -> None:
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
        help="key=value: out/seeds/parallel/arms.*/only (only=A,B: run those arms, with the "
        "whole experiment's tokenizer), else applied to every arm's base",
    )
    r.set_defaults(func=cmd_run)


def _add_generate(sub: Subparsers) -> None:
    g = sub.add_parser("generate", help="write synthetic biographies (documents.jsonl, qa.jsonl)")
    g.add_argument("--out", required=True, type=_user_path, help="output folder")
    g.add_argument(
        "overrides",
        nargs="*",
        help="data options, e.g. people=200 seed=1 renderings=5 permute=true",
    )
    g.set_defaults(func=cmd_generate)


def _add_train(sub: Subparsers) -> None:
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


def _add_augment(sub: Subparsers) -> None:
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


def _add_import(sub: Subparsers) -> None:
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


def _add_ask(sub: Subparsers) -> None:
    k = sub.add_parser("ask", help="answer questions with a trained model (greedy)")
    k.add_argument(
        "--model",
        required=True,
        type=_user_path,
        help="a run directory (its final model) or a model directory",
    )
    k.add_argument("--max-new-tokens", type=int, default=EVAL.max_new_tokens)
    k.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own code (off by default)",
    )
    k.add_argument("question", nargs="+", help="one or more questions")
    k.set_defaults(func=cmd_ask, overrides=[])


def _add_eval(sub: Subparsers) -> None:
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
    e.add_argument("--batch-size", type=int, default=EVAL.batch_size)
    e.add_argument("--max-new-tokens", type=int, default=EVAL.max_new_tokens)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_eval)


def _add_export_lm_eval(sub: Subparsers) -> None:
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
    x.add_argument(
        "--max-new-tokens", type=int, default=EVAL.max_new_tokens, help="as eval.max_new_tokens"
    )
    x.add_argument("--model", type=_user_path, help="model named in the printed lm_eval command")
    x.set_defaults(func=cmd_export_lm_eval)


def _add_report(sub: Subparsers) -> None:
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


def _add_synth(sub: Subparsers) -> None:
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


# In the order `knowlearn --help` lists them.
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_demo,
    _add_run,
    _add_generate,
    _add_train,
    _add_augment,
    _add_import,
    _add_ask,
    _add_eval,
    _add_export_lm_eval,
    _add_report,
    _add_synth,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="knowlearn",
        description="Teach language models new facts they can recall (CPT -> IT -> QA).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
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
    renamed_keys_in_one_line()
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
