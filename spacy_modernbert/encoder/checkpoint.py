"""Loading and validating ModernBERT checkpoints, with errors a user can act on.

The same `from_pretrained` calls serve a hub id (`answerdotai/ModernBERT-base`) and a
local checkpoint directory (our tiny offline checkpoint included): nothing here fakes
the loading path.
"""

import json
import warnings
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

from .errors import (
    ATTN_IMPLEMENTATIONS,
    MAX_MODERNBERT_LENGTH,
    CheckpointError,
    UnsupportedConfigError,
)
from .safe_load import check_checkpoint_size, check_finite_state, check_tokenizer_fits

__all__ = ["ATTN_IMPLEMENTATIONS", "MAX_MODERNBERT_LENGTH", "CheckpointError", "load_checkpoint"]


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
            raise CheckpointError(
                f"Could not read the config of checkpoint '{name}': {err}"
            ) from err
        if not _hub_reachable():
            raise _offline_error(name) from err
        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        except OSError as err2:
            raise _offline_error(name) from err2
    except Exception as err:  # ValueError, or transformers 5.x's config validation errors
        raise CheckpointError(
            f"Checkpoint '{name}' has an unreadable or inconsistent config: {err}"
        ) from err
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
        tokenizer = AutoTokenizer.from_pretrained(
            source, use_fast=True, trust_remote_code=False
        )  # never prompt
    except Exception as err:  # transformers raises OSError, ValueError, or tokenizers errors
        if "trust_remote_code" in str(err):
            raise CheckpointError(
                f"The tokenizer of checkpoint '{name}' asks to run code shipped with the checkpoint "
                "(auto_map / a custom tokenizer_class). spacy-modernbert never runs checkpoint code: "
                "use a checkpoint whose tokenizer is a plain tokenizer.json (PreTrainedTokenizerFast)."
            ) from err
        raise CheckpointError(
            f"Could not load the tokenizer of checkpoint '{name}': {err}"
        ) from err
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
    check_tokenizer_fits(tokenizer, config, name)
    cap = min(
        MAX_MODERNBERT_LENGTH,
        int(getattr(config, "max_position_embeddings", MAX_MODERNBERT_LENGTH)),
    )
    if tokenizer.model_max_length is None or tokenizer.model_max_length > cap:
        tokenizer.model_max_length = cap


SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
TORCH_BIN, TORCH_BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
# Weights of task heads around the encoder (ModernBertForMaskedLM, ...ForSequenceClassification,
# ...ForTokenClassification): known, and not ours to load.
HEAD_PREFIXES = ("head.", "decoder.", "classifier.", "drop.")


def weight_files(path: Path, name: Union[str, Path]) -> List[Path]:
    """The checkpoint's weight files: safetensors (single or sharded) before pytorch .bin.

    A sharded checkpoint's index names its shards: only plain file names inside the
    checkpoint directory are accepted (the directory may come from a stranger).
    """
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (TORCH_BIN, TORCH_BIN_INDEX)):
        if (path / single).is_file():
            return [path / single]
        if (path / index).is_file():
            try:
                weight_map = json.loads((path / index).read_text(encoding="utf8"))["weight_map"]
                shards = sorted(set(weight_map.values()))
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise CheckpointError(
                    f"The shard index '{index}' of checkpoint '{name}' is unreadable ({err})."
                ) from err
            for shard in shards:
                if (
                    not isinstance(shard, str)
                    or Path(shard).name != shard
                    or shard in ("", ".", "..")
                ):
                    raise CheckpointError(
                        f"The shard index '{index}' of checkpoint '{name}' names '{shard}', which is not "
                        "a file name inside the checkpoint directory; refusing to read it."
                    )
                if not (path / shard).is_file():
                    raise CheckpointError(
                        f"Checkpoint '{name}' lists the shard '{shard}' in '{index}' but the file is missing: "
                        "the download is incomplete."
                    )
            return [path / shard for shard in shards]
    found = sorted(p.name for p in path.iterdir())[:10]
    raise CheckpointError(
        f"Checkpoint '{name}' has no weights: expected {SAFETENSORS}, {SAFETENSORS_INDEX}, {TORCH_BIN} or "
        f"{TORCH_BIN_INDEX} (found {found})."
    )


def read_state_dict(files: List[Path], name: Union[str, Path]) -> Dict[str, Any]:
    """Read every tensor of the weight files onto the CPU (pytorch files without unpickling code)."""
    import torch

    state: Dict[str, Any] = {}
    for file in files:
        try:
            if file.name.endswith(".safetensors"):
                from safetensors.torch import load_file

                part = load_file(str(file), device="cpu")
            else:
                part = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:  # safetensors / torch raise their own error types
            raise CheckpointError(
                f"The weights file '{file.name}' of checkpoint '{name}' could not be read "
                f"({type(err).__name__}: {err}); the file is probably truncated or corrupt: "
                "download or re-create the checkpoint."
            ) from err
        if not isinstance(part, dict):
            raise CheckpointError(f"'{file.name}' of checkpoint '{name}' holds no state dict.")
        state.update(part)
    return state


