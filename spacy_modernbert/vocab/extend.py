"""Extend a checkpoint's vocabulary: new BPE tokens (bpe.py), grown embeddings, a new checkpoint.

The output is a plain Hugging Face checkpoint (config.json with the new vocab_size,
model.safetensors, the tokenizer files) plus `vocab_extension.json` (what was added and
from which pieces), so `pretrain`, `init-model` users and `components.transformer.model.name`
take it as it is. Weights are read without unpickling (the project's own readers) and
every tensor indexed by token id grows: the input embeddings, and the MLM decoder's
weight (its own rows when untied, the embedding's when tied) and bias.

Initialisation of a new row: "mean" (default) averages the rows of the base pieces that
spelled the same bytes, so the model starts from its own view of the term; "contextual"
takes the base encoder's final hidden states for the term where it occurs in TEXT, mapped
onto the rows' distribution (contextual.py; the decoder bias is the pieces' mean); "random"
draws as Hugging Face initialises ModernBERT (truncated normal, `initializer_range`; bias 0).
Rows of tokens that existed keep their values bit for bit.
"""

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from wasabi import msg

from ..encoder.leading_space import as_the_pipeline_reads
from . import VocabError
from .bpe import BpeExtension, pieces_per_word, readable
from .contextual import ContextualStates, contextual_states, to_rows

INITS = ("mean", "contextual", "random")
EMBEDDING_KEYS = ("model.embeddings.tok_embeddings.weight", "embeddings.tok_embeddings.weight")
RECORD_FILE = "vocab_extension.json"
TOKENIZER_FILES = ("tokenizer.json",)
STALE_TOKENIZER_FILES = (
    "vocab.json",
    "merges.txt",
)  # slow-tokenizer copies the new merges would contradict


def check_output(output: Path, overwrite: bool) -> None:
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise VocabError(f"--output '{output}' is a file, not a directory.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise VocabError(
            f"--output '{output}' is not empty; choose a new directory or pass --overwrite to replace it."
        )


