"""Models: the tiny default built on the spot, or any local Hugging Face causal LM."""

from knowlearn.models.load import load_model, load_tokenizer
from knowlearn.models.tiny import build_tiny_model, train_tokenizer

__all__ = ["build_tiny_model", "load_model", "load_tokenizer", "train_tokenizer"]
