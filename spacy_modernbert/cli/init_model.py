"""`python -m spacy_modernbert init-model`: write the tiny offline ModernBERT checkpoint."""
from pathlib import Path
from typing import List, Optional

from wasabi import msg


def init_model_cli(
    output_dir: Path,
    text: Optional[List[Path]] = None,
    vocab_size: int = 2048,
    hidden_size: int = 64,
    num_hidden_layers: int = 4,
    num_attention_heads: int = 4,
    intermediate_size: int = 96,
    local_attention: int = 16,
    seed: int = 0,
    for_base: Optional[str] = None,
) -> Optional[Path]:
    """Create a random-weight ModernBERT checkpoint with a BPE tokenizer trained on `text`.

    text: files or directories (.txt lines, .jsonl with a "text" field, or .spacy corpora) to train the
    tokenizer on; a little built-in English is always added.
    for_base: the pipeline's base model (a weasel var); when it is not `output_dir`, the
    tiny checkpoint is not needed and nothing is written.
    """
    from ..encoder.tiny import create_tiny_checkpoint

    if for_base is not None and Path(for_base).resolve() != Path(output_dir).resolve():
        msg.info(f"Base model is '{for_base}', not the embedded tiny default: nothing to create")
        return None

    msg.info(f"Training a byte-level BPE tokenizer (vocab <= {vocab_size}) and random ModernBERT weights")
    out = create_tiny_checkpoint(
        output_dir,
        text,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        local_attention=local_attention,
        seed=seed,
    )
    msg.good(f"Wrote tiny ModernBERT checkpoint to {out}")
    return out
