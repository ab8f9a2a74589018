"""Our ModernBERT modules: they own their weights, mapped explicitly from Hugging Face names.

Why: transformers moves ModernBERT's internals between releases (the rotary embedding moved
from each attention layer to the model; 5.x describes layer kinds and rope thetas with
`layer_types` / `rope_parameters`). We depend only on what is stable: the checkpoint's
weight names and shapes and the config's values. Everything else (rotary tables from the
rope thetas, the layer kinds, GLU MLP, norms) is computed here, in the style of
curated-transformers.

Invariants:
* `ModernBertEncoder.from_hf_state_dict(cfg, sd).to_hf_state_dict()` returns the same names,
  shapes and values as `sd` (a `ModernBertModel` state dict): pipelines and pretraining
  checkpoints are written in HF naming, loadable by `ModernBertModel.from_pretrained`.
* Loading is strict: a missing weight or a shape mismatch raises, nothing is left randomly
  initialized (`check_hf_state_dict` lists what is wrong, `checkpoint.py` words the error).
* The modules only hold parameters and run per-token maps; attention over packed sequences,
  rotary application and buffer reuse are `packed.py` / `attention.py`'s job. `forward`
  here is a plain padded reference (tests, colleagues), not the pipeline's fast path.

Public API (for colleagues):
    cfg = EncoderConfig.from_hf_config(transformers_config)       # 4.48 .. 5.x configs
    enc = ModernBertEncoder.from_hf_state_dict(cfg, state_dict)   # HF names, strict
    enc = ModernBertEncoder.from_hf_model(hf_model)               # a ModernBertModel
    enc, tokenizer = checkpoint.load_checkpoint(path_or_hub_id)    # checked, with enc.hf_config
    sd = enc.to_hf_state_dict()                                    # HF names, for save_file
    hidden = enc(input_ids)                                        # (B, L) -> (B, L, hidden)
"""

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UnsupportedConfigError

FULL = "full_attention"
SLIDING = "sliding_attention"


