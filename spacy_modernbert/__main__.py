"""Command line: `python -m spacy_modernbert COMMAND` (typer, like spaCy's own CLI).

Each command is a thin wrapper over a typed function in `spacy_modernbert/cli/`.
"""
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(name="spacy_modernbert", add_completion=False, no_args_is_help=True)


@app.callback()
def _main() -> None:
    """spacy-modernbert: ModernBERT encoder and anomaly scorer for spaCy."""


@app.command("init-model")
def init_model(
    output_dir: Path = typer.Argument(..., help="Directory to write the checkpoint to"),
    text: Optional[List[Path]] = typer.Option(None, "--text", "-t", help="Text/JSONL files or dirs to train the tokenizer on"),
    vocab_size: int = typer.Option(2048, help="Tokenizer vocabulary size (upper bound)"),
    hidden_size: int = typer.Option(64, help="Hidden size"),
    num_hidden_layers: int = typer.Option(4, help="Number of layers"),
    num_attention_heads: int = typer.Option(4, help="Attention heads"),
    intermediate_size: int = typer.Option(96, help="MLP intermediate size"),
    local_attention: int = typer.Option(16, help="Sliding-window width of local layers"),
    seed: int = typer.Option(0, help="Random seed for the weights"),
    for_base: Optional[str] = typer.Option(None, "--for-base", help="Only create it if this base model is OUTPUT_DIR"),
) -> None:
    """Create the tiny offline ModernBERT checkpoint (random weights + trained BPE tokenizer)."""
    from .cli.init_model import init_model_cli

    init_model_cli(output_dir, text, vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, local_attention, seed, for_base)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
