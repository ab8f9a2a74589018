"""Corpus converters: JSONL, CoNLL IOB and the SMS Spam Collection to spaCy Docs / DocBins.

This module is the public import path; each converter lives in its own module (issue 25: one
idea per module): `from_jsonl.py`, `from_conll.py`, `from_sms.py`, and the DocBin I/O,
merging and summaries they share in `docbins.py`. The CLI wrappers in
`spacy_modernbert/cli/convert.py` call them and turn their `ValueError`s into clean errors.

Annotation conventions, shared by every converter (they are what `ner` and `anomaly_scorer`
read from the reference docs during training):

Annotation conventions, shared by every converter (they are what `ner` and `anomaly_scorer`
read from the reference docs during training):

* NER annotated: every token is either in an entity or explicitly outside ("O").
* NER unannotated: no entities set, every token's `ent_iob` is 0 ("missing"), so `ner`
  gets no gradient for that doc (it does NOT learn "there are no entities here").
* Anomaly annotated: `doc.cats[label]` is 1.0 (anomaly) or 0.0 (normal).
* Anomaly unannotated: `label` is not in `doc.cats`; `anomaly_scorer` skips the doc.
"""

from .docbins import (  # noqa: F401  (re-exported)
    PathLike,
    corpus_summary,
    docs_to_docbin,
    merge_docbins,
    ner_is_annotated,
    read_docbin,
    write_docbin,
)
from .from_conll import (  # noqa: F401  (re-exported)
    IOB_PREFIXES,
    carve_tail,
    conll_sentences_to_doc,
    conll_to_docs,
    iob1_to_iob2,
    read_conll_sentences,
)
from .from_jsonl import (  # noqa: F401  (re-exported)
    FALSE_VALUES,
    TRUE_VALUES,
    jsonl_to_docs,
    parse_anomaly,
    record_to_doc,
)
from .from_sms import read_sms, sms_to_docs  # noqa: F401  (re-exported)
