"""What a user of the shipped configs gets from `nlp("a paragraph")` (issue 33).

The NER configs train on one sentence per doc and set the encoder's `sentence_windows`: a
paragraph is read sentence by sentence (split by the encoder's `sentence_rules` when the doc has
no boundaries, which is what `nlp(text)` gives, and those sentences set on the doc so that the
`ner` does not cross them), so its entities are exactly the entities of its sentences read
one by one. On held-out CoNLL data, reading paragraphs whole cost a
sentence-trained model 2-3 F1 (docs/ner.md). After the `ner`, the configs' `entity_consistency`
pipe then uses the whole doc (one label per name, repeats tagged): the tests of the sentence
invariant read the `ner`'s entities with that pipe off, and one test checks what it adds.
"""

import json
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.training import Example
from spacy.util import load_config, load_model_from_config

ROOT = Path(__file__).resolve().parents[2]
NER_CONFIGS = [
    p for p in sorted((ROOT / "configs").glob("*.cfg")) if not p.stem.startswith("intents_")
]
# One report of the demo's test split that the training docs below do not contain.
SENTENCES = [
    "Monitoring paged Tomás Khan at 02:27 UTC because redis on backup-07 returned HTTP 504.",
    "Tomás Khan restarted redis in response at 02:48 UTC, and the errors stopped at 03:37 UTC.",
    "Omar Dubois from the SRE team opened port 9092 on queue-01.dc2.acme.net at 04:10 UTC.",
]


@pytest.mark.parametrize("path", NER_CONFIGS, ids=lambda p: p.stem)
def test_shipped_ner_configs_read_paragraphs_sentence_by_sentence(path):
    config = load_config(path)
    assert config["components"]["transformer"]["model"]["sentence_windows"] is True
    # set explicitly: the architecture's default is "sentencizer" (a v1 default keeps the
    # behaviour of configs without the setting); the benchmarks' shipped path reads the same
    from benchmarks.ner_study import SHIPPED_RULES

    assert config["components"]["transformer"]["model"]["sentence_rules"] == SHIPPED_RULES == "news"
    assert "sentencizer" not in config["nlp"]["pipeline"], (
        "the encoder splits docs without boundaries itself; a sentencizer is not needed"
    )


def _shipped_pipeline(checkpoint: Path, sentence_windows: bool = True):
    """configs/cpu_tiny.cfg as `spacy train` builds it, on the test checkpoint, trained briefly
    on demo reports (multi-sentence docs without sentence boundaries, as a corpus gives)."""
    from thinc.api import Adam

    config = load_config(ROOT / "configs" / "cpu_tiny.cfg", interpolate=False)
    config["paths"]["base_model"] = str(checkpoint)
    config["components"]["transformer"]["model"]["sentence_windows"] = sentence_windows
    spacy.util.fix_random_seed(0)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    rows = [
        json.loads(line)
        for line in (ROOT / "assets" / "demo" / "train.jsonl").read_text("utf8").splitlines()[:24]
    ]
    examples = []
    for row in rows:
        doc = nlp.make_doc(row["text"])
        ents = [(s, e, label) for s, e, label in row["entities"]]
        cats = {"ANOMALY": float(row["anomaly"]), "NORMAL": 1.0 - float(row["anomaly"])}
        examples.append(Example.from_dict(doc, {"entities": ents, "cats": cats}))
    nlp.initialize(lambda: examples)
    optimizer = Adam(2e-3)
    for _ in range(12):
        for batch in spacy.util.minibatch(examples, 8):
            nlp.update(batch, sgd=optimizer, drop=0.0)
    # training reads the docs by the same rules but leaves them as the corpus gave them
    assert not any(eg.predicted.has_annotation("SENT_START") for eg in examples)
    return nlp


@pytest.fixture(scope="module")
def shipped(tiny_checkpoint):
    return _shipped_pipeline(tiny_checkpoint)


def _ner_only(nlp):
    """The pipeline up to the `ner`: the doc-level consistency pipe off."""
    return nlp.select_pipes(disable=["entity_consistency"])


