"""Train one stage: examples and batches, the loop, checkpoints, per-epoch evaluation, sharding."""
