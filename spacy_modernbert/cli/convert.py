"""`python -m spacy_modernbert convert-jsonl | convert-conll | convert-sms | merge-corpora`.

Corpora in, `.spacy` files out. The logic lives in `spacy_modernbert/data/converters.py`;
here we only check paths, print a summary and turn `ValueError`s into clean exits.
Outputs follow the one overwrite rule (`_util.check_output`): an existing output file, or
convert-sms's non-empty directory, is refused unless --overwrite, checked before any reading.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import typer
from wasabi import msg

from ..anomaly import DEFAULT_LABEL
from ._util import app, check_output, check_output_file, prepare_output, require_file, run_or_exit

# One sentence per doc: on a dev split carved from CoNLL-2003 train, 1-sentence training docs
# beat 10-sentence docs (benchmarks/ner_protocol.py, benchmarks/results/ner.json, docs/ner.md).
DEFAULT_N_SENTS = 1
DEFAULT_CONLL_DEV_FRAC = 0.1
DEFAULT_DEV_FRAC = 0.15
DEFAULT_TEST_FRAC = 0.15
DEFAULT_SEED = 0
# The files convert-sms writes in its OUTPUT_DIR (what --overwrite replaces).
SMS_FILES = ("train.spacy", "dev.spacy", "test.spacy")


def _report(path: Path, summary: Dict[str, Any]) -> None:
    ents = (
        ", ".join(f"{label} {count}" for label, count in summary["entity_labels"].items()) or "none"
    )
    msg.good(f"Wrote {summary['n_docs']} docs to {path}")
    msg.text(
        f"NER annotated: {summary['n_ner_annotated']} docs (entities: {ents}); "
        f"anomaly annotated: {summary['n_anomaly_annotated']} docs ({summary['n_anomalies']} anomalies)"
    )


@app.command("convert-jsonl")
def convert_jsonl_cli(
    # fmt: off
    input_path: Path = typer.Argument(
        ...,
        help="JSONL, one record a line: text, entities \\[\\[start, end, label], ...] (character offsets), anomaly 0/1 (optional)",
    ),
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    label: str = typer.Option(DEFAULT_LABEL, "--label", help="doc.cats label for the anomaly flag"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUTPUT_PATH"),
    # fmt: on
) -> None:
    """Convert JSONL (text, entity offsets, anomaly label) to a .spacy corpus."""
    convert_jsonl(input_path, output_path, label=label, overwrite=overwrite)


def convert_jsonl(
    input_path: Path, output_path: Path, label: str = DEFAULT_LABEL, overwrite: bool = False
) -> Dict[str, Any]:
    """Convert a JSONL corpus (text, entity offsets, anomaly 0/1) to a `.spacy` file.

    input_path (Path): the JSONL file; see `spacy_modernbert.data.converters.record_to_doc`.
    output_path (Path): the `.spacy` file to write.
    label (str): the doc.cats label for the anomaly flag.
    overwrite (bool): replace an existing `output_path`.
    RETURNS (dict): the corpus summary (see `corpus_summary`).
    """
    require_file(input_path, "JSONL input")
    check_output_file(output_path, overwrite)
    from ..data.converters import corpus_summary, jsonl_to_docs, write_docbin

    docs = run_or_exit(jsonl_to_docs, input_path, label=label)
    write_docbin(docs, output_path)
    summary = corpus_summary(docs, label)
    _report(output_path, summary)
    return summary


@app.command("convert-conll")
def convert_conll_cli(
    # fmt: off
    input_path: Path = typer.Argument(..., help="CoNLL IOB file (WORD TAG 0 per line)"),
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    n_sents: int = typer.Option(DEFAULT_N_SENTS, "--n-sents", "-n", help="Sentences per doc"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Read at most this many sentences"),
    dev_output: Optional[Path] = typer.Option(
        None,
        "--dev-output",
        help="Also carve a dev split: the last --dev-frac of the docs go to this .spacy file, not to OUTPUT_PATH (choose settings and model-best on it; keep the test split for the report)",
    ),
    dev_frac: float = typer.Option(
        DEFAULT_CONLL_DEV_FRAC,
        "--dev-frac",
        help="Fraction of the docs (the last ones, in file order) for --dev-output",
    ),
    context: int = typer.Option(
        0,
        "--context",
        help="Record context: one sentence per doc, each with the other sentences of its block of this many consecutive sentences (as --n-sents would group them; never across -DOCSTART-) recorded as the text around it, for the encoder's sentence_context; train with the reader spacy-modernbert.ContextCorpus.v1 (spacy.Corpus.v1 drops it). 0: off",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing OUTPUT_PATH (and --dev-output)"
    ),
    # fmt: on
) -> None:
    """Convert CoNLL-2003 style IOB data to a .spacy corpus for NER (one sentence per doc by default)."""
    convert_conll(
        input_path,
        output_path,
        n_sents=n_sents,
        limit=limit,
        dev_output=dev_output,
        dev_frac=dev_frac,
        context=context,
        overwrite=overwrite,
    )


def convert_conll(
    input_path: Path,
    output_path: Path,
    n_sents: int = DEFAULT_N_SENTS,
    limit: Optional[int] = None,
    dev_output: Optional[Path] = None,
    dev_frac: float = DEFAULT_CONLL_DEV_FRAC,
    context: int = 0,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Convert a CoNLL IOB file (`WORD TAG 0`) to a `.spacy` NER corpus of `n_sents`-sentence docs.

    input_path (Path): the CoNLL file.
    output_path (Path): the `.spacy` file to write.
    n_sents (int): sentences per doc.
    limit (Optional[int]): read at most this many sentences.
    dev_output (Optional[Path]): if set, the last `dev_frac` of the docs are written there
        instead of to `output_path` (a fixed dev split carved from the input).
    dev_frac (float): the fraction for `dev_output`.
    context (int): if set (>= 2), one sentence per doc, each recording the other sentences of
        its block of `context` consecutive sentences as its context (`encoder.context`; the
        dev split is carved at a block boundary, so no train doc reads dev text). Read them
        with `spacy-modernbert.ContextCorpus.v1`.
    overwrite (bool): replace an existing `output_path` / `dev_output`.
    RETURNS (dict): the corpus summary (of `output_path`; with `dev_output`, "dev" holds the
        dev split's).
    """
    require_file(input_path, "CoNLL input")
    if n_sents < 1:
        msg.fail(f"--n-sents must be at least 1, got {n_sents}", exits=1)
    if context < 0 or context == 1:
        msg.fail(
            f"--context must be 0 (off) or a block of at least 2 sentences, got {context}", exits=1
        )
    if context and n_sents != 1:
        msg.fail(
            f"--context {context} writes one sentence per doc (its block's other sentences "
            f"recorded around it); leave --n-sents at 1, got {n_sents}",
            exits=1,
        )
    check_output_file(output_path, overwrite)
    if dev_output is not None:
        check_output_file(dev_output, overwrite)
    from ..data.converters import carve_tail, conll_to_docs, corpus_summary, write_docbin

    # with --context, the docs are first the blocks, cut into sentences after the dev carve
    docs = run_or_exit(conll_to_docs, input_path, n_sents=context or n_sents, limit=limit)
    dev = None
    if dev_output is not None:
        docs, dev = run_or_exit(carve_tail, docs, dev_frac)
    if context:
        from ..encoder.context import sentence_docs

        docs = [sentence for block in docs for sentence in sentence_docs(block)]
        dev = None if dev is None else [s for block in dev for s in sentence_docs(block)]
        msg.info(
            f"One sentence per doc, each with the rest of its {context}-sentence block as context"
        )
    write_docbin(docs, output_path)
    summary = corpus_summary(docs, None)
    _report(output_path, summary)
    if dev is not None:
        write_docbin(dev, dev_output)
        summary["dev"] = corpus_summary(dev, None)
        _report(dev_output, summary["dev"])
    return summary


