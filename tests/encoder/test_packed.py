"""The packed forward: its inference path (reused buffers) and autograd path agree with HF."""

import pytest
import torch
from transformers import ModernBertModel

from spacy_modernbert.encoder.attention import AttentionPlan
from spacy_modernbert.encoder.modules import ModernBertEncoder
from spacy_modernbert.encoder.packed import PackedModernBert, Workspace

pytestmark = pytest.mark.hf_compat  # no spacy-transformers: also runs against transformers 5.x


@pytest.fixture(scope="module")
def hf(tiny_checkpoint):
    return ModernBertModel.from_pretrained(str(tiny_checkpoint), attn_implementation="sdpa").eval()


def _inputs(lengths, vocab, seed=0):
    gen = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(5, vocab, (n,), generator=gen) for n in lengths]
    ids = torch.cat(seqs)
    pos = torch.cat([torch.arange(n) for n in lengths])
    return seqs, ids, pos, [(0, int(ids.shape[0]), list(lengths))]


@pytest.mark.parametrize("lengths", [[300, 170, 45, 3], [12, 9, 9, 2]])
def test_inference_and_autograd_paths_match_hf(hf, lengths):
    half = hf.config.local_attention // 2
    assert (AttentionPlan(lengths, torch.device("cpu")).stream(half) is not None) == (
        max(lengths) > 100
    )
    seqs, ids, pos, groups = _inputs(lengths, hf.config.vocab_size)
    model = PackedModernBert(ModernBertEncoder.from_hf_model(hf), "sdpa").eval()
    every = torch.arange(ids.shape[0])
    with torch.no_grad():
        inference = model(ids, pos, groups, every)
        refs = torch.cat([hf(input_ids=s[None]).last_hidden_state[0] for s in seqs])
    with torch.enable_grad():
        trained = model(ids, pos, groups, every)
        trained.sum().backward()
    assert trained.requires_grad
    torch.testing.assert_close(inference, refs, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(trained.detach(), refs, atol=2e-5, rtol=1e-4)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) == len(list(model.parameters())) and all(
        torch.isfinite(g).all() for g in grads
    )


def test_workspace_reuses_one_storage():
    ws = Workspace()
    big = ws.take(10, 30, torch.empty(0))
    small = ws.take(4, 5, torch.empty(0))
    assert small.is_contiguous() and small.shape == (4, 5)
    assert small.data_ptr() == big.data_ptr()
    linear = torch.nn.Linear(6, 3)
    x = torch.randn(7, 6)
    with torch.no_grad():
        torch.testing.assert_close(ws.linear(x, linear.weight, linear.bias), linear(x))
        torch.testing.assert_close(
            ws.linear(x, linear.weight, None, slot=1), linear(x) - linear.bias
        )
        hidden = torch.randn(7, 3)
        expected = hidden + linear(x)
        assert ws.add_linear_(hidden, linear, x) is hidden
        torch.testing.assert_close(hidden, expected)


def test_checkpoints_with_biases_match_hf(tiny_checkpoint):
    from transformers import ModernBertConfig

    config = ModernBertConfig.from_pretrained(
        str(tiny_checkpoint), attention_bias=True, mlp_bias=True
    )
    torch.manual_seed(3)
    hf = ModernBertModel(config).eval()
    with torch.no_grad():
        for name, param in hf.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0, 0.5)  # HF initialises biases to zero: make them count
    lengths = [150, 60, 7]
    seqs, ids, pos, groups = _inputs(lengths, config.vocab_size, seed=4)
    with torch.no_grad():
        ours = PackedModernBert(ModernBertEncoder.from_hf_model(hf), "sdpa").eval()(
            ids, pos, groups, torch.arange(ids.shape[0])
        )
        refs = torch.cat([hf(input_ids=s[None]).last_hidden_state[0] for s in seqs])
    torch.testing.assert_close(ours, refs, atol=2e-5, rtol=1e-4)
