"""Checks on data read from a pipeline: a pipeline directory is input from a stranger.

Invariants, whatever the bytes say (issue 14):

* nothing is written to disk and no stored string becomes a file path: the tokenizer is
  built in memory (`tokenizers.Tokenizer.from_str` + `PreTrainedTokenizerFast`), from an
  allowlist of entry names and of tokenizer settings (no `*_file` setting, no `auto_map`,
  no tokenizer class other than `PreTrainedTokenizerFast`, so no remote code);
* nothing is allocated before its size is checked against the bytes that back it: the
  model config's sizes are bounded, the safetensors header is parsed and checked against
  the buffer, and the tensors the config implies (shapes of our own `modules.py` taken on
  the meta device, no memory; transformers' modeling code is never imported) must be
  exactly the stored ones;
* stored weights are finite;
* no pickle, no `torch.load`, no `eval`, `trust_remote_code` never set.

Every refusal is a `CheckpointError` naming the entry or field. No torch import at module
level (this module is imported by light code paths).
"""

import json
import math
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import CheckpointError, UnsupportedConfigError

# What `PreTrainedTokenizerFast.save_pretrained` writes (and nothing else is read).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
MAX_TOKENIZER_ENTRIES = len(TOKENIZER_FILES)
# ModernBERT-base's tokenizer.json is 3.6 MB; the largest multilingual ones ~20 MB.
MAX_TOKENIZER_FILE_BYTES = 64 * 1024 * 1024
# Tokenizer settings that name files, code or objects: never taken from stored data.
_REFUSED_TOKENIZER_KEYS = (
    "auto_map",
    "tokenizer_object",
    "__slow_tokenizer",
    "from_slow",
    "init_inputs",
    "trust_remote_code",
)
_TOKENIZER_CLASSES = (None, "PreTrainedTokenizerFast")
_SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)
_ADDED_TOKEN_FIELDS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")

# Upper bounds of the ModernBERT config fields that size tensors (ModernBERT-large: 28
# layers, hidden 1024, intermediate 2624, 50368 rows, 8192 positions).
CONFIG_BOUNDS = {
    "vocab_size": 1 << 21,
    "hidden_size": 1 << 15,
    "intermediate_size": 1 << 17,
    "num_hidden_layers": 1024,
    "num_attention_heads": 1024,
    "max_position_embeddings": 1 << 20,
    "global_attn_every_n_layers": 1024,
    "local_attention": 1 << 20,
}
MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}

WHERE = "the transformer model file of this pipeline"


