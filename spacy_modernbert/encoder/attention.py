"""Attention over packed (unpadded) sequences: sdpa | eager | varlen (CUDA).

The packed forward keeps every activation as `(total_tokens, ...)` with no padding. For
attention, `sdpa` and `eager` scatter q/k/v into a padded `(batch, heads, longest, dim)`
layout for one micro-batch of length-sorted sequences and gather the result back;
`varlen` (CUDA, PyTorch >= 2.10's `torch.nn.attention.varlen.varlen_attn`) attends over
the packed tensors directly with `cu_seqlens`, with ModernBERT's sliding window as the
kernel's `window_size`, and never pads at all.

Long sequences in local layers use blocked sliding-window attention: queries in blocks
of `2 * half_window` attend to their block widened by `half_window` on each side, so the
cost is O(L * window) instead of O(L^2); the softmax runs over exactly the same keys as
the full masked attention.

Masks: keys beyond a sequence's length are masked; a local layer additionally masks keys
further than `half_window` away (as ModernBERT's `local_attention // 2`). Padded *query*
rows attend to everything, so no row is fully masked (no NaN, even in backward).
"""
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

_VARLEN = None


def varlen_available(device: torch.device) -> bool:
    """True where the unpadded varlen kernel can run: a CUDA device and PyTorch that ships it."""
    global _VARLEN
    if device.type != "cuda":
        return False
    if _VARLEN is None:
        try:
            from torch.nn.attention.varlen import varlen_attn

            _VARLEN = varlen_attn
        except ImportError:
            _VARLEN = False
    return _VARLEN is not False


def resolve_backend(requested: str, device: torch.device) -> str:
    """The backend that will actually run; 'varlen' off CUDA falls back to 'sdpa' with a warning."""
    if requested == "varlen" and not varlen_available(device):
        warnings.warn(
            f"attn_implementation='varlen' needs a CUDA device and torch.nn.attention.varlen "
            f"(running on '{device.type}'); falling back to 'sdpa'.",
            stacklevel=2,
        )
        return "sdpa"
    return requested


# A sequence joins a padded attention bucket while it is at least this fraction of the
# bucket's longest sequence: attention pads little, while the linear layers of the whole
# micro-batch still run as one packed matmul.
BUCKET_FILL = 0.8


class AttentionPlan:
    """One micro-batch's packed sequences: cu_seqlens for varlen, padded buckets otherwise."""

    def __init__(self, lengths: List[int], device: torch.device):
        self.longest = max(lengths)
        self.cu_seqlens = F.pad(torch.tensor(lengths).cumsum(0), (1, 0)).to(torch.int32).to(device)
        self.buckets = []
        start = 0
        while start < len(lengths):
            end = start + 1
            while end < len(lengths) and BUCKET_FILL * lengths[start] <= lengths[end] <= lengths[start]:
                end += 1
            first, last = int(self.cu_seqlens[start]), int(self.cu_seqlens[end])
            self.buckets.append((first, last, PackedLayout(lengths[start:end], device)))
            start = end


