"""The masked LM: our packed, unpadded encoder + ModernBERT's own MLM head.

`load_masked_lm` loads a checkpoint with `ModernBertForMaskedLM.from_pretrained`: a hub
(ForMaskedLM) checkpoint keeps its head; one without a head (`init-model` output, a bare
`ModernBertModel`) gets Hugging Face's own head initialization. The loading info is
checked: anything missing outside the head is an error, not a silent random init.

The encoder is touched only through the two adapter functions below (`packed_encoder`,
`encoder_state_dict`); everything else sees Hugging Face parameter names. The loss is
computed on the masked rows only (the encoder gathers them), like ModernBERT's
`sparse_prediction`.
"""

from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

HEAD_PREFIXES = ("head.", "decoder.")


# --- adapter: the only code that knows how the encoder is built and named ------------------
def packed_encoder(
    hf_model: nn.Module, mixed_precision: bool, gradient_checkpointing: bool
) -> nn.Module:
    """Our packed forward over our encoder modules, with the weights of a loaded `ModernBertModel`."""
    from ..encoder.modules import ModernBertEncoder
    from ..encoder.packed import PackedModernBert

    return PackedModernBert(
        ModernBertEncoder.from_hf_model(hf_model),
        attn_implementation="sdpa",
        mixed_precision=mixed_precision,
        gradient_checkpointing=gradient_checkpointing,
        hf_config=hf_model.config,
    )


def encoder_state_dict(encoder: nn.Module) -> Dict[str, torch.Tensor]:
    """The encoder's parameters under `ModernBertModel`'s names (Parameters, not copies)."""
    from ..encoder.modules import ours_to_hf_name

    return {ours_to_hf_name(k): v for k, v in encoder.encoder.state_dict(keep_vars=True).items()}


# ---------------------------------------------------------------------------------------------


class MaskedLM(nn.Module):
    """forward(packed ids, positions, lengths, masked rows, labels) -> summed cross-entropy."""

    def __init__(self, encoder: nn.Module, head: nn.Module, decoder: nn.Linear, config: Any):
        super().__init__()
        self.encoder, self.head, self.decoder, self.config = encoder, head, decoder, config
        if getattr(config, "tie_word_embeddings", True):
            self.decoder.weight = encoder_state_dict(encoder)["embeddings.tok_embeddings.weight"]

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        lengths: List[int],
        rows: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        groups = [(0, int(input_ids.shape[0]), list(lengths))]
        hidden = self.encoder(input_ids, position_ids, groups, rows)
        use_bf16 = getattr(self.encoder, "mixed_precision", False) and hidden.device.type == "cuda"
        with torch.autocast(device_type=hidden.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = self.decoder(self.head(hidden))
        return nn.functional.cross_entropy(logits.float(), labels, reduction="sum")

    def hf_state_dict(self) -> Dict[str, torch.Tensor]:
        """The `ModernBertForMaskedLM` state dict (detached), ready for `save_pretrained`."""
        state = {f"model.{k}": v.detach() for k, v in encoder_state_dict(self.encoder).items()}
        state.update({f"head.{k}": v.detach() for k, v in self.head.state_dict().items()})
        state.update({f"decoder.{k}": v.detach() for k, v in self.decoder.state_dict().items()})
        return state


def load_masked_lm(
    name: str, mixed_precision: bool = False, gradient_checkpointing: bool = False
) -> Tuple[MaskedLM, Any, Any, List[str]]:
    """(MaskedLM, tokenizer, the HF ForMaskedLM shell used to save, initialized head keys)."""
    from transformers import ModernBertForMaskedLM

    from ..encoder.checkpoint import CheckpointError, load_config, load_tokenizer

    config = load_config(name)
    config.reference_compile = False
    tokenizer = load_tokenizer(name, config)
    if tokenizer.mask_token_id is None:
        raise CheckpointError(
            f"The tokenizer of '{name}' has no [MASK] token: it cannot be pretrained as a masked LM."
        )
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # we report an initialized head ourselves, below
    try:
        hf, info = ModernBertForMaskedLM.from_pretrained(
            str(name),
            config=config,
            attn_implementation="sdpa",
            torch_dtype="float32",
            output_loading_info=True,
        )
    except Exception as err:  # OSError, or safetensors' own errors on corrupt files
        raise CheckpointError(
            f"Could not load the weights of checkpoint '{name}' ({type(err).__name__}: {err})."
        ) from err
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = [k for k in info["missing_keys"] if not k.startswith(HEAD_PREFIXES)]
    if missing or info.get("mismatched_keys"):
        raise CheckpointError(
            f"Checkpoint '{name}' lacks encoder weights ({', '.join((missing or [str(m) for m in info['mismatched_keys']])[:5])}): "
            "Hugging Face would initialize them randomly. Re-create or re-download the checkpoint."
        )
    initialized = [k for k in info["missing_keys"] if k.startswith(HEAD_PREFIXES)]
    encoder = packed_encoder(hf.model, mixed_precision, gradient_checkpointing)
    model = MaskedLM(encoder, hf.head, hf.decoder, config)
    return model, tokenizer, hf, initialized


def pack(windows: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor, List[int]]:
    """(ids, positions, lengths) of windows packed end to end (no padding)."""
    lengths = [len(w) for w in windows]
    ids = torch.tensor([t for w in windows for t in w], dtype=torch.long)
    positions = torch.cat([torch.arange(n) for n in lengths])
    return ids, positions, lengths
