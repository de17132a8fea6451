"""Models: `knowlearn train`, `ask`, `eval` and `export-lm-eval`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from knowlearn.commands.common import at_least_one, final_model, quiet_libraries
from knowlearn.errors import KnowlearnError


def cmd_train(args: argparse.Namespace) -> int:
    """One run into its directory; the summary row and where results.json is."""
    from knowlearn.augment import TRANSFORMS
    from knowlearn.config import load_config
    from knowlearn.io import dumps

    # The config first: a typo is reported before torch and transformers load (seconds).
    cfg = load_config(
        args.config,
        [f"out={args.out}", *args.overrides] if args.out else args.overrides,
        transforms=TRANSFORMS,
    )
    quiet_libraries()
    from knowlearn.pipeline.run import run
    from knowlearn.results import HEADLINE, summary_row

    results = run(cfg, progress=not args.quiet)
    row = summary_row(results)
    print(dumps({k: round(row[k], 2) for k in HEADLINE}))
    print(f"results: {Path(cfg.out) / 'results.json'}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Greedy answer to one question, in the QA format the model was instruction-tuned on."""
    at_least_one(args.max_new_tokens, "--max-new-tokens")
    if any(not q.strip() for q in args.question):
        raise KnowlearnError("a question is empty", field="question")
    path = final_model(Path(args.model))
    quiet_libraries()
    from knowlearn.data.prompts import prompt_ids
    from knowlearn.eval.qa import greedy_generate
    from knowlearn.models.load import load_model, load_tokenizer

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
    """QA scores (and memorization) of any model directory, outside a run."""
    from knowlearn.data.records import read_documents, read_qa
    from knowlearn.io import dumps

    at_least_one(args.batch_size, "--batch-size")
    at_least_one(args.max_new_tokens, "--max-new-tokens")
    qa = read_qa(args.qa)
    docs = read_documents(args.documents) if args.documents else None
    path = final_model(Path(args.model))
    quiet_libraries()
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
    from knowlearn.augment import TRANSFORMS
    from knowlearn.config import load_config

    qa = load_config(path / "config.yaml", transforms=TRANSFORMS).data.qa
    if qa is None:
        raise KnowlearnError("a run directory without QA yet (no data/qa.jsonl)", file=path)
    return Path(qa)


def cmd_export_lm_eval(args: argparse.Namespace) -> int:
    """The QA set as an lm-evaluation-harness task (YAML + JSONL + utils.py)."""
    from knowlearn.data.records import read_qa
    from knowlearn.eval.lm_eval_export import check_task_name, export_lm_eval, lm_eval_command

    at_least_one(args.max_new_tokens, "--max-new-tokens")
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