@dataclass
class PackedLayout:
    """Where one micro-batch's packed tokens sit in a padded (batch, longest) grid."""

    lengths: List[int]
    device: torch.device
    cu_seqlens: torch.Tensor = field(init=False)
    index: Optional[torch.Tensor] = field(init=False)
    _masks: Dict[object, Optional[torch.Tensor]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        lengths = torch.tensor(self.lengths, dtype=torch.int64)
        self.batch = len(self.lengths)
        self.longest = max(self.lengths)
        self.ragged = min(self.lengths) != self.longest
        self.cu_seqlens = F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32).to(self.device)
        starts = self.cu_seqlens.cpu()[:-1].to(torch.int64)
        if self.ragged:
            rows = torch.repeat_interleave(torch.arange(self.batch), lengths)
            cols = torch.arange(int(lengths.sum())) - torch.repeat_interleave(starts, lengths)
            self.index = (rows * self.longest + cols).to(self.device)
            valid = torch.arange(self.longest)[None, :] < lengths[:, None]
            self.valid = valid.to(self.device)
            # padded grid cell -> packed row; padding cells repeat a real row of their own
            # sequence (any finite value: they are masked as keys, discarded as queries)
            grid = starts[:, None] + torch.minimum(torch.arange(self.longest)[None, :], lengths[:, None] - 1)
            self.grid_index = grid.reshape(-1).to(self.device)
        else:
            self.index = None
            self.valid = None
            self.grid_index = None
        self._lengths_cpu = lengths
        self._starts_cpu = starts

    def mask(self, half_window: Optional[int]) -> Optional[torch.Tensor]:
        """Boolean attention mask (True = attend), broadcastable to (B, H, L, L); None = all."""
        if half_window is not None and self.longest - 1 <= half_window:
            half_window = None  # the window covers every sequence whole
        if half_window not in self._masks:
            self._masks[half_window] = self._build_mask(half_window)
        return self._masks[half_window]

    def _build_mask(self, half_window: Optional[int]) -> Optional[torch.Tensor]:
        if half_window is None and not self.ragged:
            return None
        pos = torch.arange(self.longest, device=self.device)
        band = torch.ones(self.longest, self.longest, dtype=torch.bool, device=self.device)
        if half_window is not None:
            band = (pos[:, None] - pos[None, :]).abs() <= half_window
        if not self.ragged:
            return band[None, None]
        mask = band[None, None] & self.valid[:, None, None, :]
        return mask | ~self.valid[:, None, :, None]

    def block_mask(self, half_window: int) -> torch.Tensor:
        """Mask for blocked local attention: (B * n_blocks, 1, block, block + 2 * half_window)."""
        key = ("blocks", half_window)
        if key not in self._masks:
            block = 2 * half_window
            n_blocks = -(-self.longest // block)
            span = block + 2 * half_window
            lengths = torch.tensor(self.lengths, device=self.device)
            pos = torch.arange(-half_window, n_blocks * block + half_window, device=self.device)
            key_valid = (pos[None, :] >= 0) & (pos[None, :] < lengths[:, None])
            key_valid = key_valid.unfold(1, span, block)  # (B, n_blocks, span)
            a = torch.arange(block, device=self.device)[:, None]
            c = torch.arange(span, device=self.device)[None, :]
            band = (c - half_window - a).abs() <= half_window  # (block, span)
            qpos = torch.arange(n_blocks * block, device=self.device)
            query_pad = (qpos[None, :] >= lengths[:, None]).view(self.batch, n_blocks, block, 1)
            mask = (band[None, None] & key_valid[:, :, None, :]) | query_pad
            self._masks[key] = mask.reshape(self.batch * n_blocks, 1, block, span)
        return self._masks[key]

    def blocks(self, half_window: int) -> Tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather indices of blocked local attention, built once per layout.

        Returns (n_blocks, span, query rows (B * n_blocks * block,), key rows
        (B * n_blocks * span,), output rows (T,)): packed row of every query / key cell of
        every block, and the cell of every packed token in the (B * n_blocks * block) output.
        Cells outside a sequence repeat one of its real rows (masked / discarded).
        """
        key = ("index", half_window)
        if key not in self._masks:
            block = 2 * half_window
            n_blocks = -(-self.longest // block)
            span = block + 2 * half_window
            lengths, starts = self._lengths_cpu, self._starts_cpu
            qpos = torch.arange(n_blocks * block)[None, :]
            q_rows = starts[:, None] + torch.minimum(qpos, lengths[:, None] - 1)
            kpos = (torch.arange(n_blocks)[:, None] * block - half_window + torch.arange(span)[None, :]).reshape(1, -1)
            k_rows = starts[:, None] + kpos.clamp(min=0).minimum(lengths[:, None] - 1)
            seq = torch.repeat_interleave(torch.arange(self.batch), lengths)
            pos = torch.arange(int(lengths.sum())) - torch.repeat_interleave(starts, lengths)
            out_rows = seq * (n_blocks * block) + pos
            self._masks[key] = (
                n_blocks, span, q_rows.reshape(-1).to(self.device), k_rows.reshape(-1).to(self.device),
                out_rows.to(self.device),
            )
        return self._masks[key]

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(T, H, D) packed -> (B, H, L, D) padded (a strided view of one gather)."""
        heads, dim = x.shape[1], x.shape[2]
        grid = x if self.grid_index is None else x.index_select(0, self.grid_index)
        return grid.view(self.batch, self.longest, heads, dim).transpose(1, 2)

    def unpad(self, y: torch.Tensor) -> torch.Tensor:
        """(B, H, L, D) padded -> (T, H, D) packed."""
        heads, dim = y.shape[1], y.shape[3]
        flat = y.transpose(1, 2).reshape(self.batch * self.longest, heads, dim)
        return flat if self.index is None else flat.index_select(0, self.index)


def attend(
    backend: str,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    plan: AttentionPlan,
    half_window: Optional[int],
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Multi-head attention of packed (T, H, D) q/k/v within each sequence of `plan`."""
    if backend == "varlen":
        window = (half_window, half_window) if half_window is not None else (-1, -1)
        dtype = q.dtype
        if dtype not in (torch.float16, torch.bfloat16):  # flash kernels: half precision only
            q, k, v = q.to(torch.bfloat16), k.to(torch.bfloat16), v.to(torch.bfloat16)
        out = _VARLEN(
            q, k, v, plan.cu_seqlens, plan.cu_seqlens, plan.longest, plan.longest,
            window_size=window,
        )
        return out.to(dtype)
    core = _sdpa if backend == "sdpa" else _eager
    outputs = [
        _attend_padded(core, q[s:e], k[s:e], v[s:e], layout, half_window, dropout_p)
        for s, e, layout in plan.buckets
    ]
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)


def _attend_padded(core, q, k, v, layout: PackedLayout, half_window: Optional[int], dropout_p: float) -> torch.Tensor:
    if half_window is not None and half_window > 0 and layout.longest > 4 * half_window:
        return _blocked_local(core, q, k, v, layout, half_window, dropout_p)
    out = core(layout.pad(q), layout.pad(k), layout.pad(v), layout.mask(half_window), dropout_p)
    return layout.unpad(out)


def _sdpa(q, k, v, mask, dropout_p):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


def _eager(q, k, v, mask, dropout_p):
    scores = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0)
    return torch.matmul(probs, v)


def _blocked_local(core, q, k, v, layout: PackedLayout, half_window: int, dropout_p: float) -> torch.Tensor:
    """Sliding-window attention in blocks: packed (T, H, D) in and out, O(L * window).

    Queries in blocks of `2 * half_window` attend to their block widened by `half_window`
    on each side; q/k/v blocks are gathered straight from the packed tensors (one
    index_select each) and the output is gathered straight back.
    """
    heads, dim = q.shape[1], q.shape[2]
    block = 2 * half_window
    n_blocks, span, q_rows, k_rows, out_rows = layout.blocks(half_window)
    n = layout.batch * n_blocks

    def gather(x: torch.Tensor, rows: torch.Tensor, size: int) -> torch.Tensor:
        return x.index_select(0, rows).view(n, size, heads, dim).transpose(1, 2)

    out = core(gather(q, q_rows, block), gather(k, k_rows, span), gather(v, k_rows, span),
               layout.block_mask(half_window), dropout_p)
    return out.transpose(1, 2).reshape(n * block, heads, dim).index_select(0, out_rows)
