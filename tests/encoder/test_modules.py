"""Our ModernBERT modules against transformers: the name mapping both ways, and parity.

These tests import nothing of spaCy, so they also run against transformers 5.x in CI's
second environment (`.ci/run`, step "transformers 5.x parity").
"""

import pytest
import torch
from transformers import ModernBertConfig, ModernBertModel

from spacy_modernbert.encoder.attention import AttentionPlan
from spacy_modernbert.encoder.modules import (
    FULL,
    SLIDING,
    EncoderConfig,
    ModernBertEncoder,
    UnsupportedConfigError,
    check_hf_state_dict,
    hf_to_ours_name,
    ours_to_hf_name,
)
from spacy_modernbert.encoder.packed import PackedModernBert

pytestmark = pytest.mark.hf_compat  # no spacy-transformers: also runs against transformers 5.x


def _config(**overrides):
    values = dict(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=4,
        num_attention_heads=2,
        local_attention=8,
        global_attn_every_n_layers=3,
        pad_token_id=3,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
        reference_compile=False,
    )
    values.update(overrides)
    return ModernBertConfig(**values)


def _hf(config, seed=0, biases=False):
    torch.manual_seed(seed)
    model = ModernBertModel(config).eval()
    if biases:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith(".bias") or "norm" in name:
                    param.normal_(
                        0, 0.5
                    )  # HF initialises biases to zero, norms to one: make them count
    return model


def test_name_mapping_is_explicit_and_invertible():
    cases = {
        "embeddings.tok_embeddings.weight": "embeddings.piece_embeddings.weight",
        "embeddings.norm.weight": "embeddings.norm.weight",
        "layers.3.attn_norm.weight": "layers.3.attn_norm.weight",
        "layers.3.attn.Wqkv.weight": "layers.3.attn.qkv.weight",
        "layers.3.attn.Wqkv.bias": "layers.3.attn.qkv.bias",
        "layers.12.attn.Wo.weight": "layers.12.attn.output.weight",
        "layers.0.mlp_norm.bias": "layers.0.mlp_norm.bias",
        "layers.0.mlp.Wi.weight": "layers.0.mlp.input_gate.weight",
        "layers.0.mlp.Wo.weight": "layers.0.mlp.output.weight",
        "final_norm.weight": "final_norm.weight",
    }
    for hf, ours in cases.items():
        assert hf_to_ours_name(hf) == ours
        assert ours_to_hf_name(ours) == hf
    assert hf_to_ours_name("model.embeddings.tok_embeddings.weight") is None
    assert hf_to_ours_name("head.dense.weight") is None


@pytest.mark.parametrize("biases", [False, True])
def test_hf_state_dict_round_trip_is_exact(biases):
    config = _config(attention_bias=biases, mlp_bias=biases, norm_bias=biases)
    hf = _hf(config, biases=biases)
    encoder = ModernBertEncoder.from_hf_model(hf)
    reference = hf.state_dict()
    back = encoder.to_hf_state_dict()
    assert list(back) == list(reference)
    for key, value in reference.items():
        assert torch.equal(back[key], value), key
    # and a ModernBertModel loads it strictly (what a pretraining colleague writes)
    fresh = ModernBertModel(config)
    fresh.load_state_dict(back, strict=True)


def test_strict_loading_names_what_is_wrong():
    config = _config()
    state = _hf(config).state_dict()
    cfg = EncoderConfig.from_hf_config(config)
    assert not check_hf_state_dict(cfg, state)
    del state["layers.2.mlp.Wi.weight"]
    state["layers.1.attn.Wo.weight"] = torch.zeros(3, 3)
    state["pooler.weight"] = torch.zeros(1)
    problems = check_hf_state_dict(cfg, state)
    assert problems.missing == ["layers.2.mlp.Wi.weight"]
    assert problems.unexpected == ["pooler.weight"]
    assert problems.mismatched == [("layers.1.attn.Wo.weight", (3, 3), (32, 32))]
    with pytest.raises(ValueError, match=r"1 missing .*layers\.2\.mlp\.Wi\.weight.*wrong shapes"):
        ModernBertEncoder.from_hf_state_dict(cfg, state)


