"""`python -m spacy_modernbert convert-*`, `merge-corpora`, `generate-demo`: thin CLI wrappers.

The logic lives in `spacy_modernbert/data/converters.py` and `spacy_modernbert/data/demo.py`;
here we only check paths, print a summary and turn `ValueError`s into clean exits.
"""
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from wasabi import msg


def _require_file(path: Path, what: str) -> None:
    path = Path(path)
    if not path.exists():
        msg.fail(f"{what} not found: {path}", exits=1)
    if not path.is_file():
        msg.fail(f"{what} is not a file: {path}", exits=1)


def _run(func: Callable[..., Any], *args, **kwargs) -> Any:
    """Call a converter; a ValueError (bad line, bad option...) becomes `msg.fail(..., exits=1)`."""
    try:
        return func(*args, **kwargs)
    except ValueError as err:
        msg.fail("Conversion failed", str(err), exits=1)
    except UnicodeDecodeError as err:
        msg.fail("Conversion failed: the input is not UTF-8 text", str(err), exits=1)


def _report(path: Path, summary: Dict[str, Any]) -> None:
    ents = ", ".join(f"{label} {count}" for label, count in summary["entity_labels"].items()) or "none"
    msg.good(f"Wrote {summary['n_docs']} docs to {path}")
    msg.text(
        f"NER annotated: {summary['n_ner_annotated']} docs (entities: {ents}); "
        f"anomaly annotated: {summary['n_anomaly_annotated']} docs ({summary['n_anomalies']} anomalies)"
    )


def convert_jsonl_cli(input_path: Path, output_path: Path, label: str = "ANOMALY") -> Dict[str, Any]:
    """Convert a JSONL corpus (text, entity offsets, anomaly 0/1) to a `.spacy` file.

    input_path (Path): the JSONL file; see `spacy_modernbert.data.converters.record_to_doc`.
    output_path (Path): the `.spacy` file to write.
    label (str): the doc.cats label for the anomaly flag.
    RETURNS (dict): the corpus summary (see `corpus_summary`).
    """
    _require_file(input_path, "JSONL input")
    from ..data.converters import corpus_summary, jsonl_to_docs, write_docbin

    docs = _run(jsonl_to_docs, input_path, label=label)
    write_docbin(docs, output_path)
    summary = corpus_summary(docs, label)
    _report(output_path, summary)
    return summary


def convert_conll_cli(input_path: Path, output_path: Path, n_sents: int = 10, limit: Optional[int] = None) -> Dict[str, Any]:
    """Convert a CoNLL IOB file (`WORD TAG 0`) to a `.spacy` NER corpus of `n_sents`-sentence docs.

    input_path (Path): the CoNLL file.
    output_path (Path): the `.spacy` file to write.
    n_sents (int): sentences per doc.
    limit (Optional[int]): read at most this many sentences.
    RETURNS (dict): the corpus summary.
    """
    _require_file(input_path, "CoNLL input")
    if n_sents < 1:
        msg.fail(f"--n-sents must be at least 1, got {n_sents}", exits=1)
    from ..data.converters import conll_to_docs, corpus_summary, write_docbin

    docs = _run(conll_to_docs, input_path, n_sents=n_sents, limit=limit)
    write_docbin(docs, output_path)
    summary = corpus_summary(docs, None)
    _report(output_path, summary)
    return summary


def convert_sms_cli(
    input_path: Path,
    output_dir: Path,
    dev_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
    limit: Optional[int] = None,
    label: str = "ANOMALY",
) -> Dict[str, Dict[str, Any]]:
    """Convert the SMS Spam Collection into `output_dir/{train,dev,test}.spacy` (spam = anomaly).

    input_path (Path): the TSV file (`ham|spam<TAB>text`).
    output_dir (Path): the output directory.
    dev_frac (float): fraction for dev.
    test_frac (float): fraction for test.
    seed (int): the seed of the stratified split.
    limit (Optional[int]): read at most this many messages.
    label (str): the doc.cats label.
    RETURNS (dict): split name -> corpus summary.
    """
    _require_file(input_path, "SMS input")
    from ..data.converters import corpus_summary, sms_to_docs, write_docbin

    splits = _run(sms_to_docs, input_path, dev_frac=dev_frac, test_frac=test_frac, seed=seed, limit=limit, label=label)
    out = {}
    for name, docs in splits.items():
        path = Path(output_dir) / f"{name}.spacy"
        write_docbin(docs, path)
        out[name] = corpus_summary(docs, label)
        _report(path, out[name])
    return out


def merge_corpora_cli(output_path: Path, inputs: Sequence[Path]) -> Dict[str, Any]:
    """Concatenate `.spacy` corpora into one, keeping entities, missing NER status and cats.

    output_path (Path): the `.spacy` file to write.
    inputs (Sequence[Path]): the input `.spacy` files.
    RETURNS (dict): the summary of the merged corpus (anomaly counts for any cats label).
    """
    inputs = list(inputs or [])
    if not inputs:
        msg.fail("No input corpora given", exits=1)
    for path in inputs:
        _require_file(path, "Input corpus")
    from ..data.converters import corpus_summary, merge_docbins, write_docbin

    try:
        docs = merge_docbins(inputs)
    except Exception as err:  # a corrupt or non-DocBin file: msgpack/zlib/ValueError...
        msg.fail("Merge failed: could not read the input corpora (are they .spacy files?)", f"{type(err).__name__}: {err}", exits=1)
    write_docbin(docs, output_path)
    labels: List[str] = sorted({label for doc in docs for label in doc.cats})
    summary = corpus_summary(docs, labels[0] if len(labels) == 1 else None)
    _report(output_path, summary)
    if len(labels) > 1:
        msg.warn(f"The merged corpus has several doc.cats labels: {', '.join(labels)}")
    return summary


def generate_demo_cli(output_dir: Path, n_docs: int = 600, anomaly_rate: float = 0.1, seed: int = 0) -> Dict[str, Path]:
    """Write the demo corpus (IT incident reports) to `output_dir/{train,dev,test}.jsonl`.

    output_dir (Path): the output directory.
    n_docs (int): number of reports.
    anomaly_rate (float): fraction of anomalous reports.
    seed (int): the random seed; the same arguments always give the same files.
    RETURNS (Dict[str, Path]): split name -> written file.
    """
    from ..data.demo import generate_demo_splits, write_jsonl

    splits = _run(generate_demo_splits, n_docs=n_docs, anomaly_rate=anomaly_rate, seed=seed)
    paths = {}
    for name, records in splits.items():
        paths[name] = write_jsonl(records, Path(output_dir) / f"{name}.jsonl")
        n_anom = sum(r["anomaly"] for r in records)
        msg.good(f"Wrote {len(records)} reports ({n_anom} anomalies) to {paths[name]}")
    return paths
