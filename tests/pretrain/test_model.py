"""The masked LM: parity with Hugging Face's ModernBertForMaskedLM, head kept or initialized."""

import pytest
import torch

from spacy_modernbert.encoder.checkpoint import CheckpointError
from spacy_modernbert.pretrain.model import encoder_state_dict, load_masked_lm, pack


def test_loss_matches_hf_masked_lm(tiny_checkpoint):
    from transformers import ModernBertForMaskedLM

    model, tok, _, initialized = load_masked_lm(tiny_checkpoint)
    assert sorted(initialized) == ["decoder.bias", "head.dense.weight", "head.norm.weight"]
    model.eval()
    texts = [
        "The api gateway returned errors for seven minutes.",
        "Maria joined the payments group.",
        "x",
    ]
    windows = [tok(t)["input_ids"] for t in texts]
    ids, pos, lengths = pack(windows)
    torch.manual_seed(0)
    labels = torch.where(torch.rand(ids.shape) < 0.4, ids, torch.full_like(ids, -100))
    labels[0] = ids[0] if labels.ne(-100).sum() == 0 else labels[0]
    rows = labels.ne(-100).nonzero().flatten()
    with torch.no_grad():
        ours = model(ids, pos, lengths, rows, labels[rows]) / len(rows)
    hf = ModernBertForMaskedLM(model.config).eval()
    hf.load_state_dict(model.hf_state_dict())
    longest = max(lengths)
    padded = torch.full((len(windows), longest), tok.pad_token_id)
    padded_labels = torch.full((len(windows), longest), -100)
    attention = torch.zeros((len(windows), longest), dtype=torch.long)
    start = 0
    for i, n in enumerate(lengths):
        padded[i, :n], padded_labels[i, :n], attention[i, :n] = (
            ids[start : start + n],
            labels[start : start + n],
            1,
        )
        start += n
    with torch.no_grad():
        theirs = hf(input_ids=padded, attention_mask=attention, labels=padded_labels).loss
    assert torch.allclose(ours, theirs, atol=1e-5), (float(ours), float(theirs))


def test_head_is_kept_from_a_masked_lm_checkpoint(tiny_checkpoint, tmp_path):
    model, tok, shell, _ = load_masked_lm(tiny_checkpoint)
    with torch.no_grad():
        model.head.dense.weight.add_(1.0)
    shell.save_pretrained(str(tmp_path), state_dict=model.hf_state_dict())
    tok.save_pretrained(str(tmp_path))
    again, _, _, initialized = load_masked_lm(tmp_path)
    assert initialized == []
    assert torch.equal(again.head.dense.weight, model.head.dense.weight)
    assert (
        again.decoder.weight
        is encoder_state_dict(again.encoder)["embeddings.tok_embeddings.weight"]
    )


def test_non_modernbert_base_is_refused(tmp_path):
    from transformers import BertConfig

    BertConfig(
        vocab_size=10,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
    ).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="'bert' model, not ModernBERT"):
        load_masked_lm(tmp_path)