@app.command("convert-sms")
def convert_sms_cli(
    # fmt: off
    input_path: Path = typer.Argument(..., help="SMS Spam Collection TSV (ham|spam<TAB>text)"),
    output_dir: Path = typer.Argument(..., help="Directory for train/dev/test .spacy files"),
    dev_frac: float = typer.Option(
        DEFAULT_DEV_FRAC,
        "--dev-frac",
        help="Fraction of messages in dev.spacy (stratified by label)",
    ),
    test_frac: float = typer.Option(
        DEFAULT_TEST_FRAC,
        "--test-frac",
        help="Fraction of messages in test.spacy (stratified by label)",
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the stratified split"),
    limit: Optional[int] = typer.Option(
        None, "--limit", help="Read at most this many messages (default: all)"
    ),
    label: str = typer.Option(
        DEFAULT_LABEL, "--label", help="doc.cats label for spam (the anomaly)"
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace the .spacy files of an earlier convert-sms in OUTPUT_DIR",
    ),
    # fmt: on
) -> None:
    """Convert the SMS Spam Collection (spam = anomaly) into stratified train/dev/test splits."""
    convert_sms(
        input_path,
        output_dir,
        dev_frac=dev_frac,
        test_frac=test_frac,
        seed=seed,
        limit=limit,
        label=label,
        overwrite=overwrite,
    )


def convert_sms(
    input_path: Path,
    output_dir: Path,
    dev_frac: float = DEFAULT_DEV_FRAC,
    test_frac: float = DEFAULT_TEST_FRAC,
    seed: int = DEFAULT_SEED,
    limit: Optional[int] = None,
    label: str = DEFAULT_LABEL,
    overwrite: bool = False,
) -> Dict[str, Dict[str, Any]]:
    """Convert the SMS Spam Collection into `output_dir/{train,dev,test}.spacy` (spam = anomaly).

    input_path (Path): the TSV file (`ham|spam<TAB>text`).
    output_dir (Path): the output directory.
    dev_frac (float): fraction for dev.
    test_frac (float): fraction for test.
    seed (int): the seed of the stratified split.
    limit (Optional[int]): read at most this many messages.
    label (str): the doc.cats label.
    overwrite (bool): replace the files of an earlier convert-sms in `output_dir`.
    RETURNS (dict): split name -> corpus summary.
    """
    require_file(input_path, "SMS input")
    check_output(output_dir, overwrite, own_files=SMS_FILES)
    from ..data.converters import corpus_summary, sms_to_docs, write_docbin

    splits = run_or_exit(
        sms_to_docs,
        input_path,
        dev_frac=dev_frac,
        test_frac=test_frac,
        seed=seed,
        limit=limit,
        label=label,
    )
    output_dir = prepare_output(output_dir, overwrite, own_files=SMS_FILES)
    out = {}
    for name, docs in splits.items():
        path = output_dir / f"{name}.spacy"
        write_docbin(docs, path)
        out[name] = corpus_summary(docs, label)
        _report(path, out[name])
    return out


@app.command("merge-corpora")
def merge_corpora_cli(
    # fmt: off
    output_path: Path = typer.Argument(..., help="Output .spacy file"),
    inputs: List[Path] = typer.Argument(
        ..., help="Input .spacy files (e.g. an NER corpus and an anomaly corpus)"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUTPUT_PATH"),
    # fmt: on
) -> None:
    """Merge .spacy corpora: NER-only and anomaly-only docs train together on one encoder."""
    merge_corpora(output_path, inputs, overwrite=overwrite)


def merge_corpora(
    output_path: Path, inputs: Sequence[Path], overwrite: bool = False
) -> Dict[str, Any]:
    """Concatenate `.spacy` corpora into one, keeping entities, missing NER status and cats.

    output_path (Path): the `.spacy` file to write.
    inputs (Sequence[Path]): the input `.spacy` files.
    overwrite (bool): replace an existing `output_path`.
    RETURNS (dict): the summary of the merged corpus (anomaly counts for any cats label).
    """
    inputs = list(inputs or [])
    if not inputs:
        msg.fail("No input corpora given", exits=1)
    for path in inputs:
        require_file(path, "Input corpus")
    check_output_file(output_path, overwrite)
    from ..data.converters import corpus_summary, merge_docbins, write_docbin

    try:
        docs = merge_docbins(inputs)
    except Exception as err:  # a corrupt or non-DocBin file: msgpack/zlib/ValueError...
        msg.fail(
            "Merge failed: could not read the input corpora (are they .spacy files?)",
            f"{type(err).__name__}: {err}",
            exits=1,
        )
    write_docbin(docs, output_path)
    labels: List[str] = sorted({label for doc in docs for label in doc.cats})
    summary = corpus_summary(docs, labels[0] if len(labels) == 1 else None)
    _report(output_path, summary)
    if len(labels) > 1:
        msg.warn(f"The merged corpus has several doc.cats labels: {', '.join(labels)}")
    return summary
