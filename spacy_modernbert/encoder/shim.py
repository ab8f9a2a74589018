"""The PyTorch shim that owns ModernBERT weights and tokenizer, and serializes both.

Serialized bytes hold the Hugging Face config, the tokenizer files and the weights
(safetensors), so a saved pipeline loads with `spacy.load` with neither the original
checkpoint path nor the network. Runtime settings (attention backend, bf16, gradient
checkpointing, quantize, gradient clipping) come from the pipeline config, not from the
bytes: the weights are always stored in fp32, and `quantize` rebuilds its low-precision
copies at load.

`grad_clip_norm` clips the encoder's gradients by their global L2 norm (over all its
parameters together, `torch.nn.utils.clip_grad_norm_`) before thinc's optimizer sees them,
as Hugging Face training loops do. thinc's own `grad_clip` clips each parameter's gradient
separately: a spike spread over many tensors passes whole, and clipping some tensors but
not others changes the direction of the update.

`learn_rate_scale` multiplies the optimizer's learning rate for the encoder's parameters
(thinc's `lr_scale`, so the schedule and weight decay scale with it); the other components'
weights keep the optimizer's own rate: a pretrained encoder can move slower than the
randomly initialized head trained on top of it.

`finish_update` writes the optimizer's result into each parameter in place (issue 23,
docs/memory.md). thinc's `PyTorchShim.finish_update` instead rebinds `param.data` to a new
tensor made from the numpy/cupy view of the old one; that view keeps the old tensor object
alive, so every update adds one link per parameter to a chain that is never freed. The
chain is small, but its links are long-lived allocations made between each update's large
short-lived ones, which pins glibc's heap: resident memory grew by about one copy of the
weights per update. Invariant: the parameter tensors (objects and storage) an update
starts with are the ones it ends with, and no object made by an update outlives it.
"""

import tempfile
from pathlib import Path
from typing import Any, Optional

import srsly
from thinc.api import Optimizer, PyTorchShim, get_torch_default_device, torch2xp, xp2torch

from . import safe_load
from .checkpoint import build_encoder, validate_tokenizer
from .errors import CheckpointError
from .packed import PackedModernBert

FORMAT_VERSION = 1


class ModernBertShim(PyTorchShim):
    """Holds a `PackedModernBert` (None until initialized) and its fast tokenizer."""

    def __init__(
        self,
        attn_implementation: str,
        mixed_precision: bool,
        gradient_checkpointing: bool,
        quantize: Optional[str] = None,
        grad_clip_norm: Optional[float] = None,
        learn_rate_scale: float = 1.0,
    ):
        super().__init__(None, mixed_precision=False)  # bf16 autocast is done by PackedModernBert
        self.attn_implementation = attn_implementation
        self.bf16 = mixed_precision
        self.gradient_checkpointing = gradient_checkpointing
        self.quantize = quantize
        self.grad_clip_norm = grad_clip_norm
        self.last_grad_norm: Optional[float] = None  # the global norm before clipping, last update
        self.learn_rate_scale = learn_rate_scale  # thinc's lr_scale for every encoder parameter
        self.tokenizer: Optional[Any] = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def set_model(self, encoder: Any, tokenizer: Any) -> None:
        """Install our `ModernBertEncoder` (with its `hf_config`) and the tokenizer, on the
        current default device, then build the `quantize` copies of its linears (if set)."""
        self._model = PackedModernBert(
            encoder,
            hf_config=encoder.hf_config,
            attn_implementation=self.attn_implementation,
            mixed_precision=self.bf16,
            gradient_checkpointing=self.gradient_checkpointing,
            quantize=self.quantize,
        ).to(get_torch_default_device())
        self._model.apply_quantize()
        self.tokenizer = tokenizer

    def finish_update(self, optimizer: Optimizer) -> None:
        """Clip the encoder's gradients to a global L2 norm of `grad_clip_norm` (if set),
        then let thinc's optimizer update each parameter (and zero its gradient)."""
        if self.grad_clip_norm is not None and self._model is not None:
            import torch

            grads = [p for p in self._model.parameters() if p.grad is not None]
            if grads:
                self.last_grad_norm = float(
                    torch.nn.utils.clip_grad_norm_(grads, self.grad_clip_norm)
                )
        if self._model is not None:
            step_in_place(self, optimizer)

    def to_bytes(self) -> bytes:
        if self._model is None:
            return srsly.msgpack_dumps({"format": FORMAT_VERSION, "config": None})
        from safetensors.torch import save

        with tempfile.TemporaryDirectory() as tmp:
            self.tokenizer.save_pretrained(tmp)
            tokenizer_files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
        # Hugging Face naming, as `ModernBertModel.save_pretrained` writes it
        state = {k: v.cpu() for k, v in self._model.to_hf_state_dict().items()}
        msg = {
            "format": FORMAT_VERSION,
            "config": self._model.hf_config.to_dict(),
            "tokenizer": tokenizer_files,
            "state": save(state),
        }
        return srsly.msgpack_dumps(msg)

    def from_bytes(self, bytes_data: bytes) -> "ModernBertShim":
        from safetensors.torch import load
        from transformers import ModernBertConfig  # the config class only: no modeling code

        try:
            msg = srsly.msgpack_loads(bytes_data)
            if not isinstance(msg, dict) or msg.get("format") != FORMAT_VERSION:
                raise ValueError("not a spacy-modernbert encoder")
        except Exception as err:
            raise CheckpointError(
                f"The transformer model file of this pipeline is unreadable or truncated ({err})."
            ) from err
        if msg.get("config") is None:
            self._model = None
            return self
        # A pipeline is input from a stranger: nothing written to disk, no stored name used
        # as a path, sizes checked before allocation, weights finite (see safe_load).
        try:
            config = ModernBertConfig.from_dict(safe_load.check_config_dict(msg["config"]))
        except (TypeError, ValueError, AttributeError) as err:
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(
                f"The model config stored in this pipeline is invalid ({err})."
            ) from err
        config.reference_compile = False
        tokenizer = safe_load.tokenizer_from_entries(msg.get("tokenizer"))
        validate_tokenizer(tokenizer, config, "<pipeline>")
        header = safe_load.read_safetensors_header(msg.get("state"))
        safe_load.check_state_matches(header, safe_load.expected_state_shapes(config))
        try:
            state = load(msg["state"])
        except Exception as err:
            raise CheckpointError(
                f"The encoder weights stored in this pipeline are corrupt: {err}"
            ) from err
        safe_load.check_finite_state(state)
        encoder = build_encoder(config, state, "<pipeline>")
        encoder.hf_config = config
        self.set_model(encoder, tokenizer)
        return self


def step_in_place(shim: PyTorchShim, optimizer: Optimizer) -> None:
    """thinc's `PyTorchShim.finish_update` (same optimizer keys, same skip on overflowed
    gradients, gradients zeroed), but each parameter keeps its tensor: thinc's optimizers
    update the numpy/cupy view of it in place, and a result in new memory is copied in."""
    import torch

    for name, param in shim._model.named_parameters():
        if param.grad is None:
            continue
        if not shim._grad_scaler.found_inf:
            weights, _ = optimizer(
                (shim.id, name),
                torch2xp(param.data),
                torch2xp(param.grad),
                lr_scale=getattr(shim, "learn_rate_scale", 1.0),
            )
            updated = xp2torch(weights, device=param.device)
            if updated.data_ptr() != param.data_ptr():
                with torch.no_grad():
                    param.copy_(updated)
            del weights, updated
        param.grad.zero_()
    shim._grad_scaler.update()
