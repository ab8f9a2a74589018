"""Attention over packed (unpadded) sequences: sdpa | eager | varlen (CUDA).

The packed forward keeps every activation as `(total_tokens, ...)` with no padding. Each
layer writes its rotary-embedded q, k and v into one `(rows, 3, heads, dim)` buffer that
`AttentionPlan.buffer` hands out, and `attend` reads them from there:

* `varlen` (CUDA, PyTorch >= 2.10's `torch.nn.attention.varlen.varlen_attn`) attends over
  the packed tensors directly with `cu_seqlens`, with ModernBERT's sliding window as the
  kernel's `window_size`, and never pads at all.
* `sdpa` / `eager`, global layers (and local layers over short sequences): a sequence of at
  least `SOLO_LENGTH` tokens attends on its own, straight from strided views of the buffer
  (no padding, no gather); shorter sequences are gathered into a padded
  `(batch, heads, longest, dim)` grid per bucket of similar lengths (one gather for q, k and
  v together) and gathered back, so a few long kernel calls serve many short sequences.
* `sdpa` / `eager`, local layers over long sequences: *stream-blocked* sliding-window
  attention. The packed token stream, with a zero halo of `half_window` rows on each side,
  is cut into blocks of queries; each block attends to its own rows widened by the halo
  (strided views of the buffer: nothing is gathered). A mask keeps every query inside its
  own sequence and its +-half_window band, so the softmax runs over exactly the keys of
  ModernBERT's masked attention, at O(tokens * window) cost and with no per-sequence padding.

Masks are additive (0 / dtype minimum), built once per micro-batch and dtype. Keys beyond a
sequence's length are masked; padded *query* rows (discarded) always keep a key, so no row
is fully masked (no NaN, even in backward).
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
# Sequences at least this long attend alone: one kernel call per sequence costs little next
# to its attention, and saves the padding and the two gathers a shared bucket needs.
SOLO_LENGTH = 256
# Queries per block of stream-blocked local attention (at least the half window): each
# block attends to block + 2 * half_window keys, so small blocks waste little on the band's
# corners, while blocks much smaller than this run the attention kernel inefficiently.
MIN_STREAM_BLOCK = 32


def additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean mask (True = attend) -> additive mask: 0 where allowed, dtype's minimum elsewhere."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
        ~allowed, torch.finfo(dtype).min
    )


class AttentionPlan:
    """One micro-batch's packed sequences: cu_seqlens, padded buckets, and the local stream."""

    def __init__(self, lengths: List[int], device: torch.device):
        self.lengths = list(lengths)
        self.total = sum(self.lengths)
        self.longest = max(self.lengths)
        self.device = device
        self.cu_seqlens = (
            F.pad(torch.tensor(self.lengths).cumsum(0), (1, 0)).to(torch.int32).to(device)
        )
        self.buckets: List[Tuple[int, int, PackedLayout]] = []
        start = 0
        while start < len(self.lengths):
            end = start + 1
            if self.lengths[start] < SOLO_LENGTH:
                while (
                    end < len(self.lengths)
                    and BUCKET_FILL * self.lengths[start]
                    <= self.lengths[end]
                    <= self.lengths[start]
                ):
                    end += 1
            first, last = int(self.cu_seqlens[start]), int(self.cu_seqlens[end])
            self.buckets.append((first, last, PackedLayout(self.lengths[start:end], device)))
            start = end
        self._streams: Dict[int, Optional[StreamLayout]] = {}
        self._buffers: Dict[Optional[int], Tuple[torch.Tensor, slice]] = {}

    def stream(self, half_window: Optional[int]) -> Optional["StreamLayout"]:
        """The stream-blocked layout of a local layer, where it costs less than padded buckets."""
        if half_window is None or half_window <= 0:
            return None
        if half_window not in self._streams:
            stream = StreamLayout(self.lengths, half_window, self.device)
            padded_cost = sum(layout.batch * layout.longest**2 for _, _, layout in self.buckets)
            self._streams[half_window] = stream if stream.cost < padded_cost else None
        return self._streams[half_window]

    def buffer(
        self,
        half_window: Optional[int],
        heads: int,
        dim: int,
        like: torch.Tensor,
        reuse: bool = False,
    ) -> Tuple[torch.Tensor, slice]:
        """A `(rows, 3, heads, dim)` buffer for one layer's q/k/v, and the rows of the tokens.

        Stream-blocked local layers get zero halo rows around the tokens; other layers get
        exactly the tokens' rows. With `reuse` (inference), layers of the same kind share
        one buffer: only the token rows are ever written, so the halo stays zero.
        """
        stream = self.stream(half_window)
        kind = stream.half_window if stream is not None else None
        if reuse and kind in self._buffers:
            return self._buffers[kind]
        halo, rows = (stream.halo, stream.rows) if stream is not None else (0, self.total)
        buf = like.new_empty((rows, 3, heads, dim))
        if rows > self.total:
            buf[:halo].zero_()
            buf[halo + self.total :].zero_()
        result = (buf, slice(halo, halo + self.total))
        if reuse:
            self._buffers[kind] = result
        return result


