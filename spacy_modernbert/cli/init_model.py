"""`python -m spacy_modernbert init-model`: write the tiny offline ModernBERT checkpoint.

The checkpoint's shape defaults are declared once, in `spacy_modernbert/tiny.py`, and shared by
this command and the test fixtures. The output follows the one overwrite rule
(`_util.check_output`): a non-empty OUTPUT_DIR needs --overwrite, and is replaced (as a whole)
only when it is a checkpoint directory (config.json), never one holding other files.
"""

from pathlib import Path
from typing import Any, List, Optional

import typer
from wasabi import msg

from .. import tiny
from ._util import app, prepare_output


@app.command("init-model")
def init_model_cli(
    # fmt: off
    output_dir: Path = typer.Argument(..., help="Directory to write the checkpoint to"),
    text: Optional[List[Path]] = typer.Option(
        None, "--text", "-t", help="Text, JSONL or .spacy files or dirs to train the tokenizer on"
    ),
    vocab_size: int = typer.Option(
        tiny.DEFAULT_VOCAB_SIZE, help="Tokenizer vocabulary size (upper bound)"
    ),
    hidden_size: int = typer.Option(tiny.DEFAULT_HIDDEN_SIZE, help="Hidden size"),
    num_hidden_layers: int = typer.Option(tiny.DEFAULT_NUM_HIDDEN_LAYERS, help="Number of layers"),
    num_attention_heads: int = typer.Option(
        tiny.DEFAULT_NUM_ATTENTION_HEADS, help="Attention heads"
    ),
    intermediate_size: int = typer.Option(
        tiny.DEFAULT_INTERMEDIATE_SIZE, help="MLP intermediate size"
    ),
    local_attention: int = typer.Option(
        tiny.DEFAULT_LOCAL_ATTENTION, help="Sliding-window width of local layers"
    ),
    seed: int = typer.Option(tiny.DEFAULT_SEED, help="Random seed for the weights"),
    for_base: Optional[str] = typer.Option(
        None, "--for-base", help="Only create it if this base model is OUTPUT_DIR"
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the checkpoint in OUTPUT_DIR"
    ),
    # fmt: on
) -> None:
    """Create the tiny offline ModernBERT checkpoint (random weights + trained BPE tokenizer)."""
    init_model(
        output_dir,
        text,
        for_base=for_base,
        overwrite=overwrite,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        local_attention=local_attention,
        seed=seed,
    )


def init_model(
    output_dir: Path,
    text: Optional[List[Path]] = None,
    *,
    for_base: Optional[str] = None,
    overwrite: bool = False,
    **shape: Any,
) -> Optional[Path]:
    """Create a random-weight ModernBERT checkpoint with a BPE tokenizer trained on `text`.

    output_dir (Path): the checkpoint directory to write.
    text (Optional[List[Path]]): files or directories (.txt lines, .jsonl with a "text"
        field, or .spacy corpora) to train the tokenizer on; a little built-in English is
        always added.
    for_base (Optional[str]): the pipeline's base model (a weasel var); when it is not
        `output_dir`, the tiny checkpoint is not needed and nothing is written.
    overwrite (bool): replace a checkpoint directory at `output_dir`.
    **shape: `create_tiny_checkpoint`'s keyword settings (vocab_size, hidden_size, ...).
    RETURNS (Optional[Path]): the checkpoint directory, or None when nothing was written.
    """
    if for_base is not None and Path(for_base).resolve() != Path(output_dir).resolve():
        msg.info(f"Base model is '{for_base}', not the embedded tiny default: nothing to create")
        return None
    prepare_output(Path(output_dir), overwrite, kind="checkpoint")
    vocab_size = shape.get("vocab_size", tiny.DEFAULT_VOCAB_SIZE)
    msg.info(
        f"Training a byte-level BPE tokenizer (vocab <= {vocab_size}) and random ModernBERT weights"
    )
    out = tiny.create_tiny_checkpoint(output_dir, text, **shape)
    msg.good(f"Wrote tiny ModernBERT checkpoint to {out}")
    return out
