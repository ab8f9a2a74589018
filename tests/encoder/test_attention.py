"""Packed attention (buckets and stream-blocked local layers) against dense per-sequence attention."""

import pytest
import torch

from spacy_modernbert.encoder.attention import SOLO_LENGTH, AttentionPlan, attend
from spacy_modernbert.encoder.packed import Rotary

pytestmark = pytest.mark.hf_compat  # no spacy-transformers: also runs against transformers 5.x

HEADS, DIM = 2, 8
CPU = torch.device("cpu")


def _reference(qkv: torch.Tensor, lengths, half_window):
    """Each sequence on its own: softmax(q k^T / sqrt(d) + band mask) v, float64."""
    out, start = [], 0
    for n in lengths:
        q, k, v = qkv[start : start + n].double().unbind(1)  # (n, H, D)
        scores = torch.einsum("qhd,khd->hqk", q, k) / DIM**0.5
        if half_window is not None:
            pos = torch.arange(n)
            scores = scores.masked_fill(
                (pos[:, None] - pos[None, :]).abs() > half_window, float("-inf")
            )
        out.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), v))
        start += n
    return torch.cat(out).float()


def _attend(qkv, lengths, half_window, backend="sdpa"):
    plan = AttentionPlan(lengths, CPU)
    buf, rows = plan.buffer(half_window, HEADS, DIM, like=qkv)
    buf[rows] = qkv
    return attend(backend, buf, plan, half_window), plan


CASES = {
    # lengths, half window, whether local layers run stream-blocked
    "short mixed, local covers all": ([5, 3, 9, 1], 8, False),
    "short mixed, global": ([5, 3, 9, 1], None, False),
    "long mixed, local (stream)": ([150, 97, 40, 1, 63], 8, True),
    "long mixed, global (buckets)": ([150, 97, 40, 1, 63], None, False),
    "long and short, global (solo + buckets)": ([300, 150, 97, 280, 40, 1, 63], None, False),
    "long and short, local in buckets (solo + buckets)": (
        [300, 150, 97, 280, 40, 1, 63],
        200,
        False,
    ),
    "one long sequence (stream)": ([300], 16, True),
    "block-aligned sequences (stream)": ([64, 64, 64, 64], 4, True),
    "wide window over long sequences (stream)": ([300, 280, 250], 64, True),
}


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
@pytest.mark.parametrize("case", list(CASES))
def test_attend_matches_dense_attention(case, backend):
    lengths, half_window, streamed = CASES[case]
    torch.manual_seed(0)
    qkv = torch.randn(sum(lengths), 3, HEADS, DIM)
    with torch.no_grad():
        out, plan = _attend(qkv, lengths, half_window, backend)
    assert (plan.stream(half_window) is not None) == streamed
    assert out.shape == (sum(lengths), HEADS, DIM)
    torch.testing.assert_close(out, _reference(qkv, lengths, half_window), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "case",
    [
        "long mixed, local (stream)",
        "long mixed, global (buckets)",
        "short mixed, local covers all",
        "long and short, global (solo + buckets)",
    ],
)
def test_attend_gradients_match_dense_attention(case):
    lengths, half_window, _ = CASES[case]
    torch.manual_seed(1)
    qkv = torch.randn(sum(lengths), 3, HEADS, DIM, requires_grad=True)
    weights = torch.randn(sum(lengths), HEADS, DIM)
    (_attend(qkv, lengths, half_window)[0] * weights).sum().backward()
    ours = qkv.grad.clone()
    qkv.grad = None
    (_reference(qkv, lengths, half_window) * weights).sum().backward()
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, qkv.grad, atol=1e-4, rtol=1e-4)


def test_stream_is_chosen_only_where_cheaper():
    plan = AttentionPlan([20] * 30, CPU)  # sentences: padded buckets waste nothing
    assert plan.stream(64) is None
    plan = AttentionPlan([400] * 16, CPU)  # paragraphs: 400 x 400 per sequence vs ~400 x 192
    assert plan.stream(64) is not None and plan.stream(None) is None
    buf, rows = plan.buffer(64, HEADS, DIM, like=torch.empty(0))
    assert rows == slice(64, 64 + 6400) and (buf[:64] == 0).all() and (buf[rows.stop :] == 0).all()


def test_long_sequences_attend_alone_and_short_ones_share_buckets():
    lengths = [SOLO_LENGTH + 40, SOLO_LENGTH, SOLO_LENGTH - 1, 230, 40, 38]
    plan = AttentionPlan(lengths, CPU)
    assert [layout.lengths for _, _, layout in plan.buckets] == [
        [SOLO_LENGTH + 40],
        [SOLO_LENGTH],
        [SOLO_LENGTH - 1, 230],
        [40, 38],
    ]
    # a bucket covers its sequences' packed rows, in order
    bounds = [
        sum(lengths[:i]) for i in (0, 1, 2, 4, 6)
    ]  # each bucket's first sequence, and the end
    assert [(s, e) for s, e, _ in plan.buckets] == list(zip(bounds[:-1], bounds[1:]))
    # a sequence alone needs no padding and no gather
    assert all(layout.grid_index is None for _, _, layout in plan.buckets[:2])


@pytest.mark.parametrize("grad", [False, True])
def test_rotary_matches_hugging_face(grad):
    from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

    torch.manual_seed(2)
    n = 11
    x = torch.randn(n, 2, HEADS, DIM, requires_grad=grad)
    angles = torch.rand(n, DIM // 2) * 6
    emb = torch.cat((angles, angles), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    out = torch.empty(n, 2, HEADS, DIM)
    with torch.set_grad_enabled(grad):
        Rotary(cos, sin).apply(x, out=out)
    # HF layout: (batch, heads, seq, dim) with cos/sin (batch, seq, dim)
    q, k = x.detach().permute(1, 2, 0, 3)  # (H, n, D) each
    ref_q, ref_k = apply_rotary_pos_emb(q[None], k[None], cos[None], sin[None])
    torch.testing.assert_close(out[:, 0], ref_q[0].transpose(0, 1), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out[:, 1], ref_k[0].transpose(0, 1), atol=1e-6, rtol=1e-6)
    assert out.requires_grad == grad
