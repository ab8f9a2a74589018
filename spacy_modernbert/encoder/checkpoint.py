"""Loading and validating ModernBERT checkpoints, with errors a user can act on.

The same `from_pretrained` calls serve a hub id (`answerdotai/ModernBERT-base`) and a
local checkpoint directory (our tiny offline checkpoint included): nothing here fakes
the loading path.
"""
from pathlib import Path
from typing import Any, Tuple, Union

# ModernBERT's tokenizer config has no model_max_length (it reads as 1e30).
MAX_MODERNBERT_LENGTH = 8192
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "varlen")


class CheckpointError(ValueError):
    """A checkpoint could not be used: missing, wrong model type, corrupt or inconsistent."""


def _is_local(name: Union[str, Path]) -> bool:
    text = str(name)
    return Path(text).expanduser().exists() or text.startswith((".", "/", "~")) or "\\" in text


def _hub_reachable() -> bool:
    """Fail fast (no minute of retries) when the hub's host does not even resolve."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _offline_error(name: Union[str, Path]) -> CheckpointError:
    return CheckpointError(
        f"Could not load '{name}': it is not a local directory, it is not in the local "
        "Hugging Face cache, and the hub cannot be reached (offline?). On a machine with "
        f"network, run `huggingface-cli download {name} --local-dir DIR`, then set "
        "`name = DIR` in [components.transformer.model] (or pass a local checkpoint path)."
    )


def load_config(name: Union[str, Path]) -> Any:
    """Load and validate a checkpoint's config: it must be a ModernBERT one."""
    from transformers import AutoConfig

    path = Path(str(name)).expanduser()
    if _is_local(name):
        if not path.is_dir():
            raise CheckpointError(
                f"ModernBERT checkpoint directory '{name}' does not exist. Pass an existing "
                "directory (e.g. one written by `python -m spacy_modernbert init-model DIR` "
                "or `save_pretrained`) or a Hugging Face hub id."
            )
        if not (path / "config.json").is_file():
            raise CheckpointError(
                f"'{name}' has no config.json, so it is not a Hugging Face checkpoint directory."
            )
        source = str(path)
    else:
        source = str(name)
    try:
        # A local directory or the local cache first; the hub only if the name is in neither.
        config = AutoConfig.from_pretrained(source, local_files_only=True, trust_remote_code=False)
    except OSError as err:
        if _is_local(name):
            raise CheckpointError(f"Could not read the config of checkpoint '{name}': {err}") from err
        if not _hub_reachable():
            raise _offline_error(name) from err
        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        except OSError as err2:
            raise _offline_error(name) from err2
    except ValueError as err:
        raise CheckpointError(f"Checkpoint '{name}' has an unreadable config: {err}") from err
    model_type = getattr(config, "model_type", None)
    if model_type != "modernbert":
        raise CheckpointError(
            f"Checkpoint '{name}' is a '{model_type}' model, not ModernBERT. "
            "spacy-modernbert.ModernBertTransformer.v1 only accepts model_type == 'modernbert'; "
            "use spacy-transformers.TransformerModel.v3 for other architectures."
        )
    return config


def load_tokenizer(name: Union[str, Path], config: Any) -> Any:
    """Load the fast tokenizer (offsets are needed for alignment) and cap its length."""
    from transformers import AutoTokenizer

    source = str(Path(str(name)).expanduser()) if _is_local(name) else str(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, trust_remote_code=False)  # never prompt
    except Exception as err:  # transformers raises OSError, ValueError, or tokenizers errors
        if "trust_remote_code" in str(err):
            raise CheckpointError(
                f"The tokenizer of checkpoint '{name}' asks to run code shipped with the checkpoint "
                "(auto_map / a custom tokenizer_class). spacy-modernbert never runs checkpoint code: "
                "use a checkpoint whose tokenizer is a plain tokenizer.json (PreTrainedTokenizerFast)."
            ) from err
        raise CheckpointError(f"Could not load the tokenizer of checkpoint '{name}': {err}") from err
    validate_tokenizer(tokenizer, config, name)
    return tokenizer


def validate_tokenizer(tokenizer: Any, config: Any, name: Union[str, Path]) -> None:
    """Check the tokenizer fits the model: fast, special tokens present, ids in vocabulary."""
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(
            f"Checkpoint '{name}' has no fast tokenizer (tokenizer.json); offsets are needed "
            "to align pieces with spaCy tokens."
        )
    for attr in ("cls_token_id", "sep_token_id"):
        if getattr(tokenizer, attr) is None:
            raise CheckpointError(f"The tokenizer of '{name}' defines no {attr[:-3]}.")
    if len(tokenizer) > config.vocab_size:
        raise CheckpointError(
            f"The tokenizer of '{name}' has {len(tokenizer)} tokens but the model's vocabulary "
            f"has only {config.vocab_size} embeddings: tokenizer and weights do not match."
        )
    from .safe_load import check_tokenizer_fits  # a smaller or swapped tokenizer

    check_tokenizer_fits(tokenizer, config, name)
    cap = min(MAX_MODERNBERT_LENGTH, int(getattr(config, "max_position_embeddings", MAX_MODERNBERT_LENGTH)))
    if tokenizer.model_max_length is None or tokenizer.model_max_length > cap:
        tokenizer.model_max_length = cap


def load_weights(name: Union[str, Path], config: Any, attn_implementation: str) -> Any:
    """Load ModernBertModel weights with `from_pretrained`; never compiles by surprise."""
    from transformers import ModernBertModel

    config.reference_compile = False
    source = str(Path(str(name)).expanduser()) if _is_local(name) else str(name)
    # Our packed forward does attention itself; HF only needs a valid padded backend.
    hf_attn = "eager" if attn_implementation == "eager" else "sdpa"
    try:
        model = ModernBertModel.from_pretrained(
            source, config=config, attn_implementation=hf_attn, torch_dtype="float32"
        )
    except OSError as err:
        raise CheckpointError(
            f"Could not load the weights of checkpoint '{name}': {err}. If the weights file is "
            "truncated or corrupt, download or re-create the checkpoint."
        ) from err
    except Exception as err:  # safetensors raises its own error types on corrupt files
        raise CheckpointError(
            f"The weights of checkpoint '{name}' could not be read ({type(err).__name__}: {err}); "
            "the file is probably truncated or corrupt."
        ) from err
    return model


def load_checkpoint(name: Union[str, Path], attn_implementation: str = "sdpa") -> Tuple[Any, Any]:
    """Load (ModernBertModel, fast tokenizer) from a hub id or local directory."""
    config = load_config(name)
    tokenizer = load_tokenizer(name, config)
    from transformers import ModernBertModel

    from .safe_load import check_checkpoint_size, check_finite_state

    check_checkpoint_size(name, ModernBertModel, config)  # before from_pretrained allocates
    model = load_weights(name, config, attn_implementation)
    check_finite_state(model.state_dict(), f"checkpoint '{name}'")
    return model, tokenizer
