"""ModernBERT's forward over packed windows, on our own modules (`modules.py`).

`PackedModernBert` runs a `ModernBertEncoder` (embeddings, layers, final norm, rotary
tables from the config), whose weights map one to one onto Hugging Face's names; only the
orchestration is here: activations stay packed (`(total_tokens, hidden)`, no padding),
attention runs per micro-batch through `attention.attend`, and bf16 autocast / gradient
checkpointing are applied here. Numerically it matches `transformers.ModernBertModel`
(fp32) on every real token (tests/encoder/test_packed.py, test_modules.py). With
`quantize` set ("int8" / "bf16", quantize.py), CPU inference runs the linear layers on
low-precision copies of the weights; everything else, and every other path, is as above.
"""

import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import AttentionPlan, attend, resolve_backend
from .modules import EncoderConfig, EncoderLayer, ModernBertEncoder
from .quantize import LayerLinears, quantize_layers, resolve_mode


class Rotary:
    """One layer kind's rotary embedding at the packed positions (`RotaryEmbedding` tables).

    `apply` computes x * cos + rotate_half(x) * sin (`apply_rotary_pos_emb`) for q and k at
    once, per half of each head: out1 = x1 * cos1 - x2 * sin1, out2 = x2 * cos2 + x1 * sin2.
    Without autograd the halves are written straight into the output (no temporaries).
    """

    def __init__(self, cos: torch.Tensor, sin: torch.Tensor):
        half = cos.shape[-1] // 2
        cos, sin = cos[:, None, None, :], sin[:, None, None, :]  # (T, 1, 1, D)
        self.c1, self.c2, self.s1, self.s2 = (
            cos[..., :half],
            cos[..., half:],
            sin[..., :half],
            sin[..., half:],
        )

    def apply(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """out <- rotary(x), for x and out of shape (T, 2, H, D) (q and k)."""
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        if torch.is_grad_enabled() and x.requires_grad:
            out.copy_(torch.cat((x1 * self.c1 - x2 * self.s1, x2 * self.c2 + x1 * self.s2), dim=-1))
            return
        torch.mul(x1, self.c1, out=out[..., :half]).addcmul_(x2, self.s1, value=-1)
        torch.mul(x2, self.c2, out=out[..., half:]).addcmul_(x1, self.s2)


class Workspace:
    """Storage reused by every layer of a CPU inference forward, for the big projections.

    glibc serves allocations above 32 MiB with fresh mmaps and returns them on free, so a
    new (tokens, 3 * hidden) tensor per layer page-faults (and zero-fills) ~60 MiB on every
    layer; reusing buffers skips that. Only without autograd (saved tensors must live) and
    in eval mode (dropout is the identity, so residual adds fuse into the GEMMs).
    """

    def __init__(self) -> None:
        self._flat: Dict[int, torch.Tensor] = {}

    def take(self, rows: int, cols: int, like: torch.Tensor, slot: int = 0) -> torch.Tensor:
        """A contiguous (rows, cols) tensor on storage `slot` (its old contents are garbage)."""
        n = rows * cols
        if slot not in self._flat or self._flat[slot].numel() < n:
            self._flat[slot] = like.new_empty(n)
        return self._flat[slot][:n].view(rows, cols)

    def linear(
        self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], slot: int = 0
    ) -> torch.Tensor:
        """x @ weight.T + bias, written into storage `slot`."""
        out = self.take(x.shape[0], weight.shape[0], x, slot)
        if bias is None:
            return torch.mm(x, weight.t(), out=out)
        return torch.addmm(bias, x, weight.t(), out=out)

    @staticmethod
    def add_linear_(hidden: torch.Tensor, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """hidden += module(x), in place, the residual add inside the GEMM."""
        hidden.addmm_(x, module.weight.t())
        return hidden if module.bias is None else hidden.add_(module.bias)


class PackedModernBert(nn.Module):
    """Run our ModernBERT modules over length-sorted micro-batches of packed sequences."""

    def __init__(
        self,
        encoder: ModernBertEncoder,
        attn_implementation: str = "sdpa",
        mixed_precision: bool = False,
        gradient_checkpointing: bool = False,
        hf_config: Optional[object] = None,
        quantize: Optional[str] = None,
    ):
        super().__init__()
        self.encoder = encoder
        # the transformers config the weights came with: serialized with the pipeline
        self.hf_config = hf_config
        self.attn_implementation = attn_implementation
        self.mixed_precision = mixed_precision
        self.gradient_checkpointing = gradient_checkpointing
        self._warned_precision = False
        # the setting asked for, and the low-precision linears built from the fp32 weights
        # (None: fp32); not parameters, so state dicts and saved pipelines stay fp32
        self.quantize = quantize
        self._low: Optional[List[LayerLinears]] = None

    def apply_quantize(self) -> None:
        """(Re)build the low-precision linears from the current fp32 weights, on CPU.

        Called at load (after the weights and device are final). On CUDA the setting is
        ignored with a warning (use mixed_precision there); bf16 without native bf16 warns
        and stays fp32 (quantize.resolve_mode).
        """
        self._low = None
        if self.quantize is None:
            return
        device = next(self.encoder.parameters()).device
        if device.type != "cpu":
            warnings.warn(
                f"quantize = \"{self.quantize}\" applies to CPU inference only; on '{device.type}' the encoder "
                "runs as configured without it (use mixed_precision = true for bf16 on CUDA).",
                stacklevel=2,
            )
            return
        mode = resolve_mode(self.quantize)
        if mode is not None:
            self._low = quantize_layers(list(self.encoder.layers), mode)

    @property
    def quantized(self) -> Optional[str]:
        """The low-precision mode in effect ("int8" / "bf16"), or None (fp32)."""
        return self.quantize if self._low is not None else None

    @property
    def config(self) -> EncoderConfig:
        return self.encoder.config

    def to_hf_state_dict(self) -> Dict[str, torch.Tensor]:
        """The encoder's weights in `transformers.ModernBertModel` naming."""
        return self.encoder.to_hf_state_dict()

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        groups: Sequence[Tuple[int, int, List[int]]],
        gather_index: torch.Tensor,
        output_hidden_states: bool = False,
    ):
        """Encode packed windows and return the rows `gather_index` picks, in float32.

        input_ids, position_ids: (T,) for all windows, packed group after group.
        groups: (start, end, window lengths) of each micro-batch in the packed order.
        gather_index: (N,) rows of the packed output to return (merging windows per doc).
        output_hidden_states: return (last, hidden_states), hidden_states being
            num_hidden_layers + 1 tensors of (N, hidden): the embeddings and each layer's
            output, the last one after the final norm (it is `last`), as transformers 5.x.
        """
        device = input_ids.device
        backend = resolve_backend(self.attn_implementation, device)
        use_bf16 = self.mixed_precision and device.type == "cuda"
        if self.mixed_precision and not use_bf16 and not self._warned_precision:
            self._warned_precision = True
            warnings.warn(
                f"mixed_precision = true only applies on CUDA (running on '{device.type}'): the encoder "
                "runs in float32. Set mixed_precision = false in [components.transformer.model] to "
                "silence this.",
                stacklevel=2,
            )
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            outputs = [
                self._encode(
                    input_ids[s:e],
                    position_ids[s:e],
                    AttentionPlan(lengths, device),
                    backend,
                    output_hidden_states,
                )
                for s, e, lengths in groups
            ]
        if not output_hidden_states:
            packed = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)
            return packed.index_select(0, gather_index).float()
        per_layer = [
            (states[0] if len(states) == 1 else torch.cat(states, dim=0))
            .index_select(0, gather_index)
            .float()
            for states in zip(*outputs)
        ]
        return per_layer[-1], tuple(per_layer)

    def _encode(
        self,
        ids: torch.Tensor,
        pos: torch.Tensor,
        plan: AttentionPlan,
        backend: str,
        all_states: bool = False,
    ):
        enc = self.encoder
        hidden = enc.embeddings(ids)
        # CPU inference reuses its buffers (CUDA has a caching allocator; autocast,
        # autograd and dropout need the modules' own calls); kept states must not be reused
        inference = ids.device.type == "cpu" and not torch.is_grad_enabled() and not self.training
        fast = inference and not all_states
        ws = Workspace() if fast else None
        low = self._low if inference else None
        rope: Dict[str, Rotary] = {}
        states = [hidden] if all_states else None
        for index, layer in enumerate(enc.layers):
            kind = layer.attn.layer_type
            if kind not in rope:
                cos, sin = enc.rotary[kind].cos_sin(pos)
                rope[kind] = Rotary(cos.to(hidden.dtype), sin.to(hidden.dtype))
            if self.gradient_checkpointing and self.training:
                hidden = checkpoint(
                    self._layer, layer, hidden, rope[kind], plan, backend, use_reentrant=False
                )
            elif low is not None:
                hidden = self._low_precision_layer(
                    layer, low[index], hidden, rope[kind], plan, backend, ws
                )
            else:
                hidden = self._layer(layer, hidden, rope[kind], plan, backend, ws)
            if states is not None:
                states.append(hidden)
        hidden = enc.final_norm(hidden)
        # the embeddings, each layer's output, the last one after the final norm (as in
        # transformers 5.x, and as BERT's last state; 4.x's ModernBERT gave it pre-norm)
        return hidden if states is None else [*states[:-1], hidden]

    def _layer(
        self,
        layer: EncoderLayer,
        hidden: torch.Tensor,
        rope: Rotary,
        plan: AttentionPlan,
        backend: str,
        ws: Optional[Workspace] = None,
    ) -> torch.Tensor:
        """One encoder layer: pre-norm attention and GLU MLP, each with a residual."""
        attn, mlp = layer.attn, layer.mlp
        x = layer.attn_norm(hidden)
        qkv = attn.qkv(x) if ws is None else ws.linear(x, attn.qkv.weight, attn.qkv.bias)
        context = self._attention(attn, qkv, rope, plan, backend, reuse=ws is not None)
        if ws is None:
            hidden = hidden + attn.output_dropout(attn.output(context))
            return hidden + mlp(layer.mlp_norm(hidden))
        hidden = ws.add_linear_(hidden, attn.output, context)
        # GluMlp: output(act(input) * gate), with input_gate = [input; gate] run as two
        # GEMMs so that the activation reads a contiguous tensor
        x = layer.mlp_norm(hidden)
        i = mlp.output.in_features
        bias = mlp.input_gate.bias
        inp = ws.linear(x, mlp.input_gate.weight[:i], None if bias is None else bias[:i], slot=0)
        gate = ws.linear(x, mlp.input_gate.weight[i:], None if bias is None else bias[i:], slot=1)
        return ws.add_linear_(hidden, mlp.output, mlp.act(inp).mul_(gate))

    def _attention(
        self,
        attn: nn.Module,
        qkv: torch.Tensor,
        rope: Rotary,
        plan: AttentionPlan,
        backend: str,
        reuse: bool,
        like: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """(T, 3 * hidden) projections -> (T, hidden) context: rotary on q and k into the
        attention plan's buffer (of `like`'s dtype, by default qkv's), then `attend`."""
        qkv = qkv.view(-1, 3, attn.num_heads, attn.head_dim)
        half_window = attn.half_window
        like = qkv if like is None else like
        buf, rows = plan.buffer(half_window, attn.num_heads, attn.head_dim, like=like, reuse=reuse)
        rope.apply(qkv[:, :2], out=buf[rows, :2])
        buf[rows, 2] = qkv[:, 2]
        dropout_p = attn.dropout_p if self.training else 0.0
        return attend(backend, buf, plan, half_window, dropout_p).reshape(
            -1, attn.num_heads * attn.head_dim
        )

    def _low_precision_layer(
        self,
        layer: EncoderLayer,
        low: LayerLinears,
        hidden: torch.Tensor,
        rope: Rotary,
        plan: AttentionPlan,
        backend: str,
        ws: Optional[Workspace],
    ) -> torch.Tensor:
        """`_layer` with the linears on int8 / bf16 copies (CPU inference, quantize.py);
        norms, rotary, attention and the residual stream stay fp32. Residual adds are in
        place when no hidden state is kept (`ws` given)."""
        attn, mlp = layer.attn, layer.mlp
        qkv = low.qkv(layer.attn_norm(hidden))
        context = self._attention(attn, qkv, rope, plan, backend, reuse=ws is not None, like=hidden)
        out = low.attn_out(context)
        hidden = hidden.add_(out) if ws is not None else hidden + out
        x = layer.mlp_norm(hidden)
        if low.mlp_in.dtype != torch.float32:
            x = x.to(low.mlp_in.dtype)  # cast once for both GEMMs
        out = low.mlp_out(mlp.act(low.mlp_in(x)).mul_(low.mlp_gate(x)))
        return hidden.add_(out) if ws is not None else hidden + out
