"""The embedded default: a byte-level BPE tokenizer trained on the run's own corpus and a
random-init causal LM from a `transformers` config.

Both are saved with `save_pretrained`, so every later stage loads them exactly like a
downloaded Qwen2 or LLaMA-2 checkpoint: one code path for tiny and real models.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from knowlearn.config import ModelConfig

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> PreTrainedTokenizerBase:
    """Byte-level BPE (GPT-2 style, so any text is encodable) that prepends <s> like LLaMA."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )


def tiny_config(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """The transformers config of the tiny model (its vocabulary: the tokenizer's)."""
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config_cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}[cfg.architecture]
    return config_cls(**common)


def build_tiny_model(
    cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, seed: int
) -> PreTrainedModel:
    """Random-init Llama (or Qwen2) of the configured shape; the seed fixes the init."""
    model_cls = {"llama": LlamaForCausalLM, "qwen2": Qwen2ForCausalLM}[cfg.architecture]
    torch.manual_seed(seed)
    model = model_cls(tiny_config(cfg, tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model
