"""The pipeline side of `annotate`: load it the same way in every process, turn a Doc into a row.

An output row is the input record unchanged (the text and every carried field, e.g. an `id`)
plus `entities` (character offsets, end exclusive, label, text), `anomaly_score`, `is_anomaly`
(None when the pipeline has no `anomaly_scorer`) and, with `cats=True`, `doc.cats`.
Every engine builds its rows with `annotation`, so their outputs can only differ by the numbers
the pipeline computes.
"""
from pathlib import Path
from typing import Any, Dict, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc

DROP_COMPONENT = "spacy_modernbert_annotate_drop_tensors"


@Language.component(DROP_COMPONENT)
def drop_tensors(doc: Doc) -> Doc:
    """Last in the annotate pipeline: the encoder output is not part of a row, so worker processes
    need not serialize it back (`nlp.pipe(n_process=...)` sends whole docs)."""
    if Doc.has_extension("trf_data"):
        doc._.trf_data = None
    return doc


def resolve_pipeline(pipeline: Union[str, Path]) -> str:
    """A directory becomes an absolute path (actors may start elsewhere); otherwise a package name."""
    path = Path(pipeline)
    return str(path.resolve()) if path.exists() else str(pipeline)


def load_pipeline(pipeline: str, code: Optional[str] = None, gpu_id: int = -1) -> Language:
    import spacy

    if code:
        from spacy.util import import_file

        import_file("spacy_modernbert_annotate_code", code)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    if not Path(pipeline).exists() and not spacy.util.is_package(pipeline):
        raise ValueError(f"Pipeline {pipeline!r} is neither a directory nor an installed package (pip install it, or pass its directory)")
    nlp = spacy.load(pipeline)
    nlp.add_pipe(DROP_COMPONENT, last=True)
    return nlp


def annotation(doc: Doc, cats: bool = False) -> Dict[str, Any]:
    row: Dict[str, Any] = {
        "entities": [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in doc.ents],
        "anomaly_score": None,
        "is_anomaly": None,
    }
    if Doc.has_extension("anomaly_score") and doc._.anomaly_score is not None:
        row["anomaly_score"] = float(doc._.anomaly_score)
        row["is_anomaly"] = bool(doc._.is_anomaly)
    if cats:
        row["cats"] = {label: float(score) for label, score in doc.cats.items()}
    return row


def output_row(record: Dict[str, Any], doc: Doc, cats: bool = False) -> Dict[str, Any]:
    return {**record, **annotation(doc, cats)}
