"""`knowlearn synth` end to end with a real (tiny) writing model trained here.

The fixture trains a tiny Llama to do the two jobs synth asks of an instruct model, on
synthetic biographies: read a document and write Q/A lines about it, and rewrite it (the
target is another rendering of the same person, other templates: a real paraphrase). Like
any writer it is imperfect, and on purpose in two known ways, so that the checks have
something to catch: some of its paraphrase targets leave a sentence (a fact) out, and
some of its questions say "she"/"he" instead of the name. It trains until greedy output on
validation people is mostly right ("as many steps as it takes", about 300). The documents synth reads are
people it never saw, given without facts (as a folder of text files would give them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import SMALL_RUN
from knowlearn.cli import main
from knowlearn.config import ModelConfig
from knowlearn.data import bios, bios_templates
from knowlearn.data.records import Document, QAPair, read_documents, read_qa, write_records
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.synth.generate import generate_batch
from knowlearn.synth.prompts import prompt_token_ids, render

ATTRS = ("birth_date", "birth_city", "university")  # the first three sentences of a rendering
QA_PROMPT = "Questions about {title}:\n{text}\n"
PARAPHRASE_PROMPT = "Rewrite about {title}:\n{text}\n"
TRAIN_PEOPLE, VALIDATION, HELD_OUT = 600, 8, 16
POOL = 30  # names, cities and universities per pool: frequent tokens are learnt to copy fast
BATCH, LR, MAX_STEPS, CHECK_EVERY = 16, 8e-3, 600, 50
LOSSY = 0.3  # share of paraphrase targets missing a sentence
PRONOUN = 0.25  # share of questions saying "she"/"he" instead of the name


def _population(n: int) -> list[bios.Person]:
    """bios people with names, cities and universities from pools of POOL values each
    (unique full names): every value a tiny model must copy is a token it saw often."""
    people = bios.sample_people(n, seed=0)
    rng = random.Random(1)

    def pool(values: set[str]) -> list[str]:
        return sorted(values)[:POOL]

    firsts = {g: pool({p.first for p in people if p.gender == g}) for g in bios.GENDERS}
    pools = {
        a: pool({getattr(p, a) for p in people})
        for a in ("middle", "last", "birth_city", "university")
    }
    seen: set[str] = set()
    out = []
    for p in people:
        while True:
            q = dataclasses.replace(
                p,
                first=rng.choice(firsts[p.gender]),
                **{a: rng.choice(v) for a, v in pools.items()},
            )
            if q.name not in seen:
                break
        seen.add(q.name)
        out.append(q)
    return out


def _three_sentences(doc: Document) -> str:
    """The rendering cut after its university sentence (shorter texts train faster)."""
    end = max(f.end for f in doc.facts if f.attribute in ATTRS)
    cut = doc.text.find(". ", end)
    return doc.text if cut < 0 else doc.text[: cut + 1]


def _qa_lines(person: bios.Person, rng: random.Random) -> str:
    questions = bios_templates.question_templates()
    pronoun = {"female": "she", "male": "he"}[person.gender]
    lines = []
    for a in ATTRS:
        who = pronoun if rng.random() < PRONOUN else person.name
        lines += [f"Q: {questions[a][0].replace('{name}', who)}", f"A: {getattr(person, a)}"]
    return "\n".join(lines)


def _drop_a_sentence(text: str, rng: random.Random) -> str:
    if rng.random() >= LOSSY:
        return text
    sentences = text.split(". ")
    del sentences[rng.randrange(len(sentences))]
    out = ". ".join(sentences)
    return out if out.endswith(".") else out + "."


def _good_enough(model, tok, validation: list[tuple[bios.Person, str]]) -> bool:
    """Greedy on validation people: most questions name the person and are answered from
    the document, and half the paraphrases state the name and every value."""
    prompts = [
        prompt_token_ids(tok, render(t, title=p.name, text=text), chat_template=False)
        for t in (QA_PROMPT, PARAPHRASE_PROMPT)
        for p, text in validation
    ]
    out = generate_batch(model, tok, prompts, [0] * len(prompts), max_new_tokens=96, temperature=0)
    qa, para = out[: len(validation)], out[len(validation) :]
    answered = sum(
        p.name in q and a in [getattr(p, x) for x in ATTRS]
        for (p, _), g in zip(validation, qa, strict=True)
        for q, a in re.findall(r"^Q: (.*)\nA: (.*)$", g.text, re.MULTILINE)
    )
    complete = sum(
        all(v in g.text for v in (p.name, *(getattr(p, x) for x in ATTRS)))
        for (p, _), g in zip(validation, para, strict=True)
    )
    model.train()
    return answered >= 0.8 * len(ATTRS) * len(validation) and complete >= 0.5 * len(validation)


@pytest.fixture(scope="session")
def writer(tmp_path_factory) -> dict:
    """A tiny model directory trained to write Q/A lines and paraphrases, and held-out
    documents (without facts) with their people."""
    t0 = time.process_time()
    rng = random.Random(0)
    people = _population(TRAIN_PEOPLE + VALIDATION + HELD_OUT)
    renders = bios.render_documents(people, 0, renderings=2)
    texts = [
        (_three_sentences(renders[2 * i]), _three_sentences(renders[2 * i + 1]))
        for i in range(len(people))
    ]
    pairs = []  # (prompt, target)
    for person, (a, b) in zip(people[:TRAIN_PEOPLE], texts, strict=False):
        for doc, other in ((a, b), (b, a)):
            pairs.append((render(QA_PROMPT, title=person.name, text=doc), _qa_lines(person, rng)))
            pairs.append(
                (
                    render(PARAPHRASE_PROMPT, title=person.name, text=doc),
                    _drop_a_sentence(other, rng),
                )
            )
    tok = train_tokenizer([p + t for p, t in pairs], vocab_size=2048)
    cfg = ModelConfig(
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        intermediate_size=256,
        max_position_embeddings=256,
    )
    model = build_tiny_model(cfg, tok, seed=0)
    eos, pad = tok.eos_token_id, tok.pad_token_id
    examples = []
    for prompt, target in pairs:
        p = prompt_token_ids(tok, prompt, chat_template=False)  # as synth will tokenize it
        t = tok(target, add_special_tokens=False)["input_ids"] + [eos]
        examples.append((p + t, [-100] * len(p) + t))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.98), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * max(0.1, 1 - s / MAX_STEPS)
    )
    validation = [
        (p, texts[TRAIN_PEOPLE + i][0]) for i, p in enumerate(people[TRAIN_PEOPLE:][:VALIDATION])
    ]
    model.train()
    for step in range(1, MAX_STEPS + 1):
        batch = rng.sample(examples, BATCH)
        width = max(len(x) for x, _ in batch)
        ids = torch.full((BATCH, width), pad)
        labels = torch.full((BATCH, width), -100)
        mask = torch.zeros((BATCH, width), dtype=torch.long)
        for r, (x, y) in enumerate(batch):
            ids[r, : len(x)], labels[r, : len(y)], mask[r, : len(x)] = (
                torch.tensor(x),
                torch.tensor(y),
                1,
            )
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        sched.step()
        if step % CHECK_EVERY == 0 and step >= 200 and _good_enough(model, tok, validation):
            break
    else:
        pytest.fail(f"the writer did not learn its format in {MAX_STEPS} steps")
    path = tmp_path_factory.mktemp("writer")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    start = TRAIN_PEOPLE + VALIDATION
    held = people[start:]
    docs = [Document(f"doc-{i:02d}", p.name, texts[start + i][0]) for i, p in enumerate(held)]
    data = tmp_path_factory.mktemp("docs")
    write_records(data / "documents.jsonl", docs)
    (data / "synth.yaml").write_text(
        yaml.safe_dump(
            {
                "model": {"path": str(path)},
                "documents": str(data / "documents.jsonl"),
                "qa_per_document": 3,
                "paraphrases_per_document": 2,
                "qa_prompt": QA_PROMPT,
                "paraphrase_prompt": PARAPHRASE_PROMPT,
                "max_new_tokens": 96,
                "batch_size": 8,
                "temperature": 0.7,
                "seed": 0,
            }
        )
    )
    print(f"writer: {step} steps, {time.process_time() - t0:.1f} s CPU")
    return {
        "model": path,
        "config": data / "synth.yaml",
        "documents": data / "documents.jsonl",
        "people": {p.name: p for p in held},
        "steps": step,
    }


FILES = (
    "qa.jsonl",
    "paraphrases.jsonl",
    "documents_with_facts.jsonl",
    "dropped.jsonl",
    "summary.json",
)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_synth_writes_checked_qa_and_paraphrases_resumes_after_a_kill_and_feeds_train(
    writer, tmp_path, capsys
):
    out = tmp_path / "synth"
    assert main(["synth", "--quiet", "--config", str(writer["config"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train on them: knowlearn train" in printed
    print(printed)
    summary = json.loads((out / "summary.json").read_text())
    qa_rows, para_rows = _rows(out / "qa.jsonl"), _rows(out / "paraphrases.jsonl")
    dropped = _rows(out / "dropped.jsonl")
    docs = {d.id: d for d in read_documents(out / "documents_with_facts.jsonl")}
    people = writer["people"]
    print("synth summary:", json.dumps(summary))

    # Everything is accounted for, in the summary and line by line in dropped.jsonl.
    qa, pa = summary["qa"], summary["paraphrases"]
    assert (qa["asked"], pa["asked"]) == (16 * 3, 16 * 2)
    for kind, part in (("qa", qa), ("paraphrase", pa)):
        assert part["dropped"] == {
            r: sum(d["kind"] == kind and d["reason"] == r for d in dropped) for r in part["dropped"]
        }
    assert qa["kept"] == len(qa_rows) and pa["kept"] == len(para_rows)
    assert qa["parsed_pairs"] == qa["kept"] + sum(
        n for r, n in qa["dropped"].items() if r not in ("malformed", "unfinished")
    )
    assert pa["kept"] + sum(pa["dropped"].values()) == pa["asked"]
    # ... and in the table printed.
    assert re.search(rf"^kept +{qa['kept']} +{pa['kept']}$", printed, re.MULTILINE), printed
    n = qa["dropped"]["no_entity"]
    assert re.search(rf"^  no_entity +{n} +{pa['dropped']['no_entity']}$", printed, re.M)
    # Mostly well-formed: most questions asked are kept, and were found in the document.
    assert qa["kept"] >= 0.5 * qa["asked"], summary
    assert sum(qa["answer_located"].values()) == qa["kept"] and qa["answer_located"]["none"] == 0
    # The writer's known faults are caught: pronoun questions, paraphrases that lost a fact.
    assert qa["dropped"]["no_entity"] >= 1
    assert pa["dropped"]["lost_fact"] >= 1 and pa["kept"] >= 0.3 * pa["asked"], summary
    assert set(pa["lost_fact_by_document"]) == {
        d["document"] for d in dropped if d["reason"] == "lost_fact"
    }

    # Each kept QA pair: about its document's person, named in the question, and its answer
    # is a fact span of that document, which points at exactly the answer's text.
    assert {q["split"] for q in qa_rows} == {"train", "test"}
    for q in qa_rows:
        doc = docs[q["id"].rsplit("-q", 1)[0]]
        assert q["entity"] == doc.entity and doc.entity in q["question"]
        spans = [f for f in doc.facts if f.value == q["answer"]]
        assert spans and all(doc.text[f.start : f.end] == q["answer"] for f in spans)
    right = sum(q["answer"] in [getattr(people[q["entity"]], a) for a in ATTRS] for q in qa_rows)
    assert right >= 0.8 * len(qa_rows)  # the answers are the people's values, mostly
    # Facts found by QA went into the documents; paraphrases kept state every one of them,
    # and every one dropped for a lost fact misses one.
    assert summary["facts"]["found"] == sum(len(d.facts) for d in docs.values()) > 0
    for p in para_rows:
        src = docs[p["source"]]
        assert all(f.value in p["text"] for f in src.facts) and src.entity in p["text"]
        assert p["text"] != src.text
    for d in dropped:
        if d["reason"] == "lost_fact":
            assert any(f.value not in d["text"] for f in docs[d["document"]].facts)

    # Killed (SIGKILL) after 5 documents were saved, then rerun: the same files, byte for byte.
    resumed = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "knowlearn", "synth", "--quiet", "--config", str(writer["config"])]
    env = {**os.environ, "KNOWLEARN_KILL_AT": "synth_document:5"}
    killed = subprocess.run([*cmd, "--out", str(resumed)], env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert len(list((resumed / "generations").glob("*.json"))) == 5
    assert not (resumed / "qa.jsonl").exists()
    assert main(["synth", "--quiet", "--config", str(writer["config"]), "--out", str(resumed)]) == 0
    assert "(11 generated, 5 reused" in capsys.readouterr().out
    for name in FILES:
        assert (resumed / name).read_bytes() == (out / name).read_bytes(), name
    # A generation record cut short (a disk full mid-write, an edit) is generated again.
    record = sorted((resumed / "generations").glob("*.json"))[3]
    record.write_bytes(record.read_bytes()[:40])
    assert main(["synth", "--quiet", "--config", str(writer["config"]), "--out", str(resumed)]) == 0
    assert "(1 generated, 15 reused" in capsys.readouterr().out
    for name in FILES:
        assert (resumed / name).read_bytes() == (out / name).read_bytes(), name

    # A check changed alone rewrites the outputs from the saved generations, generating nothing.
    assert (
        main(
            [
                "synth",
                "--quiet",
                "--config",
                str(writer["config"]),
                "--out",
                str(resumed),
                "max_answer_words=1",
            ]
        )
        == 0
    )
    assert "(0 generated, 16 reused" in capsys.readouterr().out
    again = json.loads((resumed / "summary.json").read_text())
    assert again["qa"]["dropped"]["long_answer"] > 0 and again["qa"]["kept"] < qa["kept"]

    # The files feed `knowlearn train` as they are.
    run = tmp_path / "run"
    args = [
        f"data.documents={out / 'documents_with_facts.jsonl'}",
        f"data.qa={out / 'qa.jsonl'}",
        f"augment.paraphrases={out / 'paraphrases.jsonl'}",
    ]
    assert main(["train", "--quiet", f"out={run}", *args, *SMALL_RUN[1:]]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["paraphrases"]["kept"] == len(para_rows)
    assert results["paraphrases"]["dropped"] == 0
    assert results["counts"]["documents"] == 16 and results["counts"]["qa"] == len(qa_rows)
    assert len(read_qa(out / "qa.jsonl")) == len(qa_rows)


def test_readme_sequence_from_a_folder_of_text_files(writer, tmp_path, capsys):
    """The README's "from a folder of .txt files" sequence, command by command: import the
    folder, synth QA and paraphrases with a local model, train that local model on them,
    and read a report with held-out EM and what the model forgot."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for d in read_documents(writer["documents"]):
        (folder / f"{d.entity}.txt").write_text(d.text + "\n", encoding="utf-8")
    data, synth, run = tmp_path / "data", tmp_path / "synth", tmp_path / "run"

    assert main(["import", "--layout", "folder", "--folder", str(folder), "--out", str(data)]) == 0
    assert "knowlearn synth --documents" in capsys.readouterr().out  # no QA: the next step
    imported = read_documents(data / "documents.jsonl")
    assert len(imported) == 16 and not any(d.facts for d in imported)

    args = ["--config", str(writer["config"]), "--documents", str(data / "documents.jsonl")]
    assert (
        main(["synth", "--quiet", *args, "--model", str(writer["model"]), "--out", str(synth)]) == 0
    )
    qa = read_qa(synth / "qa.jsonl")
    assert {q.split for q in qa} == {"train", "test"}
    assert len(_rows(synth / "paraphrases.jsonl")) > 0

    # What the model should not forget: questions (here about people it was trained to
    # write about; it answers none, so retention counts 0 of them) and untrained text.
    retention = tmp_path / "known.jsonl"
    people = list(writer["people"].values())[:2]
    write_records(
        retention,
        [
            QAPair(f"k{i}", p.name, "birth_city", f"Where was {p.name} born?", p.birth_city, "test")
            for i, p in enumerate(people)
        ],
    )
    reference = tmp_path / "reference.txt"
    others = bios.render_documents(bios.sample_people(3, seed=99), 0)  # nobody trains on them
    reference.write_text("\n\n".join(d.text for d in others), encoding="utf-8")
    train = [
        "train",
        "--quiet",
        f"out={run}",
        f"model.path={writer['model']}",
        f"data.documents={synth / 'documents_with_facts.jsonl'}",
        f"data.qa={synth / 'qa.jsonl'}",
        f"augment.paraphrases={synth / 'paraphrases.jsonl'}",
        f"data.retention={retention}",
        f"data.reference={reference}",
        "cpt.epochs=2",
        "it.epochs=1",
        "cpt.batch_size=8",
    ]
    assert main(train) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["retention"]["qa"]["asked"] == 2
    assert results["retention"]["reference"]["ppl_after"] > 0
    capsys.readouterr()

    assert main(["report", str(run)]) == 0
    printed = capsys.readouterr().out
    report = (run / "report.md").read_text()
    n_test = results["qa"]["test"]["all"]["n"]
    em = results["qa"]["test"]["all"]["em"]
    assert f"| held-out QA exact match ({n_test:,} questions) | {em:.1f} % |" in report
    assert "## What the model forgot" in report and "Reference perplexity" in report
    assert "answered none of its 2 questions" in report
    assert (run / "plots" / "training_curves.png").is_file()
    assert not (run / "plots" / "qa_em.png").exists()  # one bar: no plot
    assert report.split("\n## Plots")[0].rstrip() in printed
