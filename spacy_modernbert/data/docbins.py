"""DocBin I/O, merging and corpus summaries: what every converter writes and `merge-corpora` reads.

Split from `converters.py` (issue 25: one idea per module). Pure functions (spaCy only).

Invariant: a DocBin is read back with the entities, their missing status ("unannotated" NER)
and `doc.cats` intact, so a converted corpus means the same thing to `ner` and `anomaly_scorer`
after a round trip. It is written without user data, unless a doc carries the text around it
(`encoder.context.set_context`, `convert-conll --context`): then user data is kept, so the
context survives the file and `merge-corpora` (read by `spacy-modernbert.ContextCorpus.v1`).
"""

from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ..anomaly import DEFAULT_LABEL

PathLike = Union[str, Path]


def blank_nlp(nlp=None):
    """The pipeline whose tokenizer builds the docs (default: a blank English one)."""
    if nlp is not None:
        return nlp
    import spacy

    return spacy.blank("en")


def docs_to_docbin(docs: Iterable[Doc]) -> DocBin:
    """A DocBin holding `docs`, with their entities, missing status and cats; with user data
    only when a doc carries recorded context (module docstring).

    docs (Iterable[Doc]): the docs.
    RETURNS (DocBin): the DocBin.
    """
    from ..encoder.context import has_context

    docs = list(docs)
    doc_bin = DocBin(store_user_data=any(has_context(doc) for doc in docs))
    for doc in docs:
        doc_bin.add(doc)
    return doc_bin


def write_docbin(docs: Iterable[Doc], path: PathLike) -> Path:
    """Write `docs` to a `.spacy` file, creating its directory.

    docs (Iterable[Doc]): the docs.
    path (str | Path): the output file.
    RETURNS (Path): the output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    docs_to_docbin(docs).to_disk(path)
    return path


def read_docbin(path: PathLike, vocab: Optional[Vocab] = None) -> List[Doc]:
    """Read the docs of a `.spacy` file.

    path (str | Path): the file.
    vocab (Optional[Vocab]): the vocab (default: a new empty one).
    RETURNS (List[Doc]): the docs.
    """
    vocab = vocab if vocab is not None else Vocab()
    return list(DocBin().from_disk(path).get_docs(vocab))


def merge_docbins(paths: Sequence[PathLike], vocab: Optional[Vocab] = None) -> List[Doc]:
    """Concatenate the docs of several `.spacy` files, in order.

    Entities, missing-NER status, sentence starts and cats are kept, so NER-only and
    anomaly-only corpora can be trained together on one shared encoder.

    paths (Sequence[str | Path]): the input files.
    vocab (Optional[Vocab]): the vocab (default: a new empty one).
    RETURNS (List[Doc]): all docs.
    RAISES ValueError: no inputs.
    """
    if not paths:
        raise ValueError("no input corpora to merge")
    vocab = vocab if vocab is not None else Vocab()
    docs: List[Doc] = []
    for path in paths:
        docs.extend(read_docbin(path, vocab))
    return docs


def ner_is_annotated(doc: Doc) -> bool:
    """Whether a reference doc has NER annotation (no token has a missing entity tag).

    doc (Doc): the doc.
    RETURNS (bool): True if every token is in an entity or explicitly "O".
    """
    return all(token.ent_iob != 0 for token in doc)


def corpus_summary(docs: Sequence[Doc], label: Optional[str] = DEFAULT_LABEL) -> Dict[str, Any]:
    """Counts that describe a corpus: docs, NER-annotated docs, entity labels, anomaly labels.

    docs (Sequence[Doc]): the docs.
    label (Optional[str]): the anomaly doc.cats label (None: count nothing).
    RETURNS (dict): n_docs, n_ner_annotated, entity_labels (label -> count),
        n_anomaly_annotated, n_anomalies.
    """
    entity_labels: Counter = Counter()
    n_ner = 0
    n_cats = 0
    n_anom = 0
    for doc in docs:
        if len(doc) and ner_is_annotated(doc):
            n_ner += 1
        entity_labels.update(ent.label_ for ent in doc.ents)
        if label is not None and label in doc.cats:
            n_cats += 1
            n_anom += int(doc.cats[label] >= 0.5)
    return {
        "n_docs": len(docs),
        "n_ner_annotated": n_ner,
        "entity_labels": dict(sorted(entity_labels.items())),
        "n_anomaly_annotated": n_cats,
        "n_anomalies": n_anom,
    }
