"""`knowlearn synth`: QA pairs and paraphrases written by a local instruct model from the
user's documents, checked (answers located in the document as fact spans; paraphrases
that lose a fact dropped) and written in the files `knowlearn train` reads.

prompts.py: templates and prompt tokens; generate.py: batched, seeded generation;
checks.py: parsing and every reason to drop; store.py: per-document records (resume),
the split and the output files; run.py: the command; summary.py: what it prints;
config.py: its options.
"""