def encoder_state_dict(state: Dict[str, Any]) -> Tuple[Dict[str, Any], str, List[str]]:
    """Map the known layouts to `ModernBertModel` names: (encoder weights, layout, heads dropped).

    `ModernBertModel` and our pipelines store the encoder's names bare; the task models
    (`ModernBertForMaskedLM`, ...) prefix them with `model.` and add head weights.
    """
    if any(k.startswith("model.") for k in state):
        encoder = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
        others = [k for k in state if not k.startswith("model.")]
        layout = "task model (model.* + head)"
    else:
        encoder = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
        others = [k for k in state if k.startswith(HEAD_PREFIXES)]
        layout = "ModernBertModel"
    heads = [k for k in others if k.startswith(HEAD_PREFIXES)]
    encoder.update(
        {k: state[k] for k in others if k not in heads}
    )  # unknown: reported as unexpected
    return encoder, layout, heads


def build_encoder(
    config: Any, state: Dict[str, Any], name: Union[str, Path], layout: str = "ModernBertModel"
) -> Any:
    """Our `ModernBertEncoder` from HF-named weights, refusing anything that does not fit.

    Missing weights and shape mismatches raise `CheckpointError` naming the first keys and
    the likely cause; extra weights are listed in one warning and ignored; fp16 / bf16
    weights are cast to fp32.
    """
    from .modules import EncoderConfig, ModernBertEncoder, check_hf_state_dict

    try:
        cfg = EncoderConfig.from_hf_config(config)
    except UnsupportedConfigError as err:
        raise CheckpointError(
            f"Checkpoint '{name}' has a config this encoder cannot run: {err}"
        ) from err
    problems = check_hf_state_dict(cfg, state)
    expected = len(problems.missing) + len(state) - len(problems.unexpected)
    if problems.missing:
        first = ", ".join(problems.missing[:5])
        if len(problems.missing) == expected:
            found = ", ".join(sorted(state)[:5]) or "nothing"
            cause = (
                f"none of the encoder's weight names is in the checkpoint (it has: {found}): the keys were "
                "renamed or prefixed, or these are not ModernBERT weights"
            )
        else:
            cause = (
                "the checkpoint is incomplete (a layer's weights removed, or a partial download), or "
                f"config.json (num_hidden_layers = {cfg.num_hidden_layers}) does not describe these weights"
            )
        raise CheckpointError(
            f"Checkpoint '{name}' ({layout} layout) lacks {len(problems.missing)} of the "
            f"{expected} encoder weights (first: {first}): {cause}. Refusing to fill them with random values."
        )
    if problems.mismatched:
        shown = "; ".join(
            f"{k} is {got}, config needs {want}" for k, got, want in problems.mismatched[:3]
        )
        cause = "config.json does not describe these weights"
        emb = dict((k, (got, want)) for k, got, want in problems.mismatched).get(
            "embeddings.tok_embeddings.weight"
        )
        if emb is not None and emb[0][1:] == emb[1][1:]:
            cause = (
                f"config.json's vocab_size ({cfg.vocab_size}) differs from the {emb[0][0]} rows of the "
                "embedding matrix: config and weights come from different models"
            )
        raise CheckpointError(
            f"Checkpoint '{name}' has {len(problems.mismatched)} weight(s) with the wrong shape ({shown}): {cause}."
        )
    if problems.unexpected:
        warnings.warn(
            f"Checkpoint '{name}' has {len(problems.unexpected)} weight(s) the encoder does not use, ignored: "
            f"{', '.join(problems.unexpected[:10])}{' ...' if len(problems.unexpected) > 10 else ''}",
            stacklevel=2,
        )
        state = {k: v for k, v in state.items() if k not in set(problems.unexpected)}
    return ModernBertEncoder.from_hf_state_dict(cfg, state)


def random_encoder(config: Any) -> Any:
    """An encoder with freshly initialized weights (Hugging Face's initialization), for
    training from scratch: only reached when the user asks for it (`from_scratch = true`)."""
    from transformers import ModernBertModel

    from .modules import ModernBertEncoder

    config.reference_compile = False
    return ModernBertEncoder.from_hf_model(ModernBertModel(config))


def load_weights(name: Union[str, Path], config: Any) -> Any:
    """Read a checkpoint's weights (never by unpickling) into our `ModernBertEncoder`."""
    path = Path(str(name)).expanduser()
    if not _is_local(name):
        path = _hub_snapshot(name)
    files = weight_files(path, name)
    state, layout, heads = encoder_state_dict(read_state_dict(files, name))
    return build_encoder(config, state, name, layout)


def _hub_snapshot(name: Union[str, Path]) -> Path:
    """The local snapshot of a hub checkpoint (config already resolved): its weight files."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors"]
    try:
        return Path(snapshot_download(str(name), allow_patterns=patterns, local_files_only=True))
    except Exception:
        if not _hub_reachable():
            raise _offline_error(name) from None
    try:
        return Path(snapshot_download(str(name), allow_patterns=patterns))
    except Exception as err:
        raise CheckpointError(f"Could not download the weights of '{name}': {err}") from err


def load_checkpoint(
    name: Union[str, Path], attn_implementation: str = "sdpa", from_scratch: bool = False
) -> Tuple[Any, Any]:
    """Load (our ModernBertEncoder, fast tokenizer) from a hub id or local directory.

    The encoder carries the transformers config it was read with as `encoder.hf_config`
    (serialized with the pipeline). `from_scratch` skips the weights: random initialization.
    """
    config = load_config(name)
    config.reference_compile = False
    tokenizer = load_tokenizer(name, config)
    if from_scratch:
        encoder = random_encoder(config)
    else:
        check_checkpoint_size(name, config)  # a config that does not fit its files
        encoder = load_weights(name, config)
        check_finite_state(encoder.to_hf_state_dict(), f"checkpoint '{name}'")
    encoder.hf_config = config
    return encoder, tokenizer
