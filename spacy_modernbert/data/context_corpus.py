"""`spacy-modernbert.ContextCorpus.v1`: `spacy.Corpus.v1` that keeps each doc's recorded context.

A corpus of one sentence per doc can carry, on each doc, the text of the sentences around it
(`encoder.context.set_context`, saved by `DocBin(store_user_data=True)`; `convert-conll
--context N` writes such corpora). With the encoder's `sentence_context = C`, each sentence then
reads up to C pieces of its neighbours in training as it does inside a paragraph at inference.
`spacy.Corpus.v1` builds each example's predicted doc anew from the reference's text, which drops
`doc.user_data` and with it the context: training would silently see none. This reader is that
corpus with the context carried over to the predicted doc, also where a doc is cut into its
sentences (`max_length`, `gold_preproc`: each sentence keeps the rest of its doc as context) and
through an augmenter. A corpus without recorded context reads exactly as with `spacy.Corpus.v1`
(unless `gold_sentences` is set).

`gold_sentences = true` also carries the reference's sentence starts over to the predicted doc
(spaCy's Corpus builds it from the text, without any). An encoder with `sentence_windows` then
reads each training doc by its annotated sentences, where without them it splits the doc by its
rules (`sentence_rules`), as it splits `nlp(text)`: on `convert-conll`'s one-sentence CoNLL docs
the rules cut 713 of 12,637 training sentences (list numbers such as "1." read as a sentence of
their own); the README path trained with `sentence_windows = false` (each doc read whole)
scored 1.2 dev F1 more, mean of 3 seeds (benchmarks/ner_readme_path_dev.py). Inference is unchanged: `nlp(text)` and the dev corpus
(read without it) are still split by the rules. A reference without sentence starts leaves the
predicted doc as it is.

A corpus whose docs carry context, read into a pipeline in which no ModernBERT encoder reads
context (`sentence_windows = true` and `sentence_context > 0`), is refused with the fix: the
recorded text would be ignored without a word.
"""

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import registry

from ..encoder.context import CONTEXT_KEY, copy_context, has_context, sentence_docs

READER = "spacy-modernbert.ContextCorpus.v1"


def context_encoders(nlp: Any) -> List[Tuple[str, dict]]:
    """(component name, settings) of each ModernBERT encoder in `nlp`'s pipeline (its shared
    `transformer` or a component's own after `replace_listeners`)."""
    from thinc.api import Model

    found = []
    for name, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if not isinstance(model, Model):
            continue
        for node in model.walk():
            if "sentence_context" in node.attrs and "sentence_windows" in node.attrs:
                found.append((name, node.attrs))
    return found


def reads_context(nlp: Any) -> bool:
    """Whether an encoder of `nlp` reads recorded context (`sentence_windows` and
    `sentence_context > 0`)."""
    return any(
        a["sentence_windows"] and a["sentence_context"] > 0 for _, a in context_encoders(nlp)
    )


def unread_context_setting(nlp: Any) -> str:
    """The encoders' settings that make `nlp` ignore recorded context, for messages."""
    return (
        ", ".join(
            f"[components.{name}.model] sentence_windows = {str(a['sentence_windows']).lower()}, "
            f"sentence_context = {a['sentence_context']}"
            for name, a in context_encoders(nlp)
        )
        or f"no spacy-modernbert encoder in the pipeline {nlp.pipe_names}"
    )


def check_reads_context(nlp: Any, path: Union[str, Path]) -> None:
    """Refuse a corpus with recorded context for a pipeline none of whose encoders reads it."""
    if reads_context(nlp):
        return
    where = unread_context_setting(nlp)
    raise ValueError(
        f"{READER}: the docs of {path} carry the text around them as context (written by "
        f"convert-conll --context or set_context), but no encoder of the pipeline reads it "
        f"({where}), so training would ignore it. Set sentence_windows = true and "
        "sentence_context = 32 (the measured recipe also sets sentence_context_dropout = 0.5; "
        "docs/ner.md), or read the corpus with spacy.Corpus.v1, or convert it without --context."
    )


def set_gold_sentence_starts(example: Example) -> None:
    """Give the example's predicted doc the reference's sentence starts (aligned to its tokens),
    unless it has sentence starts already or the reference has none."""
    predicted = example.predicted
    if not len(predicted) or predicted.has_annotation("SENT_START"):
        return
    if not example.reference.has_annotation("SENT_START"):
        return
    starts = example.get_aligned_sent_starts()
    for token, start in zip(predicted, starts):
        token.is_sent_start = token.i == 0 or bool(start)