@dataclass(frozen=True)
class EncoderConfig:
    """The values our modules need, read once from a transformers `ModernBertConfig`."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    hidden_activation: str
    norm_eps: float
    norm_bias: bool
    attention_bias: bool
    mlp_bias: bool
    embedding_dropout: float
    attention_dropout: float
    mlp_dropout: float
    pad_token_id: Optional[int]
    max_position_embeddings: int
    layer_types: Tuple[str, ...]  # FULL or SLIDING per layer
    half_window: int  # sliding layers attend to +-half_window positions
    rope_theta: Tuple[Tuple[str, float], ...]  # per layer type

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def theta(self, layer_type: str) -> float:
        return dict(self.rope_theta)[layer_type]

    @classmethod
    def from_hf_config(cls, config: Any) -> "EncoderConfig":
        """Read a `ModernBertConfig` of transformers 4.48+ (flat rope thetas) or 5.x
        (`layer_types`, `rope_parameters`); refuse rope scalings we do not implement."""
        n = int(config.num_hidden_layers)
        every = int(getattr(config, "global_attn_every_n_layers", 3))
        layer_types = getattr(config, "layer_types", None)
        if not layer_types:
            layer_types = [FULL if i % every == 0 else SLIDING for i in range(n)]
        layer_types = tuple(layer_types)
        if len(layer_types) != n or set(layer_types) - {FULL, SLIDING}:
            raise UnsupportedConfigError(
                f"layer_types {layer_types} do not describe {n} ModernBERT layers."
            )
        params = getattr(config, "rope_parameters", None)
        thetas = {}
        for kind in (FULL, SLIDING):
            if isinstance(params, dict) and isinstance(params.get(kind), dict):
                entry = params[kind]
                rope_type = entry.get("rope_type", entry.get("type", "default"))
                theta = entry.get("rope_theta")
            else:
                scaling = getattr(config, "rope_scaling", None) or {}
                rope_type = scaling.get("rope_type", scaling.get("type", "default"))
                theta = getattr(config, "global_rope_theta", 160000.0)
                if kind == SLIDING and getattr(config, "local_rope_theta", None) is not None:
                    theta = config.local_rope_theta
            if rope_type != "default":
                raise UnsupportedConfigError(
                    f"rope type '{rope_type}' ({kind}) is not supported; ModernBERT checkpoints use 'default'."
                )
            # no theta of its own: the global one (transformers 4.x's local_rope_theta = None)
            thetas[kind] = float(theta if theta is not None else thetas.get(FULL, 160000.0))
        heads, hidden = int(config.num_attention_heads), int(config.hidden_size)
        if hidden % heads:
            raise UnsupportedConfigError(
                f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}."
            )
        pad = getattr(config, "pad_token_id", None)
        return cls(
            vocab_size=int(config.vocab_size),
            hidden_size=hidden,
            intermediate_size=int(config.intermediate_size),
            num_hidden_layers=n,
            num_attention_heads=heads,
            hidden_activation=str(getattr(config, "hidden_activation", "gelu")),
            norm_eps=float(getattr(config, "norm_eps", 1e-5)),
            norm_bias=bool(getattr(config, "norm_bias", False)),
            attention_bias=bool(getattr(config, "attention_bias", False)),
            mlp_bias=bool(getattr(config, "mlp_bias", False)),
            embedding_dropout=float(getattr(config, "embedding_dropout", 0.0)),
            attention_dropout=float(getattr(config, "attention_dropout", 0.0)),
            mlp_dropout=float(getattr(config, "mlp_dropout", 0.0)),
            pad_token_id=None
            if pad is None or not 0 <= int(pad) < int(config.vocab_size)
            else int(pad),
            max_position_embeddings=int(getattr(config, "max_position_embeddings", 8192)),
            layer_types=layer_types,
            half_window=int(getattr(config, "local_attention", 128)) // 2,
            rope_theta=tuple(sorted(thetas.items())),
        )


def activation(name: str):
    """transformers' ACT2FN names that ModernBERT configs use, as plain functions."""
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name in ("silu", "swish"):
        return F.silu
    if name == "relu":
        return F.relu
    raise UnsupportedConfigError(
        f"hidden_activation '{name}' is not supported (gelu, gelu_pytorch_tanh, silu, relu)."
    )


def _norm(cfg: EncoderConfig) -> nn.LayerNorm:
    return nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps, bias=cfg.norm_bias)


class RotaryEmbedding:
    """Rotary tables of one layer type: cos/sin of position * theta^(-2i/head_dim), in fp32.

    No state: computed from the config for the positions asked (the same arithmetic as
    transformers' default rope, so results match it bit for bit in fp32).
    """

    def __init__(self, head_dim: int, theta: float):
        self.head_dim = head_dim
        self.theta = theta

    def cos_sin(self, positions: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(T,) positions -> cos, sin of shape (T, head_dim), float32."""
        exponents = (
            torch.arange(0, self.head_dim, 2, dtype=torch.int64, device=positions.device).float()
            / self.head_dim
        )
        inv_freq = 1.0 / (self.theta**exponents)
        with torch.autocast(device_type=positions.device.type, enabled=False):
            freqs = positions.float()[:, None] * inv_freq[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)
            return emb.cos(), emb.sin()


class Embeddings(nn.Module):
    """Piece embeddings -> LayerNorm -> dropout (ModernBERT has no position embeddings)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.piece_embeddings = nn.Embedding(
            cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id
        )
        self.norm = _norm(cfg)
        self.dropout = nn.Dropout(cfg.embedding_dropout)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.norm(self.piece_embeddings(input_ids)))


