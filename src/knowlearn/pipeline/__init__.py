"""One run, end to end: data -> tokenizer -> model -> CPT -> IT -> evaluation.

Every stage writes into the run directory and is skipped when its output is already
there, so re-running a killed run only does what is missing.

    runs/NAME/config.yaml       the resolved config
    runs/NAME/data/             documents.jsonl, qa.jsonl (and people.jsonl for biographies)
    runs/NAME/tokenizer/        trained on the run's corpus (tiny default only)
    runs/NAME/init/             the random-init model (tiny default only)
    runs/NAME/cpt/, it/         model/ (save_pretrained), metrics.jsonl, done.json
    runs/NAME/results.json      QA metrics per split and attribute, memorization, stage costs
    runs/NAME/predictions.jsonl every question with its greedy answer

Modules, in the order a run uses them:

    checks.py    every input checked before anything is written
    rundir.py    the run directory's lock and config check; the content-addressed stage cache
    corpus.py    the documents and QA the run reads, and the training sets built from them
    start.py     the model CPT starts from (tiny default or user model; the base-model stage)
    stages.py    the stages of a pipeline (standard, pit, mix) as StageSpecs, with cache keys
    evaluate.py  QA, memorization, probe, errors, retention of a trained model
    run.py       one run, orchestrated: `run(cfg)` -> results.json
"""
