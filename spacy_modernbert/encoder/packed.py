"""ModernBERT's forward over packed windows, on the Hugging Face modules and weights.

`PackedModernBert` wraps a `transformers.ModernBertModel` and reuses its embeddings,
layers (Wqkv, rotary tables, Wo, MLP, norms) and final norm, so weights load and save
exactly as Hugging Face's; only the orchestration differs: activations stay packed
(`(total_tokens, hidden)`, no padding), attention runs per micro-batch through
`attention.attend`, and bf16 autocast / gradient checkpointing are applied here.
Numerically it matches `ModernBertModel.forward` (fp32) on every real token.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import AttentionPlan, attend, resolve_backend


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor) -> None:
    """out <- x * cos + rotate_half(x) * sin (Hugging Face's apply_rotary_pos_emb), per half.

    x, out: (T, 2, H, D) (q and k at once); cos, sin: (T, 1, 1, D). Without autograd the
    halves are written straight into `out` (no temporary for rotate_half's concatenation).
    """
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c1, c2, s1, s2 = cos[..., :half], cos[..., half:], sin[..., :half], sin[..., half:]
    if torch.is_grad_enabled() and x.requires_grad:
        out.copy_(torch.cat((x1 * c1 - x2 * s1, x2 * c2 + x1 * s2), dim=-1))
        return
    o1, o2 = out[..., :half], out[..., half:]
    torch.mul(x1, c1, out=o1).addcmul_(x2, s1, value=-1)
    torch.mul(x2, c2, out=o2).addcmul_(x1, s2)


class Workspace:
    """One storage reused by every layer's big projections in a CPU inference forward.

    glibc serves allocations above 32 MiB with fresh mmaps and returns them on free, so a
    new (tokens, 3 * hidden) tensor per layer page-faults (and zero-fills) ~60 MiB on every
    layer; reusing one buffer skips that. Without autograd only (saved tensors must live).
    """

    def __init__(self) -> None:
        self._flat: Optional[torch.Tensor] = None

    def take(self, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        """A contiguous (rows, cols) tensor on the shared storage (its old contents are garbage)."""
        n = rows * cols
        if self._flat is None or self._flat.numel() < n:
            self._flat = like.new_empty(n)
        return self._flat[:n].view(rows, cols)

    def linear(self, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """module(x), written into the shared storage."""
        out = self.take(x.shape[0], module.out_features, x)
        if module.bias is None:
            return torch.mm(x, module.weight.t(), out=out)
        return torch.addmm(module.bias, x, module.weight.t(), out=out)


class PackedModernBert(nn.Module):
    """Run ModernBERT over length-sorted micro-batches of packed sequences."""

    def __init__(
        self,
        hf_model: nn.Module,
        attn_implementation: str = "sdpa",
        mixed_precision: bool = False,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.hf = hf_model
        self.attn_implementation = attn_implementation
        self.mixed_precision = mixed_precision
        self.gradient_checkpointing = gradient_checkpointing

    @property
    def config(self):
        return self.hf.config

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        groups: Sequence[Tuple[int, int, List[int]]],
        gather_index: torch.Tensor,
    ) -> torch.Tensor:
        """Encode packed windows and return the rows `gather_index` picks, in float32.

        input_ids, position_ids: (T,) for all windows, packed group after group.
        groups: (start, end, window lengths) of each micro-batch in the packed order.
        gather_index: (N,) rows of the packed output to return (merging windows per doc).
        """
        device = input_ids.device
        backend = resolve_backend(self.attn_implementation, device)
        use_bf16 = self.mixed_precision and device.type == "cuda"
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            outputs = [
                self._encode(input_ids[s:e], position_ids[s:e], AttentionPlan(lengths, device), backend)
                for s, e, lengths in groups
            ]
        packed = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)
        return packed.index_select(0, gather_index).float()

    def _encode(self, ids: torch.Tensor, pos: torch.Tensor, plan: AttentionPlan, backend: str) -> torch.Tensor:
        hidden = self.hf.embeddings(input_ids=ids)
        # CPU inference reuses its buffers (CUDA has a caching allocator; autocast and
        # autograd need the modules' own calls)
        ws = Workspace() if ids.device.type == "cpu" and not torch.is_grad_enabled() else None
        rope: Dict[Tuple[int, int], Tuple[torch.Tensor, torch.Tensor]] = {}
        for layer in self.hf.layers:
            key = layer.attn.local_attention
            if key not in rope:
                cos, sin = layer.attn.rotary_emb(hidden, pos[None, :])
                rope[key] = (cos[0, :, None, None, :], sin[0, :, None, None, :])  # (T, 1, 1, D)
            cos, sin = rope[key]
            if self.gradient_checkpointing and self.training:
                hidden = checkpoint(self._layer, layer, hidden, cos, sin, plan, backend, use_reentrant=False)
            else:
                hidden = self._layer(layer, hidden, cos, sin, plan, backend, ws)
        return self.hf.final_norm(hidden)

    def _layer(
        self, layer: nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
        plan: AttentionPlan, backend: str, ws: Optional[Workspace] = None,
    ) -> torch.Tensor:
        attn, mlp = layer.attn, layer.mlp
        x = layer.attn_norm(hidden)
        qkv = (attn.Wqkv(x) if ws is None else ws.linear(attn.Wqkv, x)).view(-1, 3, attn.num_heads, attn.head_dim)
        half_window = attn.local_attention[0] if attn.local_attention[0] >= 0 else None
        buf, rows = plan.buffer(half_window, attn.num_heads, attn.head_dim, like=qkv, reuse=ws is not None)
        apply_rotary(qkv[:, :2], cos, sin, out=buf[rows, :2])
        buf[rows, 2] = qkv[:, 2]
        dropout_p = attn.attention_dropout if self.training else 0.0
        context = attend(backend, buf, plan, half_window, dropout_p)
        hidden = hidden + attn.out_drop(attn.Wo(context.reshape(-1, attn.all_head_size)))
        x = layer.mlp_norm(hidden)
        if ws is None:
            return hidden + mlp(x)
        # ModernBertMLP.forward: Wo(drop(act(input) * gate)), with Wi's output in the workspace
        inp, gate = ws.linear(mlp.Wi, x).chunk(2, dim=-1)
        return hidden + mlp.Wo(mlp.drop(mlp.act(inp).mul_(gate)))
