"""`python -m spacy_modernbert benchmark speed|accuracy` (moving to a top-level `benchmarks/`)."""
from pathlib import Path
from typing import Optional

import typer

from ._util import app

benchmark_app = typer.Typer(name="benchmark", no_args_is_help=True, help="Speed and accuracy benchmarks against spacy-transformers and raw Hugging Face.")
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("speed")
def benchmark_speed(
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="ModernBERT checkpoint (default: a base-shaped random one, created in --cache-dir)"),
    cache_dir: Path = typer.Option(Path(".benchmark_cache"), "--cache-dir", help="Where the generated checkpoint is cached"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory with conll2003/ and sms_spam/ (default: ../shared/data)"),
    output: Path = typer.Option(Path("benchmarks/speed.json"), "--output", "-o", help="JSON results"),
    threads: int = typer.Option(2, "--threads", help="torch.set_num_threads for every system"),
    n_short: int = typer.Option(192, "--n-short", help="Single-sentence docs"),
    n_paragraphs: int = typer.Option(16, "--n-paragraphs", help="Paragraph docs"),
    paragraph_words: int = typer.Option(300, "--paragraph-words", help="Words per paragraph"),
    long_tokens: int = typer.Option(8000, "--long-tokens", help="Tokens of the long document"),
    batch_size: int = typer.Option(64, "--batch-size", help="nlp.pipe batch size"),
    train_batch: int = typer.Option(32, "--train-batch", help="Sentences per training update"),
    train_updates: int = typer.Option(4, "--train-updates", help="Timed training updates (0: skip)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id (bf16), or -1 for CPU"),
) -> None:
    """Inference and training throughput: ours vs spacy-transformers vs raw HF, and vs the FLOP limit."""
    from ..benchmark.data import DEFAULT_DATA_DIR
    from ..benchmark.speed import run_speed

    run_speed(checkpoint=checkpoint, cache_dir=cache_dir, data_dir=data_dir or DEFAULT_DATA_DIR, output=output,
              threads=threads, n_short=n_short, n_paragraphs=n_paragraphs, paragraph_words=paragraph_words,
              long_tokens=long_tokens, batch_size=batch_size, train_batch=train_batch,
              train_updates=train_updates, gpu_id=gpu_id)


@benchmark_app.command("accuracy")
def benchmark_accuracy(
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="ModernBERT checkpoint (default: a small random one, created in --cache-dir)"),
    cache_dir: Path = typer.Option(Path(".benchmark_cache"), "--cache-dir", help="Where the generated checkpoint is cached"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory with conll2003/ and sms_spam/ (default: ../shared/data)"),
    output: Path = typer.Option(Path("benchmarks/accuracy.json"), "--output", "-o", help="JSON results"),
    threads: int = typer.Option(2, "--threads", help="torch.set_num_threads for every system"),
    ner_train: int = typer.Option(4000, "--ner-train", help="CoNLL-2003 train sentences used"),
    ner_valid: Optional[int] = typer.Option(None, "--ner-valid", help="Validation sentences (default: all)"),
    sms_limit: Optional[int] = typer.Option(None, "--sms-limit", help="SMS messages read (default: all)"),
    test_frac: float = typer.Option(0.3, "--test-frac", help="Held-out fraction of the SMS data"),
    epochs: int = typer.Option(3, "--epochs", help="Epochs, the same for every system"),
    batch_size: int = typer.Option(32, "--batch-size", help="Training batch size, the same for every system"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """NER F1 (CoNLL-2003) and anomaly ROC AUC / AP (SMS spam): ours vs HF token/sequence classification, plus TF-IDF."""
    from ..benchmark.accuracy import run_accuracy
    from ..benchmark.data import DEFAULT_DATA_DIR

    run_accuracy(checkpoint=checkpoint, cache_dir=cache_dir, data_dir=data_dir or DEFAULT_DATA_DIR, output=output,
                 threads=threads, ner_train=ner_train, ner_valid=ner_valid, sms_limit=sms_limit, test_frac=test_frac,
                 epochs=epochs, batch_size=batch_size, seed=seed)