@dataclass
class PackedLayout:
    """Where one bucket's packed tokens sit in a padded (batch, longest) grid."""

    lengths: List[int]
    device: torch.device
    index: Optional[torch.Tensor] = field(init=False)
    _masks: Dict[object, Optional[torch.Tensor]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        lengths = torch.tensor(self.lengths, dtype=torch.int64)
        self.batch = len(self.lengths)
        self.longest = max(self.lengths)
        self.ragged = min(self.lengths) != self.longest
        starts = F.pad(lengths.cumsum(0), (1, 0))[:-1]
        if self.ragged:
            rows = torch.repeat_interleave(torch.arange(self.batch), lengths)
            cols = torch.arange(int(lengths.sum())) - torch.repeat_interleave(starts, lengths)
            self.index = (rows * self.longest + cols).to(self.device)
            self.valid = (torch.arange(self.longest)[None, :] < lengths[:, None]).to(self.device)
            # padded grid cell -> packed row; padding cells repeat a real row of their own
            # sequence (any finite value: they are masked as keys, discarded as queries)
            grid = starts[:, None] + torch.minimum(
                torch.arange(self.longest)[None, :], lengths[:, None] - 1
            )
            self.grid_index = grid.reshape(-1).to(self.device)
        else:
            self.index = self.valid = self.grid_index = None

    def mask(self, half_window: Optional[int], dtype: torch.dtype) -> Optional[torch.Tensor]:
        """Additive attention mask, broadcastable to (B, H, L, L); None = attend to all."""
        if half_window is not None and self.longest - 1 <= half_window:
            half_window = None  # the window covers every sequence whole
        key = (half_window, dtype)
        if key not in self._masks:
            allowed = self._allowed(half_window)
            self._masks[key] = None if allowed is None else additive(allowed, dtype)
        return self._masks[key]

    def _allowed(self, half_window: Optional[int]) -> Optional[torch.Tensor]:
        if half_window is None:
            # keys of the sequence only: (B, 1, 1, L); padded queries see the real keys
            return None if not self.ragged else self.valid[:, None, None, :]
        pos = torch.arange(self.longest, device=self.device)
        band = ((pos[:, None] - pos[None, :]).abs() <= half_window)[None, None]
        if not self.ragged:
            return band
        # a padded query far past its sequence's end has no key in its band: let it see all
        return (band & self.valid[:, None, None, :]) | ~self.valid[:, None, :, None]

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(T, ...) packed -> (B, L, ...) padded: a view, or one gather if lengths differ."""
        grid = x if self.grid_index is None else x.index_select(0, self.grid_index)
        return grid.view(self.batch, self.longest, *x.shape[1:])

    def unpad(self, y: torch.Tensor) -> torch.Tensor:
        """(B, H, L, D) padded -> (T, H, D) packed."""
        heads, dim = y.shape[1], y.shape[3]
        flat = y.transpose(1, 2).reshape(self.batch * self.longest, heads, dim)
        return flat if self.index is None else flat.index_select(0, self.index)


class StreamLayout:
    """Blocks of the packed token stream for sliding-window attention (see module docstring).

    Stream row `halo + t` holds packed token `t`; the `halo` rows before the first token and
    the rows after the last are zeros. Block `j` holds the queries of stream rows
    `halo + j * block ... + block` and attends to stream rows `j * block ... + span`.
    """

    def __init__(self, lengths: List[int], half_window: int, device: torch.device):
        self.half_window = half_window
        self.block = max(half_window, MIN_STREAM_BLOCK)
        self.span = self.block + 2 * half_window
        self.total = sum(lengths)
        self.n_blocks = -(-self.total // self.block)
        self.halo = half_window
        self.rows = self.n_blocks * self.block + 2 * half_window
        self.cost = self.n_blocks * self.block * self.span
        self.device = device
        self._lengths = lengths
        self._masks: Dict[torch.dtype, torch.Tensor] = {}

    def mask(self, dtype: torch.dtype) -> torch.Tensor:
        """Additive mask (n_blocks, 1, block, span): same sequence and within the band."""
        if dtype not in self._masks:
            seq = torch.full((self.rows,), -1, dtype=torch.int64)
            seq[self.halo : self.halo + self.total] = torch.repeat_interleave(
                torch.arange(len(self._lengths)), torch.tensor(self._lengths)
            )
            q_seq = seq[self.halo : self.halo + self.n_blocks * self.block].view(
                self.n_blocks, self.block, 1
            )
            k_seq = seq.unfold(0, self.span, self.block)[:, None, :]  # (n_blocks, 1, span)
            a = torch.arange(self.block)[:, None]
            c = torch.arange(self.span)[None, :]
            band = (c - self.half_window - a).abs() <= self.half_window  # (block, span)
            # rows past the last token are no query of anyone's: let them see everything
            allowed = ((q_seq == k_seq) & (k_seq >= 0) & band) | (q_seq < 0)
            self._masks[dtype] = additive(allowed[:, None].to(self.device), dtype)
        return self._masks[dtype]

    def blocks(self, buf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (n_blocks, H, block, D), k and v (n_blocks, H, span, D): strided views of `buf`."""
        n, block = self.n_blocks, self.block
        heads, dim = buf.shape[2], buf.shape[3]
        q = buf[self.halo : self.halo + n * block, 0].view(n, block, heads, dim).transpose(1, 2)
        # unfold: (n, 3, H, D, span) -> (n, H, span, D) per k / v
        kv = buf.unfold(0, self.span, block)
        return q, kv[:, 1].transpose(-1, -2), kv[:, 2].transpose(-1, -2)

    def unblock(self, y: torch.Tensor) -> torch.Tensor:
        """(n_blocks, H, block, D) -> (T, H, D) packed."""
        heads, dim = y.shape[1], y.shape[3]
        return y.transpose(1, 2).reshape(self.n_blocks * self.block, heads, dim)[: self.total]


def attend(
    backend: str,
    buf: torch.Tensor,
    plan: AttentionPlan,
    half_window: Optional[int],
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Multi-head attention within each sequence of `plan`: (T, H, D) out.

    `buf` is the layer's `(rows, 3, H, D)` q/k/v buffer from `plan.buffer(half_window, ...)`.
    """
    stream = plan.stream(half_window)
    if backend == "varlen":
        tokens = buf if stream is None else buf[stream.halo : stream.halo + plan.total]
        q, k, v = tokens.unbind(1)
        window = (half_window, half_window) if half_window is not None else (-1, -1)
        dtype = q.dtype
        if dtype not in (torch.float16, torch.bfloat16):  # flash kernels: half precision only
            q, k, v = q.to(torch.bfloat16), k.to(torch.bfloat16), v.to(torch.bfloat16)
        out = _VARLEN(
            q,
            k,
            v,
            plan.cu_seqlens,
            plan.cu_seqlens,
            plan.longest,
            plan.longest,
            window_size=window,
        )
        return out.to(dtype)
    core = _sdpa if backend == "sdpa" else _eager
    if stream is not None:
        q, k, v = stream.blocks(buf)
        return stream.unblock(core(q, k, v, stream.mask(q.dtype), dropout_p))
    outputs = []
    for s, e, layout in plan.buckets:
        grid = layout.pad(buf[s:e])  # (B, L, 3, H, D)
        q, k, v = (grid[:, :, i].transpose(1, 2) for i in range(3))
        outputs.append(layout.unpad(core(q, k, v, layout.mask(half_window, q.dtype), dropout_p)))
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)


def _sdpa(q, k, v, mask, dropout_p):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


def _eager(q, k, v, mask, dropout_p):
    scores = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    if mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0)
    return torch.matmul(probs, v)
