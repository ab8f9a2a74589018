"""`spacy-modernbert.ContextCorpus.v1`: `spacy.Corpus.v1` that keeps each doc's recorded context.

A corpus of one sentence per doc can carry, on each doc, the text of the sentences around it
(`encoder.context.set_context`, saved by `DocBin(store_user_data=True)`; `convert-conll
--context N` writes such corpora). With the encoder's `sentence_context = C`, each sentence then
reads up to C pieces of its neighbours in training as it does inside a paragraph at inference.
`spacy.Corpus.v1` builds each example's predicted doc anew from the reference's text, which drops
`doc.user_data` and with it the context: training would silently see none. This reader is that
corpus with the context carried over to the predicted doc, also where a doc is cut into its
sentences (`max_length`, `gold_preproc`: each sentence keeps the rest of its doc as context) and
through an augmenter. A corpus without recorded context reads exactly as with `spacy.Corpus.v1`.

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


def _keeping_context(augmenter: Callable) -> Callable:
    """`augmenter`, with each augmented example's predicted doc given its source's context."""

    def augment(nlp: Any, example: Example) -> Iterator[Example]:
        context = example.predicted.user_data.get(CONTEXT_KEY)
        for augmented in augmenter(nlp, example):
            if context is not None and not has_context(augmented.predicted):
                augmented.predicted.user_data[CONTEXT_KEY] = context
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
    `evaluate` does) instead of refusing it."""

    def __init__(self, path: Union[str, Path], refuse_unread: bool = True, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.augmenter = _keeping_context(self.augmenter)
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
    """
    if path is None:
        raise ValueError(f"{READER}: path is null; set it to a .spacy file or directory.")
    return ContextCorpus(
        path, gold_preproc=gold_preproc, max_length=max_length, limit=limit, augmenter=augmenter
    )
