"""Which formatting transforms change the tokens of a person's name?

A question asks about " Aiko Wagner"; a transform that puts markup right before the name
("**Aiko", "[Aiko", "\\nAiko") makes the document spell it with other tokens. For every
transform alone, the share of name occurrences whose tokens differ from the question's, on
a run's documents with the run's tokenizer, as formatted and with
`augment.cpt.space_before_sentences`. Writes a markdown table to stdout.

    python scripts/entity_tokens_by_transform.py RUN_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from pathlib import Path

from transformers import AutoTokenizer

from knowlearn.augment.transforms import FAMILIES, TRANSFORMS, augment_document
from knowlearn.data.records import read_documents
from knowlearn.eval.tokens import entity_token_mismatch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "run_dir", type=Path, help="a run directory (data/documents.jsonl, a tokenizer)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    docs = read_documents(args.run_dir / "data" / "documents.jsonl")
    tok_dir = next(p for p in (args.run_dir / "tokenizer", args.run_dir / "init") if p.is_dir())
    tok = AutoTokenizer.from_pretrained(tok_dir)
    family = {name: fam for fam, names in FAMILIES.items() for name in names}

    def mismatch(name: str, spaced: bool) -> dict:
        rng = random.Random(f"{args.seed}/{name}")
        formatted = [
            replace(augment_document(d, rng, [name], 1, False, 1, spaced=spaced)[0], id=d.id)
            for d in docs
        ]
        return entity_token_mismatch(tok, formatted)

    print(f"Documents: {len(docs)} from {args.run_dir}; tokenizer: {tok_dir}\n")
    print(
        "| transform | family | name occurrences | tokens differ from the question's "
        "| with space_before_sentences | e.g. |"
    )
    print("|---|---|---|---|---|---|")
    plain = entity_token_mismatch(tok, docs)
    print(f"| none (plain document) | | {plain['occurrences']} | {plain['share']:.1f}% | | |")
    for name in TRANSFORMS:
        r, s = mismatch(name, False), mismatch(name, True)
        example = " ".join(r["examples"][0][1]) if r["examples"] else ""
        print(
            f"| {name} | {family[name]} | {r['occurrences']} | {r['share']:.1f}% "
            f"| {s['share']:.1f}% | `{example}` |"
        )


if __name__ == "__main__":
    main()