class SelfAttention(nn.Module):
    """The attention's weights: fused q/k/v projection and output projection.

    `half_window` is None for global layers. The attention itself over packed sequences
    is `attention.attend`; `forward` is the padded reference.
    """

    def __init__(self, cfg: EncoderConfig, layer_type: str):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.head_dim
        self.layer_type = layer_type
        self.half_window = cfg.half_window if layer_type == SLIDING else None
        self.dropout_p = cfg.attention_dropout
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, bias=cfg.attention_bias)
        self.output = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=cfg.attention_bias)
        self.output_dropout = nn.Dropout(cfg.attention_dropout)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """x (B, L, hidden), cos/sin (L, head_dim), additive mask (B, 1, L, L) or None."""
        batch, length, _ = x.shape
        q, k, v = (
            self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        dropout_p = self.dropout_p if self.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return self.output_dropout(self.output(context.transpose(1, 2).reshape(batch, length, -1)))


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin, the rotary embedding in its textbook form."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class GluMlp(nn.Module):
    """output(dropout(act(input) * gate)), with [input; gate] = input_gate(x) in one GEMM."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.input_gate = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=cfg.mlp_bias)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=cfg.mlp_bias)
        self.act = activation(cfg.hidden_activation)
        self.dropout = nn.Dropout(cfg.mlp_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp, gate = self.input_gate(x).chunk(2, dim=-1)
        return self.output(self.dropout(self.act(inp) * gate))


class EncoderLayer(nn.Module):
    """Pre-norm attention and GLU MLP, each with a residual; layer 0 has no attention norm
    (the embeddings' norm precedes it)."""

    def __init__(self, cfg: EncoderConfig, index: int):
        super().__init__()
        self.attn_norm = nn.Identity() if index == 0 else _norm(cfg)
        self.attn = SelfAttention(cfg, cfg.layer_types[index])
        self.mlp_norm = _norm(cfg)
        self.mlp = GluMlp(cfg)


class ModernBertEncoder(nn.Module):
    """Embeddings, layers and final norm of ModernBERT, with explicit HF name mapping."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(EncoderLayer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.final_norm = _norm(cfg)
        self.rotary = {
            kind: RotaryEmbedding(cfg.head_dim, cfg.theta(kind)) for kind in (FULL, SLIDING)
        }
        # the transformers config the weights came with (serialized with pipelines), if any
        self.hf_config: Optional[Any] = None

    # -- Hugging Face state dicts ---------------------------------------------------------
    @classmethod
    def from_hf_state_dict(
        cls, cfg: EncoderConfig, state_dict: Mapping[str, torch.Tensor]
    ) -> "ModernBertEncoder":
        """Build from a `ModernBertModel` state dict (HF names), strictly; floats -> fp32.

        Raises `WeightsMismatch` listing missing, unexpected and wrongly shaped weights.
        """
        problems = check_hf_state_dict(cfg, state_dict)
        if problems:
            raise problems
        with torch.device("meta"):
            encoder = cls(cfg)
        ours = {
            hf_to_ours_name(name): (t.float() if t.is_floating_point() else t).contiguous()
            for name, t in state_dict.items()
        }
        encoder.load_state_dict(ours, strict=True, assign=True)
        return encoder

    @classmethod
    def from_hf_model(cls, hf_model: nn.Module) -> "ModernBertEncoder":
        """Our encoder with the weights (copied) of a `transformers.ModernBertModel`."""
        state = {k: v.detach().clone() for k, v in hf_model.state_dict().items()}
        encoder = cls.from_hf_state_dict(EncoderConfig.from_hf_config(hf_model.config), state)
        encoder.hf_config = hf_model.config
        return encoder

    def to_hf_state_dict(self) -> Dict[str, torch.Tensor]:
        """The weights in `ModernBertModel` naming (detached, contiguous, on their device)."""
        return {ours_to_hf_name(k): v.detach().contiguous() for k, v in self.state_dict().items()}

    # -- padded reference forward ---------------------------------------------------------
    def forward(
        self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """(B, L) ids (and 0/1 mask) -> (B, L, hidden): the plain padded forward."""
        batch, length = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        keys = attention_mask.bool()[:, None, None, :]
        pos = torch.arange(length, device=input_ids.device)
        band = ((pos[:, None] - pos[None, :]).abs() <= self.config.half_window)[None, None]
        masks = {FULL: keys, SLIDING: keys & band}
        tables = {kind: rot.cos_sin(pos) for kind, rot in self.rotary.items()}
        hidden = self.embeddings(input_ids)
        for layer in self.layers:
            kind = layer.attn.layer_type
            mask = torch.zeros(masks[kind].shape, dtype=hidden.dtype, device=hidden.device)
            mask.masked_fill_(~masks[kind], torch.finfo(hidden.dtype).min)
            hidden = hidden + layer.attn(layer.attn_norm(hidden), *tables[kind], mask)
            hidden = hidden + layer.mlp(layer.mlp_norm(hidden))
        return self.final_norm(hidden)


# -- the name mapping, both directions ---------------------------------------------------------
# One table of (Hugging Face prefix, our prefix); "{i}" stands for a layer number. Both
# directions are derived from it, so they cannot drift apart. Parameter suffixes are kept.
_NAME_PAIRS = [
    ("embeddings.tok_embeddings.", "embeddings.piece_embeddings."),
    ("embeddings.norm.", "embeddings.norm."),
    ("layers.{i}.attn_norm.", "layers.{i}.attn_norm."),
    ("layers.{i}.attn.Wqkv.", "layers.{i}.attn.qkv."),
    ("layers.{i}.attn.Wo.", "layers.{i}.attn.output."),
    ("layers.{i}.mlp_norm.", "layers.{i}.mlp_norm."),
    ("layers.{i}.mlp.Wi.", "layers.{i}.mlp.input_gate."),
    ("layers.{i}.mlp.Wo.", "layers.{i}.mlp.output."),
    ("final_norm.", "final_norm."),
]


def _rename_table(pairs) -> list:
    """(regex, replacement) for prefixes with "{i}" placeholders for the layer number."""
    return [
        ("^" + re.escape(src).replace(re.escape("{i}"), r"(\d+)"), dst.replace("{i}", r"\1"))
        for src, dst in pairs
    ]


_HF_TO_OURS = _rename_table(_NAME_PAIRS)
_OURS_TO_HF = _rename_table([(ours, hf) for hf, ours in _NAME_PAIRS])


def _rename(name: str, table) -> Optional[str]:
    for pattern, repl in table:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    return None


def hf_to_ours_name(name: str) -> Optional[str]:
    """`layers.3.attn.Wqkv.weight` -> `layers.3.attn.qkv.weight`; None for foreign names."""
    return _rename(name, _HF_TO_OURS)


def ours_to_hf_name(name: str) -> str:
    """The inverse of `hf_to_ours_name`."""
    hf = _rename(name, _OURS_TO_HF)
    if hf is None:  # pragma: no cover - every parameter of ours is in the table
        raise KeyError(f"No Hugging Face name for parameter '{name}'.")
    return hf


def expected_hf_shapes(cfg: EncoderConfig) -> Dict[str, Tuple[int, ...]]:
    """Every weight a `ModernBertModel` of this config has, by HF name, with its shape."""
    with torch.device("meta"):
        encoder = ModernBertEncoder(cfg)
    return {ours_to_hf_name(k): tuple(v.shape) for k, v in encoder.state_dict().items()}


class WeightsMismatch(ValueError):
    """A state dict does not fit the config: what is missing, extra, or shaped differently."""

    def __init__(
        self, missing: List[str], unexpected: List[str], mismatched: List[Tuple[str, tuple, tuple]]
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:5])})")
        if mismatched:
            shown = ", ".join(
                f"{k} {tuple(got)} != {tuple(want)}" for k, got, want in mismatched[:5]
            )
            parts.append(f"{len(mismatched)} with wrong shapes ({shown})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:5])})")
        super().__init__("; ".join(parts))

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)


def check_hf_state_dict(cfg: EncoderConfig, state_dict: Mapping[str, Any]) -> WeightsMismatch:
    """Compare HF names and shapes with what `cfg` needs; falsy when they fit exactly."""
    expected = expected_hf_shapes(cfg)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, tuple(state_dict[k].shape), shape)
        for k, shape in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != shape
    ]
    return WeightsMismatch(missing, unexpected, mismatched)