def _sentence_by_sentence(nlp):
    """Entities of each sentence read alone, as (paragraph char offset, text, label)."""
    out, offset = [], 0
    for sent in SENTENCES:
        out += [(offset + e.start_char, e.text, e.label_) for e in nlp(sent).ents]
        offset += len(sent) + 1
    return out


@pytest.mark.parametrize("separator", [" ", "\n"], ids=["spaces", "line-breaks"])
def test_a_paragraphs_entities_are_its_sentences_entities(shipped, separator):
    paragraph = nlp_text = separator.join(SENTENCES)
    with _ner_only(shipped):
        doc = shipped(nlp_text)
        alone = _sentence_by_sentence(shipped)
    # the encoder records the sentences it read, so that the ner does not cross them
    assert [s.text.strip() for s in doc.sents] == SENTENCES
    assert alone, (
        "the briefly trained pipeline should find entities (else this test proves nothing)"
    )
    # (an entity may take in the line break that ends its sentence: a whitespace token)
    assert [(e.start_char, e.text.strip(), e.label_) for e in doc.ents] == alone
    # the vectors too: each sentence's tokens get what they get when the sentence is alone
    para = doc._.trf_data.model_output.last_hidden_state[0]
    pieces = [shipped(s)._.trf_data.model_output.last_hidden_state[0][1:-1] for s in SENTENCES]
    content = numpy.concatenate(pieces)
    assert paragraph == doc.text
    assert para.shape[0] - 2 == content.shape[0]
    numpy.testing.assert_allclose(para[1:-1], content, atol=2e-5, rtol=1e-4)


def test_a_news_paragraph_is_split_at_its_dateline_and_quotes(shipped):
    """News copy without line breaks: the dateline and a quote opening after a sentence end are
    sentence boundaries under the shipped `sentence_rules = "news"`, and the entities are
    still those of the sentences read one by one."""
    parts = ["BRUSSELS 1996-08-22", SENTENCES[0], '"' + SENTENCES[1][:-1] + '," she said.']
    alone, offset = [], 0
    with _ner_only(shipped):
        doc = shipped(" ".join(parts))
        for part in parts:
            alone += [(offset + e.start_char, e.text, e.label_) for e in shipped(part).ents]
            offset += len(part) + 1
    assert [s.text for s in doc.sents] == parts
    assert alone
    assert [(e.start_char, e.text, e.label_) for e in doc.ents] == alone


def test_the_consistency_pipe_reads_the_whole_paragraph_after_the_ner(shipped):
    """The shipped pipeline's entities are the `ner`'s sentence-by-sentence entities with the
    doc-level rule applied over the whole paragraph (not sentence by sentence)."""
    assert shipped.pipe_names.index("entity_consistency") == shipped.pipe_names.index("ner") + 1
    text = " ".join(SENTENCES)
    with _ner_only(shipped):
        ner_doc = shipped(text)
    expected = shipped.get_pipe("entity_consistency")(ner_doc)
    doc = shipped(text)
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
        (e.start_char, e.end_char, e.label_) for e in expected.ents
    ]
    # a name the ner tagged once in the paragraph is tagged wherever it repeats
    names = {e.text for e in doc.ents if e.label_ == "PERSON"}
    for name in names:
        assert sum(e.text == name for e in doc.ents) == text.count(name), (name, doc.ents)


def test_without_sentence_windows_the_paragraph_reads_differently(tiny_checkpoint):
    """The control: the same pipeline with the setting off attends across sentences."""
    nlp = _shipped_pipeline(tiny_checkpoint, sentence_windows=False)
    para = nlp(" ".join(SENTENCES))._.trf_data.model_output.last_hidden_state[0]
    pieces = [nlp(s)._.trf_data.model_output.last_hidden_state[0][1:-1] for s in SENTENCES]
    assert not numpy.allclose(para[1:-1], numpy.concatenate(pieces), atol=1e-3)