def check_entry_name(
    name: Any, allowed: Tuple[str, ...] = TOKENIZER_FILES, where: str = WHERE
) -> str:
    """A stored file name must be one of `allowed`: never a path (no separator, `..`, NUL)."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(
            f"{where} holds a tokenizer entry with an empty or non-text name ({name!r})."
        )
    if "\x00" in name or "/" in name or "\\" in name or name in (".", "..") or ":" in name:
        raise CheckpointError(
            f"{where} holds a tokenizer entry named {name!r}, which is a path, not a file name: "
            "refused (a pipeline must never make the loader write or read outside it). "
            "Only load pipelines from sources you trust; re-save this one from its training run."
        )
    if name not in allowed:
        raise CheckpointError(
            f"{where} holds an unexpected tokenizer entry {name!r}; the allowed entries are {list(allowed)}."
        )
    return name


def check_tokenizer_entries(entries: Any, where: str = WHERE) -> Dict[str, bytes]:
    """Validate the stored {file name: bytes} of the tokenizer: names, count and sizes."""
    if not isinstance(entries, Mapping):
        raise CheckpointError(f"{where} has no tokenizer entries (found {type(entries).__name__}).")
    if len(entries) > MAX_TOKENIZER_ENTRIES:
        raise CheckpointError(
            f"{where} holds {len(entries)} tokenizer entries; at most {MAX_TOKENIZER_ENTRIES} "
            f"({', '.join(TOKENIZER_FILES)}) are allowed."
        )
    checked = {}
    for name, data in entries.items():
        check_entry_name(name, where=where)
        if not isinstance(data, (bytes, bytearray)):
            raise CheckpointError(f"{where}: tokenizer entry {name!r} is not bytes.")
        if len(data) > MAX_TOKENIZER_FILE_BYTES:
            raise CheckpointError(
                f"{where}: tokenizer entry {name!r} is {len(data)} bytes, over the "
                f"{MAX_TOKENIZER_FILE_BYTES} byte limit."
            )
        checked[name] = bytes(data)
    if "tokenizer.json" not in checked:
        raise CheckpointError(
            f"{where} has no tokenizer.json entry (a fast tokenizer is required)."
        )
    return checked


def _json_entry(entries: Dict[str, bytes], name: str, where: str) -> Optional[Dict[str, Any]]:
    if name not in entries:
        return None
    try:
        value = json.loads(entries[name].decode("utf8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(
            f"{where}: tokenizer entry {name!r} is not valid JSON ({err})."
        ) from err
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: tokenizer entry {name!r} must hold a JSON object.")
    return value


def _added_token(value: Any, field: str, where: str, special: Optional[bool] = None) -> Any:
    from tokenizers import AddedToken

    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        fields = {k: v for k, v in value.items() if k != "__type"}
        if special is not None:
            fields["special"] = special
        if (
            set(fields) <= set(_ADDED_TOKEN_FIELDS)
            and isinstance(fields.get("content"), str)
            and all(isinstance(fields[k], bool) for k in fields if k != "content")
        ):
            return AddedToken(**fields)
    raise CheckpointError(f"{where}: tokenizer setting {field!r} is not a token ({value!r:.80}).")


def _tokenizer_kwargs(entries: Dict[str, bytes], where: str) -> Dict[str, Any]:
    """The keyword arguments `from_pretrained` would derive from the stored configs.

    Mirrors `PreTrainedTokenizerBase._from_pretrained` (transformers 4.53) for a fast
    tokenizer, minus everything that reads files or code.
    """
    config = _json_entry(entries, "tokenizer_config.json", where) or {}
    for key in config:
        if (
            key in _REFUSED_TOKENIZER_KEYS
            and (key != "init_inputs" or config[key])
            or key.endswith("_file")
        ):
            raise CheckpointError(
                f"{where}: tokenizer_config.json sets {key!r}, which would make the loader read a file "
                "or run code named by the pipeline: refused. Only load pipelines from sources you trust."
            )
    tokenizer_class = config.pop("tokenizer_class", None)
    if tokenizer_class not in _TOKENIZER_CLASSES:
        raise CheckpointError(
            f"{where}: tokenizer_config.json asks for tokenizer_class {tokenizer_class!r}; "
            "ModernBERT pipelines use PreTrainedTokenizerFast."
        )
    config.pop("init_inputs", None)
    config.pop("name_or_path", None)
    decoder_entries = config.pop("added_tokens_decoder", None)
    added_tokens_map: Dict[str, Any] = {}
    added_tokens_decoder: Dict[int, Any] = {}
    if decoder_entries is not None:
        if not isinstance(decoder_entries, dict):
            raise CheckpointError(
                f"{where}: tokenizer_config.json's added_tokens_decoder must be an object."
            )
        for idx, token in decoder_entries.items():
            try:
                index = int(idx)
            except (TypeError, ValueError):
                raise CheckpointError(
                    f"{where}: added_tokens_decoder has a non-integer id {idx!r}."
                ) from None
            if not isinstance(token, dict):
                raise CheckpointError(f"{where}: added_tokens_decoder[{idx!r}] must be an object.")
            added = _added_token(token, f"added_tokens_decoder[{idx}]", where)
            added_tokens_decoder[index] = added
            added_tokens_map[str(added)] = added
    else:
        # transformers < 4.34 pipelines: special tokens from special_tokens_map.json
        special_map = _json_entry(entries, "special_tokens_map.json", where) or {}
        for key, value in special_map.items():
            if key in _SPECIAL_TOKEN_KEYS:
                config[key] = (
                    _added_token(value, key, where, special=True)
                    if isinstance(value, dict)
                    else value
                )
            elif key == "additional_special_tokens" and isinstance(value, list):
                extra = list(config.get("additional_special_tokens") or [])
                for token in value:
                    token = (
                        _added_token(token, key, where, special=True)
                        if isinstance(token, dict)
                        else token
                    )
                    if token not in extra:
                        extra.append(token)
                config[key] = extra
    for key in _SPECIAL_TOKEN_KEYS:
        if key in config and config[key] is not None:
            token = _added_token(config[key], key, where)
            config[key] = added_tokens_map.get(str(token), token)
    if "additional_special_tokens" in config:
        extra = config["additional_special_tokens"]
        if not isinstance(extra, list):
            raise CheckpointError(f"{where}: additional_special_tokens must be a list.")
        config["additional_special_tokens"] = [
            _added_token(t, "additional_special_tokens", where) for t in extra
        ]
    config["added_tokens_decoder"] = added_tokens_decoder
    return config


def tokenizer_from_entries(entries: Any, where: str = WHERE) -> Any:
    """Build the fast tokenizer from stored files, in memory: no disk, no code, no paths."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    entries = check_tokenizer_entries(entries, where)
    kwargs = _tokenizer_kwargs(entries, where)
    try:
        backend = Tokenizer.from_str(entries["tokenizer.json"].decode("utf8"))
    except Exception as err:  # tokenizers raises plain Exception subclasses
        raise CheckpointError(f"{where}: tokenizer.json is not a valid tokenizer ({err}).") from err
    try:
        return PreTrainedTokenizerFast(tokenizer_object=backend, name_or_path="", **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(
            f"{where}: the stored tokenizer settings are invalid ({err})."
        ) from err


def check_config_dict(config: Any, where: str = WHERE) -> Dict[str, Any]:
    """The stored Hugging Face config: a ModernBERT one with sizes inside `CONFIG_BOUNDS`."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{where} has no model config (found {type(config).__name__}).")
    if config.get("model_type") != "modernbert":
        raise CheckpointError(
            f"{where}: the stored config is a {config.get('model_type')!r} model, not ModernBERT."
        )
    for field, bound in CONFIG_BOUNDS.items():
        if field not in config:
            continue
        value = config[field]
        if isinstance(value, bool) or not isinstance(value, int) or not (0 <= value <= bound):
            raise CheckpointError(
                f"{where}: config field {field!r} = {value!r:.40} is not an integer in [0, {bound}]."
            )
    for field in (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
        "intermediate_size",
    ):
        if field in config and config[field] < 1:
            raise CheckpointError(
                f"{where}: config field {field!r} must be at least 1, got {config[field]}."
            )
    for field, value in config.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(
                f"{where}: config field {field!r} is {value}, not a finite number."
            )
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    if hidden and heads and hidden % heads:
        raise CheckpointError(
            f"{where}: config hidden_size {hidden} is not a multiple of num_attention_heads {heads}."
        )
    return config


def read_safetensors_header(
    data: Any, where: str = WHERE
) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
    """{tensor name: (dtype, shape)} of a safetensors buffer, checked against its length.

    Nothing is allocated: every declared tensor must fit in the bytes that follow the header.
    """
    if not isinstance(data, (bytes, bytearray)) or len(data) < 8:
        raise CheckpointError(f"{where}: the stored weights are missing or truncated.")
    n = int.from_bytes(data[:8], "little")
    body = len(data) - 8 - n
    if n > MAX_SAFETENSORS_HEADER_BYTES or body < 0:
        raise CheckpointError(
            f"{where}: the weights' header declares {n} bytes but only {len(data) - 8} follow; truncated or corrupt."
        )
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{where}: the weights' header is unreadable ({err}).") from err
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: the weights' header is not an object.")
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        ok = isinstance(info, dict) and info.get("dtype") in _DTYPE_BYTES
        shape = info.get("shape") if ok else None
        offsets = info.get("data_offsets") if ok else None
        ok = (
            ok
            and isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        )
        ok = (
            ok
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        )
        if not ok:
            raise CheckpointError(f"{where}: weight {name!r} has a malformed entry in the header.")
        start, end = offsets
        size = math.prod(shape) * _DTYPE_BYTES[info["dtype"]]
        if not (0 <= start <= end <= body) or end - start != size:
            raise CheckpointError(
                f"{where}: weight {name!r} declares shape {shape} ({size} bytes) but the file holds "
                f"{max(0, min(end, body) - max(start, 0))} bytes for it: truncated or corrupt."
            )
        tensors[name] = (info["dtype"], tuple(shape))
    return tensors


def expected_state_shapes(config: Any) -> Dict[str, Tuple[int, ...]]:
    """The state dict (HF names) our `ModernBertEncoder` of this transformers config has, with
    the shapes, built on the meta device (no memory, no transformers modeling code)."""
    from .modules import EncoderConfig, expected_hf_shapes

    try:
        return expected_hf_shapes(EncoderConfig.from_hf_config(config))
    except (UnsupportedConfigError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise CheckpointError(
            f"{WHERE}: the stored config cannot build a ModernBERT model ({type(err).__name__}: {err})."
        ) from err


def check_state_matches(
    header: Dict[str, Tuple[str, Tuple[int, ...]]],
    expected: Dict[str, Tuple[int, ...]],
    where: str = WHERE,
) -> None:
    """The stored tensors must be exactly the ones the config implies, with the same shapes."""
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: the stored weights do not match the stored config (missing: {missing[:5]}, "
            f"unexpected: {unexpected[:5]}); the file is corrupt or was edited."
        )
    for name, shape in expected.items():
        if header[name][1] != shape:
            raise CheckpointError(
                f"{where}: weight {name!r} has shape {list(header[name][1])} but the stored config "
                f"implies {list(shape)}; the file is corrupt or was edited."
            )


def check_finite_state(state: Mapping[str, Any], where: str = WHERE) -> None:
    """Refuse weights with NaN or infinity (e.g. saved after a diverged training run)."""
    import torch

    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{where}: weight {name!r} contains NaN or infinite values; the model diverged "
                "during training (a too high learn_rate?) or the file is corrupt. Retrain or "
                "use an earlier checkpoint (e.g. model-best)."
            )


def check_tokenizer_fits(tokenizer: Any, config: Any, name: Any) -> None:
    """A swapped tokenizer must not pass: special-token ids as in the model config, and
    the vocabulary covering the embedding matrix up to its padding (ModernBERT-base pads
    its 50,280 tokens to 50,368 rows; we allow 1% + 128 unused rows)."""
    for attr in ("cls_token_id", "sep_token_id", "pad_token_id"):
        expected = getattr(config, attr, None)
        actual = getattr(tokenizer, attr, None)
        if expected is not None and actual is not None and expected != actual:
            raise CheckpointError(
                f"The tokenizer of '{name}' has {attr} {actual} but the model was trained with "
                f"{expected}: tokenizer and weights do not belong together."
            )
    slack = config.vocab_size // 100 + 128
    if len(tokenizer) < config.vocab_size - slack:
        raise CheckpointError(
            f"The tokenizer of '{name}' has {len(tokenizer)} tokens but the model has "
            f"{config.vocab_size} embeddings (more than {slack} unused): tokenizer and weights do "
            "not belong together."
        )


WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def check_checkpoint_size(directory: Any, config: Any) -> None:
    """A local checkpoint's config must not declare more weights than its files hold.

    `from_pretrained` builds the model from the config before it reads the weights, so a
    config declaring a 40 GB model next to a 1 MB weights file would allocate 40 GB first.
    The declared size (meta device, no memory) must fit in the weight files, counting
    2 bytes per parameter (bf16/fp16 storage) at least.
    """
    from pathlib import Path

    path = Path(str(directory)).expanduser()
    if not path.is_dir():
        return  # a hub id: the files are not there yet
    stored = sum(
        p.stat().st_size
        for p in path.iterdir()
        if p.is_file() and p.name.endswith(WEIGHT_FILE_SUFFIXES)
    )
    declared = sum(math.prod(shape) for shape in expected_state_shapes(config).values())
    if stored and declared * 2 > stored * 1.05 + (1 << 20):
        raise CheckpointError(
            f"Checkpoint '{directory}': its config declares {declared:,} parameters (at least "
            f"{declared * 2:,} bytes) but its weight files hold {stored:,} bytes: the config does "
            "not belong to these weights, or the files are truncated."
        )
