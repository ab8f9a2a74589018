"""`python -m spacy_modernbert extend-vocab`: add domain words to a checkpoint's tokenizer and embeddings.

The typer signature and the plain function sit side by side; the work is
`spacy_modernbert/vocab/` (bpe.py: the new merges, extend.py: the grown weights).
"""

from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ._util import app

Init = Enum("Init", {"mean": "mean", "contextual": "contextual", "random": "random"}, type=str)


@app.command("extend-vocab")
def extend_vocab_command(
    # fmt: off
    base_model: str = typer.Argument(
        ..., help="ModernBERT checkpoint with its tokenizer: a local directory or a hub id"
    ),
    text: Optional[List[Path]] = typer.Argument(
        None,
        help='Domain text to mine: .txt (one document per line), .jsonl (a "text" field) or .spacy files, or directories',
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Directory for the extended Hugging Face checkpoint"
    ),
    max_new: int = typer.Option(
        2000, "--max-new", help="New tokens at most (intermediate merges included)"
    ),
    min_freq: int = typer.Option(
        5, "--min-freq", help="Mine only words seen at least this often in TEXT"
    ),
    terms: Optional[Path] = typer.Option(
        None, "--terms", help="Add these terms (one per line) instead of mining TEXT"
    ),
    max_words: int = typer.Option(
        1,
        "--max-words-per-term",
        help="Terms of up to this many words (multi-word tokens such as 'credit score', kept whole by the pre-tokenizer); 1: single words",
    ),
    multi_word_share: float = typer.Option(
        1.0,
        "--multi-word-share",
        help="With --max-words-per-term above 1: at most this fraction of --max-new new tokens goes to mined multi-word terms (the rest to single words); 1: no cap",
    ),
    init: Init = typer.Option(
        "mean",
        "--init",
        help="New embedding rows: mean of the term's old pieces, contextual (the base encoder's output for the term in TEXT), or random (HF's initialisation)",
    ),
    max_vocab: Optional[int] = typer.Option(
        None,
        "--max-vocab",
        help="Largest embedding matrix allowed (rows); the base's vocab_size keeps its shape",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of --init random"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a non-empty --output directory"
    ),
    # fmt: on
) -> None:
    """Add the domain words the tokenizer splits most (or your --terms) as new tokens, with grown embeddings."""
    extend_vocab_cli(
        base_model,
        text or [],
        output,
        max_new=max_new,
        min_freq=min_freq,
        terms=terms,
        init=Init(init).value,
        max_vocab=max_vocab,
        seed=seed,
        overwrite=overwrite,
        max_words=max_words,
        multi_word_share=multi_word_share,
    )


def extend_vocab_cli(
    base_model: str, text: List[Path], output: Path, terms: Optional[Path] = None, **settings
) -> Dict[str, Any]:
    """Read TEXT and --terms, run `spacy_modernbert.vocab.extend.extend_vocab`; exit with the message on bad input."""
    from wasabi import msg

    from ..encoder.checkpoint import CheckpointError
    from ..pretrain.data import PretrainDataError, read_texts
    from ..vocab import VocabError
    from ..vocab.extend import extend_vocab

    try:
        term_list: List[str] = []
        if terms is not None:
            if not Path(terms).is_file():
                raise VocabError(f"--terms file '{terms}' does not exist.")
            term_list = [
                line.strip()
                for line in Path(terms).read_text(encoding="utf8").splitlines()
                if line.strip()
            ]
            if not term_list:
                raise VocabError(f"--terms file '{terms}' lists no terms (one per line).")
        texts = read_texts(text) if text else []
        return extend_vocab(base_model, texts, output, terms=term_list, **settings)
    except (CheckpointError, PretrainDataError, VocabError, UnicodeDecodeError) as err:
        msg.fail(str(err), exits=1)