def load_base(base: str):
    """(config, tokenizer, checkpoint directory) of BASE, with a clear error when it has no tokenizer."""
    from ..encoder.checkpoint import _hub_snapshot, _is_local, load_config, load_tokenizer

    config = load_config(base)
    path = Path(str(base)).expanduser() if _is_local(base) else _hub_snapshot(base)
    if not any(
        (path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")
    ):
        raise VocabError(
            f"'{base}' has no tokenizer (no tokenizer.json): extend-vocab grows a checkpoint's own tokenizer. Save the tokenizer the model was trained with into '{base}' first."
        )
    return config, load_tokenizer(base, config), path


def grow_rows(
    matrix: Any,
    new_ids: Sequence[int],
    pieces: Sequence[Sequence[int]],
    init: str,
    std: float,
    size: int,
    generator: Any,
    contextual: Optional[ContextualStates] = None,
) -> Any:
    """`matrix` (rows = token ids, or a bias vector) with `size` rows and the rows of `new_ids` initialised.

    init "contextual" needs `contextual` (the states of `new_ids`, in order); a bias vector has
    no hidden-state counterpart and takes the mean of its pieces.
    """
    import torch

    old = matrix.shape[0]
    out = (
        torch.cat([matrix, matrix.new_zeros((size - old,) + tuple(matrix.shape[1:]))])
        if size > old
        else matrix.clone()
    )
    if init == "contextual" and matrix.dim() == 2:
        if contextual is None:
            raise ValueError("init 'contextual' needs the contextual states of the new tokens")
        out[list(new_ids)] = to_rows(contextual, matrix)
        return out
    for new_id, ids in zip(new_ids, pieces):
        if init in ("mean", "contextual"):
            out[new_id] = matrix[list(ids)].float().mean(0).to(matrix.dtype)
        elif matrix.dim() == 1:
            out[new_id] = 0.0
        else:
            row = torch.empty(matrix.shape[1:], dtype=torch.float32)
            torch.nn.init.trunc_normal_(
                row, mean=0.0, std=std, a=-2 * std, b=2 * std, generator=generator
            )
            out[new_id] = row.to(matrix.dtype)
    return out


def grow_state(
    state: Dict[str, Any],
    config: Any,
    new_ids: List[int],
    pieces: List[List[int]],
    init: str,
    size: int,
    seed: int,
    name: str,
    contextual: Optional[ContextualStates] = None,
) -> Dict[str, Any]:
    """The checkpoint's tensors with every token-indexed one grown to `size` rows."""
    import math

    import torch

    key = next((k for k in EMBEDDING_KEYS if k in state), None)
    if key is None:
        raise VocabError(
            f"Checkpoint '{name}' has no token embedding matrix ({' or '.join(EMBEDDING_KEYS)})."
        )
    if state[key].shape[0] != config.vocab_size:
        raise VocabError(
            f"Checkpoint '{name}': the embedding has {state[key].shape[0]} rows but config.json says vocab_size {config.vocab_size}."
        )
    generator = torch.Generator().manual_seed(seed)
    std = float(getattr(config, "initializer_range", 0.02))
    out = dict(state)
    out[key] = grow_rows(state[key], new_ids, pieces, init, std, size, generator, contextual)
    tied = bool(getattr(config, "tie_word_embeddings", True))
    if "decoder.weight" in state:
        out_std = std / math.sqrt(2.0 * config.num_hidden_layers)
        out["decoder.weight"] = (
            out[key].clone()
            if tied
            else grow_rows(
                state["decoder.weight"], new_ids, pieces, init, out_std, size, generator, contextual
            )
        )
    if "decoder.bias" in state:
        out["decoder.bias"] = grow_rows(
            state["decoder.bias"], new_ids, pieces, init, std, size, generator
        )
    return out


def select(
    ext: BpeExtension,
    texts: Sequence[str],
    terms: Sequence[str],
    max_new: int,
    min_freq: int,
    max_words: int = 1,
    multi_word_share: float = 1.0,
) -> List[str]:
    """Add the user's terms (all of them, or an error) or else the mined words (and with
    `max_words` > 1 runs of up to that many words, on at most `multi_word_share` of the
    `max_new` new entries); the terms added."""
    if terms:
        tokens = list(dict.fromkeys(ext.term_token(t, max_words) for t in terms))
        todo = [t for t in tokens if len(ext.current_pieces(t)) > 1]
        if len(todo) < len(tokens):
            msg.info(f"{len(tokens) - len(todo)} term(s) are already one token; kept as they are")
        added = ext.add_words(todo, max_new)
        if len(added) < len(todo):
            raise VocabError(
                f"The {len(todo)} terms need more than --max-new {max_new} new tokens (intermediate merges included); raise --max-new or shorten the list."
            )
        return added
    msg.info(f"Counting words in {len(texts)} documents")
    counts = ext.count(texts, max_words)
    candidates = ext.mine(counts, min_freq)
    unit = "words" if max_words < 2 else f"terms of up to {max_words} words"
    msg.info(
        f"{len(counts)} distinct {unit}, {len(candidates)} split into 2+ pieces and seen >= {min_freq} times"
    )
    cap = None if multi_word_share >= 1 or max_words < 2 else int(multi_word_share * max_new)
    return ext.add_words(
        [c[0] for c in candidates],
        max_new,
        progress=lambda n: msg.text(f"  {n} words added"),
        multi_word_rows=cap,
    )


def extend_vocab(
    base: str,
    texts: Sequence[str],
    output: Union[str, Path],
    *,
    max_new: int = 2000,
    min_freq: int = 5,
    terms: Sequence[str] = (),
    init: str = "mean",
    max_vocab: Optional[int] = None,
    seed: int = 0,
    overwrite: bool = False,
    max_words: int = 1,
    multi_word_share: float = 1.0,
) -> Dict[str, Any]:
    """Write BASE with up to `max_new` new tokens to `output`; returns the summary (also in vocab_extension.json)."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    from ..encoder.checkpoint import load_checkpoint, read_state_dict, weight_files

    if init not in INITS:
        raise VocabError(f"--init must be one of {', '.join(INITS)}, not {init!r}.")
    if max_new < 1 or min_freq < 1 or max_words < 1:
        raise VocabError(
            f"--max-new, --min-freq and --max-words-per-term must be at least 1 (got {max_new}, {min_freq} and {max_words})."
        )
    if not 0.0 <= multi_word_share <= 1.0:
        raise VocabError(
            f"--multi-word-share must be between 0 and 1 (the fraction of --max-new rows multi-word terms may take), not {multi_word_share}."
        )
    if not texts and not terms:
        raise VocabError(
            "Nothing to mine: pass TEXT files, or a --terms file with one term per line."
        )
    output = Path(output)
    check_output(output, overwrite)
    # mined, read in context and measured as the pipeline reads each document
    texts = as_the_pipeline_reads(texts)
    config, tokenizer, path = load_base(base)
    ext = BpeExtension(tokenizer, base)
    old_rows = int(config.vocab_size)
    ext.require_multi_word(max_words)
    added = select(ext, texts, terms, max_new, min_freq, max_words, multi_word_share)
    size = max(old_rows, ext.next_id)
    if max_vocab is not None and size > max_vocab:
        fits = max(0, max_vocab - ext.base_size)
        raise VocabError(
            f"{len(ext.new_tokens)} new tokens give a vocabulary of {size} rows, beyond --max-vocab {max_vocab}; lower --max-new to at most {fits} or raise --max-vocab."
        )
    if not ext.new_tokens:
        raise VocabError(
            "No word qualifies: every word is already one token or rarer than --min-freq; lower --min-freq or pass --terms."
        )
    new_backend = Tokenizer.from_str(ext.to_json())
    ext.check(new_backend)
    msg.info(
        f"Adding {len(ext.new_tokens)} tokens ({len(added)} terms, {len(ext.superwords)} of them multi-word; {len(ext.new_tokens) - sum(t.word for t in ext.new_tokens)} intermediate merges); embedding rows {old_rows} -> {size}, init {init}"
    )

    contextual = None
    if init == "contextual":
        encoder, _ = load_checkpoint(base)
        msg.info(f"Encoding the {len(ext.new_tokens)} new tokens in context with '{base}'")
        contextual = contextual_states(
            encoder, tokenizer, ext.new_tokens, texts, pre_tokenizer=new_backend.pre_tokenizer
        )
        msg.text(
            f"  {contextual.from_text} read where they occur in TEXT, {len(ext.new_tokens) - contextual.from_text} alone"
        )
        del encoder
    state = read_state_dict(weight_files(path, base), base)
    ids = [t.id for t in ext.new_tokens]
    grown = grow_state(
        state,
        config,
        ids,
        [t.pieces for t in ext.new_tokens],
        init,
        size,
        seed,
        str(base),
        contextual,
    )
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    tokenizer.save_pretrained(str(output))
    for stale in STALE_TOKENIZER_FILES:
        (output / stale).unlink(missing_ok=True)
    new_backend.save(str(output / "tokenizer.json"))
    config.vocab_size = size
    config.save_pretrained(str(output))
    save_file(
        {k: v.contiguous() for k, v in grown.items()},
        str(output / "model.safetensors"),
        metadata={"format": "pt"},
    )

    # The output must load through the project's own loader, and the new tokens must be used.
    _, new_tok = load_checkpoint(str(output))
    summary = _summary(ext, tokenizer, new_tok, texts, base, init, old_rows, size, len(added))
    summary["max_words_per_term"] = max_words
    summary["multi_word_share"] = multi_word_share
    (output / RECORD_FILE).write_text(
        json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf8"
    )
    msg.good(
        f"Wrote {output}: {summary['pieces_per_word_after']} pieces per word on TEXT (was {summary['pieces_per_word_before']})"
        if texts
        else f"Wrote {output}"
    )
    return summary


def _summary(
    ext: BpeExtension,
    base_tok: Any,
    new_tok: Any,
    texts: Sequence[str],
    base: str,
    init: str,
    old_rows: int,
    size: int,
    n_words: int,
) -> Dict[str, Any]:
    sample = list(texts[:20000])
    before, words = pieces_per_word(base_tok, sample)
    after, _ = pieces_per_word(new_tok, sample)
    for text in sample[:2000]:
        ids = new_tok(text, add_special_tokens=False)["input_ids"]
        if new_tok.decode(ids) != base_tok.decode(
            base_tok(text, add_special_tokens=False)["input_ids"]
        ):
            raise VocabError(
                f"Internal error: the extended tokenizer does not round-trip {text[:60]!r}; please report it."
            )
    first_new = ext.base_size
    used = (
        sum(
            i >= first_new
            for ids in new_tok(sample, add_special_tokens=False)["input_ids"]
            for i in ids
        )
        if sample
        else 0
    )
    return {
        "base": str(base),
        "init": init,
        "embedding_rows": [old_rows, size],
        "new_tokens": len(ext.new_tokens),
        "new_words": n_words,
        "multi_word_terms": len(ext.superwords),
        "new_merges": len(ext.new_merges),
        "pieces_per_word_before": round(before / words, 4) if words else None,
        "pieces_per_word_after": round(after / words, 4) if words else None,
        "new_token_uses_in_text": used,
        "tokens": [
            {"id": t.id, "text": readable(t.token), "pieces": t.pieces, "word": t.word}
            for t in ext.new_tokens
        ],
    }
