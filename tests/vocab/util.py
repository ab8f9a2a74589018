"""Helpers of the extend-vocab tests: the demo texts, a tokenizer, an MLM base checkpoint."""

import json
from pathlib import Path

import torch

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo"


def demo_texts(split):
    return [
        json.loads(line)["text"]
        for line in (DEMO / f"{split}.jsonl").read_text(encoding="utf8").splitlines()
        if line.strip()
    ]


def tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def mlm_base(tiny_checkpoint, path, tied, shift_decoder=False):
    """The tiny checkpoint as a ModernBertForMaskedLM with a tied or untied decoder (a random
    bias; `shift_decoder`: an untied decoder with other row statistics than the embedding)."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    config = ModernBertConfig.from_pretrained(str(tiny_checkpoint))
    config.tie_word_embeddings = tied
    torch.manual_seed(1)
    model = ModernBertForMaskedLM(config)
    with torch.no_grad():
        model.decoder.bias.normal_()
        if shift_decoder and not tied:
            model.decoder.weight.mul_(3.0).add_(0.5)
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer(tiny_checkpoint).save_pretrained(str(path))
    return path
