"""The pipeline side of `annotate`: load it the same way in every process, turn a Doc into a row.

An output row is the input record unchanged (the text and every carried field, e.g. an `id`)
plus `entities` (character offsets, end exclusive, label, text), `anomaly_score`, `is_anomaly`
(None when the pipeline has no `anomaly_scorer`), with `cats=True` `doc.cats`, with the input
spec's `explain` the `anomaly_spans` (doc.spans["anomaly"]: start, end, text, score) and with
its `vectors` the doc's float32 encoder `vector` (a fixed-size list column in Parquet).
Every engine runs its shards through `annotate_shard`, so their outputs can only differ by the
numbers the pipeline computes.
"""

from pathlib import Path
from typing import Any, Dict, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc


def resolve_pipeline(pipeline: Union[str, Path]) -> str:
    """A directory becomes an absolute path (actors may start elsewhere); otherwise a package name.

    Raises (one line) when it is neither: the rule of every command (`cli/_util.find_pipeline`).
    """
    from ..pipeline_location import find_pipeline

    find_pipeline(pipeline)
    path = Path(pipeline)
    return str(path.resolve()) if path.exists() else str(pipeline)


def load_pipeline(pipeline: str, code: Optional[str] = None, gpu_id: int = -1) -> Language:
    import spacy

    if code:
        from spacy.util import import_file

        import_file("spacy_modernbert_annotate_code", code)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    from ..pipeline_location import find_pipeline

    return spacy.load(find_pipeline(pipeline))


def annotation(
    doc: Doc, cats: bool = False, prefix: str = "", explain: bool = False, vectors: bool = False
) -> Dict[str, Any]:
    row: Dict[str, Any] = {
        "entities": [
            {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text}
            for e in doc.ents
        ],
        "anomaly_score": None,
        "is_anomaly": None,
    }
    if Doc.has_extension("anomaly_score") and doc._.anomaly_score is not None:
        row["anomaly_score"] = float(doc._.anomaly_score)
        row["is_anomaly"] = bool(doc._.is_anomaly)
    if cats:
        row["cats"] = {label: float(score) for label, score in doc.cats.items()}
    if explain:
        from ..anomaly.explain import span_records

        row["anomaly_spans"] = span_records(doc)
    if vectors:
        from ..vectors import doc_vector

        row["vector"] = doc_vector(doc)
    return {prefix + name: value for name, value in row.items()} if prefix else row


def output_row(
    record: Dict[str, Any], doc: Doc, cats: bool = False, prefix: str = "", **extra: bool
) -> Dict[str, Any]:
    return {**record, **annotation(doc, cats, prefix, **extra)}


def explain_docs(nlp: Language, docs: Any) -> Any:
    """The docs, each explained by the pipeline's anomaly_scorer unless it already was (a
    pipeline without an anomaly_scorer: unchanged, no spans)."""
    scorers = [p for n, p in nlp.pipeline if nlp.get_pipe_meta(n).factory == "anomaly_scorer"]
    docs = list(docs)
    todo = [doc for doc in docs if "anomaly" not in doc.spans]
    if scorers and todo:
        scorers[-1].explain(todo)
    return docs


def annotate_shard(nlp: Language, spec, run_dir, shard, batch_size: int, cats: bool = False) -> int:
    """Read a shard's rows, run `nlp.pipe` over them, write the shard file; rows written.

    The one unit of work of every engine (a local process, a pool worker, a Ray actor), so their
    outputs differ only by where they ran: the same rows form the same batches everywhere.
    Memory stays flat over a long run: nothing outlives the shard, not even its new vocab entries.
    """
    from .io import read_span

    rows = read_span(spec, shard.span)
    # strings and lexemes of the shard's new words are freed when the zone ends (spaCy >= 3.8),
    # so a long run does not grow the vocab: the rows are plain data, built inside the zone
    with nlp.memory_zone():
        docs = nlp.pipe((row.text for row in rows), batch_size=batch_size)
        if spec.explain:
            docs = explain_docs(nlp, docs)
        extra = {"explain": spec.explain, "vectors": spec.vectors}
        out = [
            output_row(row.record, doc, cats, spec.prefix, **extra) for row, doc in zip(rows, docs)
        ]
    run_dir.write_shard(shard.index, out)
    return len(out)