def test_config_layer_kinds_and_rope_thetas():
    cfg = EncoderConfig.from_hf_config(
        _config(global_rope_theta=160000.0, local_rope_theta=10000.0)
    )
    assert cfg.layer_types == (FULL, SLIDING, SLIDING, FULL)
    assert cfg.theta(FULL) == 160000.0 and cfg.theta(SLIDING) == 10000.0
    assert cfg.half_window == 4
    encoder = ModernBertEncoder(cfg)
    assert [layer.attn.half_window for layer in encoder.layers] == [None, 4, 4, None]
    assert isinstance(encoder.layers[0].attn_norm, torch.nn.Identity)


def test_unsupported_rope_scaling_is_refused():
    config = _config()
    if hasattr(config, "rope_parameters") and isinstance(config.rope_parameters, dict):
        config.rope_parameters[SLIDING] = {
            "rope_type": "linear",
            "factor": 2.0,
            "rope_theta": 10000.0,
        }
    else:
        config.rope_scaling = {"rope_type": "linear", "factor": 2.0}
    with pytest.raises(UnsupportedConfigError, match="rope type 'linear'"):
        EncoderConfig.from_hf_config(config)


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("theta", [10000.0, 20000.0])
def test_padded_and_packed_forward_match_hf(biases, theta):
    """fp32 parity with ModernBertModel on sequences of mixed length, past the window."""
    config = _config(
        attention_bias=biases, mlp_bias=biases, norm_bias=biases, local_rope_theta=theta
    )
    hf = _hf(config, seed=5, biases=biases)
    encoder = ModernBertEncoder.from_hf_model(hf).eval()
    lengths = [40, 23, 5]
    gen = torch.Generator().manual_seed(1)
    seqs = [torch.randint(5, config.vocab_size, (n,), generator=gen) for n in lengths]
    ids = torch.zeros(len(seqs), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = s, 1
    with torch.no_grad():
        reference = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        padded = encoder(ids, mask)
        packed = PackedModernBert(encoder, "sdpa").eval()
        flat_ids = torch.cat(seqs)
        pos = torch.cat([torch.arange(n) for n in lengths])
        groups = [(0, int(flat_ids.shape[0]), lengths)]
        every = torch.arange(flat_ids.shape[0])
        last, states = packed(flat_ids, pos, groups, every, output_hidden_states=True)
        plain = packed(flat_ids, pos, groups, every)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(
            padded[i, :n], reference.last_hidden_state[i, :n], atol=2e-5, rtol=1e-4
        )
    ref_packed = torch.cat([reference.last_hidden_state[i, :n] for i, n in enumerate(lengths)])
    torch.testing.assert_close(plain, ref_packed, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(last, plain, atol=1e-6, rtol=1e-6)  # fused GEMMs off: ULPs apart
    assert len(states) == len(reference.hidden_states) == config.num_hidden_layers + 1
    # the last state is the normed output (transformers 5.x; 4.x gives it before the norm)
    for ours, ref in zip(states[:-1], reference.hidden_states[:-1]):
        ref_rows = torch.cat([ref[i, :n] for i, n in enumerate(lengths)])
        torch.testing.assert_close(ours, ref_rows, atol=2e-5, rtol=1e-4)
    assert states[-1] is last
    assert AttentionPlan(lengths, torch.device("cpu")).total == sum(lengths)


def test_training_mode_gradients_reach_every_weight():
    config = _config(attention_dropout=0.1, mlp_dropout=0.1, embedding_dropout=0.1)
    encoder = ModernBertEncoder.from_hf_model(_hf(config)).train()
    packed = PackedModernBert(encoder, "sdpa", gradient_checkpointing=True).train()
    ids = torch.randint(5, config.vocab_size, (30,))
    out = packed(ids, torch.arange(30), [(0, 30, [30])], torch.arange(30))
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters())