def _keeping_source(augmenter: Callable, gold_sentences: bool = False) -> Callable:
    """`augmenter`, with each augmented example's predicted doc given its source's context (and,
    with `gold_sentences`, its reference's sentence starts)."""

    def augment(nlp: Any, example: Example) -> Iterator[Example]:
        context = example.predicted.user_data.get(CONTEXT_KEY)
        for augmented in augmenter(nlp, example):
            if context is not None and not has_context(augmented.predicted):
                augmented.predicted.user_data[CONTEXT_KEY] = context
            if gold_sentences:
                set_gold_sentence_starts(augmented)
            yield augmented

    return augment


def _sentences_of_long(docs: Iterable[Doc], max_length: int) -> Iterator[Doc]:
    """Docs of `max_length` tokens or more cut into their sentences, each keeping the rest of
    its doc as context (spaCy's own cut, `Span.as_doc`, would drop it)."""
    for doc in docs:
        if max_length and len(doc) >= max_length:
            yield from sentence_docs(doc)
        else:
            yield doc


class ContextCorpus(Corpus):
    """`spacy.training.Corpus` whose examples' predicted docs keep the reference's recorded
    context (module docstring). Same arguments as `Corpus`, plus `refuse_unread`: False reads
    a corpus with context for a pipeline that ignores it (scoring a sentence system on it, as
    `evaluate` does) instead of refusing it; `gold_sentences`: the predicted docs take the
    reference's sentence starts."""

    def __init__(
        self,
        path: Union[str, Path],
        refuse_unread: bool = True,
        gold_sentences: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, **kwargs)
        # every example passes through the augmenter (spaCy's Corpus.__call__), so the sentence
        # starts are set there once, also on augmented copies
        self.augmenter = _keeping_source(self.augmenter, gold_sentences)
        self.refuse_unread = refuse_unread

    def __call__(self, nlp: Any) -> Iterator[Example]:
        checked = not self.refuse_unread
        for example in super().__call__(nlp):
            if not checked and has_context(example.predicted):
                check_reads_context(nlp, self.path)
                checked = True
            yield example

    def _make_example(self, nlp: Any, reference: Doc, gold_preproc: bool) -> Example:
        example = super()._make_example(nlp, reference, gold_preproc)
        copy_context(reference, example.predicted)
        return example

    def make_examples(self, nlp: Any, reference_docs: Iterable[Doc]) -> Iterator[Example]:
        return super().make_examples(nlp, _sentences_of_long(reference_docs, self.max_length))

    def make_examples_gold_preproc(
        self, nlp: Any, reference_docs: Iterable[Doc]
    ) -> Iterator[Example]:
        # as spaCy's: one example per sentence, tokens as the reference's; here each sentence
        # keeps the rest of its doc as context
        for reference in reference_docs:
            for sentence in sentence_docs(reference):
                example = self._make_example(nlp, sentence, True)
                if len(example.x):
                    yield example


@registry.readers(READER)
def create_context_corpus(
    path: Optional[Path],
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable] = None,
    gold_sentences: bool = False,
) -> Callable[[Any], Iterable[Example]]:
    """`spacy.Corpus.v1` (same arguments) that keeps each doc's recorded context.

    path (Path): a `.spacy` file or a directory of them (`DocBin(store_user_data=True)` keeps
        the context; `convert-conll --context N` writes one).
    gold_preproc (bool): one example per sentence, with the reference's tokens; each sentence
        keeps the rest of its doc as context.
    max_length (int): docs of this many tokens or more are cut into their sentences (each
        keeping the rest of its doc as context); sentences still that long are skipped. 0: no
        limit.
    limit (int): read at most this many docs (0: all).
    augmenter (Optional[Callable]): as spaCy's; augmented examples keep their source's context.
    gold_sentences (bool): each predicted doc takes the reference's sentence starts, so that an
        encoder with `sentence_windows` reads the annotated sentences in training instead of
        splitting by its rules (module docstring). For the training corpus: a dev corpus read
        without it is split as `nlp(text)` splits text.
    """
    if path is None:
        raise ValueError(f"{READER}: path is null; set it to a .spacy file or directory.")
    return ContextCorpus(
        path,
        gold_preproc=gold_preproc,
        max_length=max_length,
        limit=limit,
        augmenter=augmenter,
        gold_sentences=gold_sentences,
    )
