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
    text: Optional[List[Path]] = typer.Option(None, "--text", "-t", help="Text, JSONL or .spacy files or dirs to train the tokenizer on"),
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


@app.command("evaluate")
def evaluate(
    pipeline: Path = typer.Argument(..., help="Trained pipeline directory or package name"),
    data_path: Path = typer.Argument(..., help="Evaluation corpus (.spacy)"),
    output: Path = typer.Option(Path("metrics"), "--output", "-o", help="Directory for metrics.json and curve images"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
) -> None:
    """Evaluate a pipeline: spaCy's metrics plus ROC and precision-recall curves of anomaly scores."""
    from .cli.evaluate import evaluate_cli

    evaluate_cli(pipeline, data_path, output, gpu_id)


@app.command("calibrate")
def calibrate(
    pipeline: Path = typer.Argument(..., help="Trained pipeline directory"),
    dev_path: Path = typer.Argument(..., help="Dev corpus (.spacy) with anomaly labels"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the calibrated pipeline (default: in place)"),
    method: str = typer.Option("best_f1", "--method", help="best_f1 or target_fpr"),
    target_fpr: float = typer.Option(0.05, "--target-fpr", help="False-positive rate for --method target_fpr"),
) -> None:
    """Choose the anomaly_scorer threshold on a dev corpus and store it in the pipeline."""
    from .cli.calibrate import calibrate_cli

    calibrate_cli(pipeline, dev_path, output, method=method, target_fpr=target_fpr)


@app.command("convert-jsonl")
def convert_jsonl(
    input_path: Path = typer.Argument(..., help="JSONL: text, entities [[start, end, label]], anomaly 0/1"),
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    label: str = typer.Option("ANOMALY", "--label", help="doc.cats label for the anomaly flag"),
) -> None:
    """Convert JSONL (text, entity offsets, anomaly label) to a .spacy corpus."""
    from .cli.convert import convert_jsonl_cli

    convert_jsonl_cli(input_path, output_path, label=label)


@app.command("convert-conll")
def convert_conll(
    input_path: Path = typer.Argument(..., help="CoNLL IOB file (WORD TAG 0 per line)"),
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    n_sents: int = typer.Option(10, "--n-sents", "-n", help="Sentences per doc"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Read at most this many sentences"),
) -> None:
    """Convert CoNLL-2003 style IOB data to a .spacy corpus for NER."""
    from .cli.convert import convert_conll_cli

    convert_conll_cli(input_path, output_path, n_sents=n_sents, limit=limit)


@app.command("convert-sms")
def convert_sms(
    input_path: Path = typer.Argument(..., help="SMS Spam Collection TSV (ham|spam<TAB>text)"),
    output_dir: Path = typer.Argument(..., help="Directory for train/dev/test .spacy files"),
    dev_frac: float = typer.Option(0.15, "--dev-frac"),
    test_frac: float = typer.Option(0.15, "--test-frac"),
    seed: int = typer.Option(0, "--seed"),
    limit: Optional[int] = typer.Option(None, "--limit"),
    label: str = typer.Option("ANOMALY", "--label", help="doc.cats label for spam (the anomaly)"),
) -> None:
    """Convert the SMS Spam Collection (spam = anomaly) into stratified train/dev/test splits."""
    from .cli.convert import convert_sms_cli

    convert_sms_cli(input_path, output_dir, dev_frac=dev_frac, test_frac=test_frac, seed=seed, limit=limit, label=label)


@app.command("merge-corpora")
def merge_corpora(
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    inputs: List[Path] = typer.Argument(..., help="Input .spacy files (e.g. an NER corpus and an anomaly corpus)"),
) -> None:
    """Merge .spacy corpora: NER-only and anomaly-only docs train together on one encoder."""
    from .cli.convert import merge_corpora_cli

    merge_corpora_cli(output_path, inputs)


@app.command("generate-demo")
def generate_demo(
    output_dir: Path = typer.Argument(..., help="Directory for train/dev/test JSONL"),
    n_docs: int = typer.Option(600, "--n-docs"),
    anomaly_rate: float = typer.Option(0.1, "--anomaly-rate"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Regenerate the demo corpus (IT incident reports) deterministically from a seed."""
    from .cli.convert import generate_demo_cli

    generate_demo_cli(output_dir, n_docs=n_docs, anomaly_rate=anomaly_rate, seed=seed)


from .cli.annotate import annotate_command  # noqa: E402

app.command("annotate")(annotate_command)


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
    from .benchmark.data import DEFAULT_DATA_DIR
    from .benchmark.speed import run_speed

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
    from .benchmark.accuracy import run_accuracy
    from .benchmark.data import DEFAULT_DATA_DIR

    run_accuracy(checkpoint=checkpoint, cache_dir=cache_dir, data_dir=data_dir or DEFAULT_DATA_DIR, output=output,
                 threads=threads, ner_train=ner_train, ner_valid=ner_valid, sms_limit=sms_limit, test_frac=test_frac,
                 epochs=epochs, batch_size=batch_size, seed=seed)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
