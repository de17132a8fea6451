"""Experiments: a base config plus arms (config overrides), times seeds, run in parallel."""
