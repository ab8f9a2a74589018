"""`convert-conll --context N` and `spacy-modernbert.ContextCorpus.v1`: one sentence per doc with
the text around it recorded, kept through the DocBin, the reader and `spacy train` (issue 33)."""

import configparser
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Corpus, Example

from spacy_modernbert.cli.convert import convert_conll
from spacy_modernbert.data.context_corpus import READER, ContextCorpus, create_context_corpus
from spacy_modernbert.data.converters import merge_docbins, read_docbin, write_docbin
from spacy_modernbert.encoder.context import get_context, has_context, set_context

ROOT = Path(__file__).resolve().parents[2]

# two articles: 5 sentences, then 3
ARTICLES = [
    [
        [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O"), (".", "O")],
        [("Peter", "B-PER"), ("Blackburn", "I-PER")],
        [("BRUSSELS", "B-LOC"), ("1996-08-22", "O")],
        [("The", "O"), ("European", "B-ORG"), ("Commission", "I-ORG"), ("said", "O"), (".", "O")],
        [("Germany", "B-LOC"), ("disagreed", "O"), (".", "O")],
    ],
    [
        [("Japan", "B-LOC"), ("beat", "O"), ("Syria", "B-LOC"), (".", "O")],
        [("Rain", "O"), ("fell", "O"), ("in", "O"), ("Oslo", "B-LOC"), (".", "O")],
        [("Nobody", "O"), ("went", "O"), ("out", "O"), (".", "O")],
    ],
]


@pytest.fixture
def conll(tmp_path) -> Path:
    lines = []
    for article in ARTICLES:
        lines += ["-DOCSTART- -X- O O", ""]
        for sentence in article:
            lines += [f"{w} {t} 0" for w, t in sentence] + [""]
    path = tmp_path / "x.iob"
    path.write_text("\n".join(lines), encoding="utf8")
    return path


def _texts(article):
    return [" ".join(w for w, _ in s) for s in article]


def test_convert_records_each_sentences_block_as_the_benchmark_does(conll, tmp_path):
    """Blocks of 3 consecutive sentences, never across -DOCSTART-: each sentence doc records the
    other sentences of its block, exactly the text `ner_study.py`'s `context_block` records."""
    from benchmarks.ner_study import block_context

    convert_conll(conll, tmp_path / "ctx.spacy", context=3)
    convert_conll(conll, tmp_path / "plain.spacy")
    docs, plain = read_docbin(tmp_path / "ctx.spacy"), read_docbin(tmp_path / "plain.spacy")
    # the same sentences and entities as one sentence per doc without context
    assert [[t.text for t in d] for d in docs] == [[t.text for t in d] for d in plain]
    assert [[(e.text, e.label_) for e in d.ents] for d in docs] == [
        [(e.text, e.label_) for e in d.ents] for d in plain
    ]
    assert not any(has_context(d) for d in plain)
    first, second = _texts(ARTICLES[0]), _texts(ARTICLES[1])
    expected = [block_context(first, k, 3) for k in range(5)]
    expected += [block_context(second, k, 3) for k in range(3)]
    assert [get_context(d) for d in docs] == expected
    assert get_context(docs[3]) == ("", "Germany disagreed .")  # a block ends the article's 3rd
    assert get_context(docs[5]) == ("", "Rain fell in Oslo . Nobody went out .")  # a new article


def test_the_dev_split_is_carved_at_a_block_boundary(conll, tmp_path):
    """Blocks of 2: [2, 2, 1] sentences in the first article, [2, 1] in the second; the last
    block is dev, and no train doc records dev text around it."""
    convert_conll(
        conll, tmp_path / "t.spacy", context=2, dev_output=tmp_path / "d.spacy", dev_frac=0.2
    )
    train, dev = read_docbin(tmp_path / "t.spacy"), read_docbin(tmp_path / "d.spacy")
    assert [d.text.strip() for d in dev] == ["Nobody went out ."]
    assert get_context(dev[0]) == ("", "")
    assert get_context(train[-1]) == ("Japan beat Syria .", "")
    assert not any("Nobody" in " ".join(get_context(d)) for d in train)


@pytest.mark.parametrize(
    "options, message",
    [({"context": 1}, "at least 2"), ({"context": 3, "n_sents": 2}, "--n-sents")],
)
def test_bad_context_options_are_refused(conll, tmp_path, options, message, capsys):
    with pytest.raises(SystemExit):
        convert_conll(conll, tmp_path / "x.spacy", **options)
    assert message in capsys.readouterr().out
    assert not (tmp_path / "x.spacy").exists()


def test_merge_corpora_keeps_the_context(conll, tmp_path):
    convert_conll(conll, tmp_path / "ctx.spacy", context=3)
    other = Doc(spacy.blank("en").vocab, words=["spam", "here"])
    other.cats = {"ANOMALY": 1.0}
    write_docbin([other], tmp_path / "sms.spacy")
    merged = merge_docbins([tmp_path / "ctx.spacy", tmp_path / "sms.spacy"])
    write_docbin(merged, tmp_path / "m.spacy")
    back = read_docbin(tmp_path / "m.spacy")
    assert get_context(back[1]) == get_context(read_docbin(tmp_path / "ctx.spacy")[1])
    assert not has_context(back[-1]) and back[-1].cats == {"ANOMALY": 1.0}


@pytest.fixture(scope="module")
def context_nlp(tiny_checkpoint, transformer_config, listener_ner_config):
    def make(**settings):
        nlp = spacy.blank("en")
        nlp.add_pipe(
            "transformer",
            config=transformer_config(tiny_checkpoint, max_length=256, **settings),
        )
        nlp.add_pipe("ner", config=listener_ner_config)
        return nlp

    return make


def test_the_reader_keeps_the_context_that_spacys_corpus_drops(conll, tmp_path, context_nlp):
    convert_conll(conll, tmp_path / "ctx.spacy", context=3)
    nlp = context_nlp(sentence_windows=True, sentence_context=8)
    ours = list(create_context_corpus(tmp_path / "ctx.spacy")(nlp))
    spacys = list(Corpus(tmp_path / "ctx.spacy")(nlp))
    refs = read_docbin(tmp_path / "ctx.spacy")
    assert [get_context(eg.predicted) for eg in ours] == [get_context(d) for d in refs]
    assert not any(has_context(eg.predicted) for eg in spacys)  # why this reader exists
    # the predicted docs are otherwise spaCy's
    assert [eg.predicted.text for eg in ours] == [eg.predicted.text for eg in spacys]


def _spy_on_context(monkeypatch) -> list:
    """A list that gets, for each packed encoder input, the pieces it holds beyond its docs' own
    (the recorded context's)."""
    import spacy_modernbert.encoder.packing as packing

    extra = []
    real = packing.pack_windows

    def spy(windows, content_ids, n_content, *args, **kwargs):
        extra.append(sum(len(ids) - n_content[i] for i, ids in content_ids.items()))
        return real(windows, content_ids, n_content, *args, **kwargs)

    monkeypatch.setattr(packing, "pack_windows", spy)
    return extra


def test_a_training_step_reads_the_neighbours_pieces(conll, tmp_path, context_nlp, monkeypatch):
    """The encoder's input for a doc read by the reader holds its neighbours' pieces around its
    own; read by spacy.Corpus.v1 it holds the doc's pieces alone."""
    convert_conll(conll, tmp_path / "ctx.spacy", context=3)
    extra = _spy_on_context(monkeypatch)
    spacy.util.fix_random_seed(0)
    nlp = context_nlp(sentence_windows=True, sentence_context=8)
    for reader, reads_context in ((create_context_corpus, True), (Corpus, False)):
        examples = list(reader(tmp_path / "ctx.spacy")(nlp))
        optimizer = nlp.initialize(lambda examples=examples: examples)
        extra.clear()
        nlp.update(examples, sgd=optimizer, losses={})
        assert extra and (extra[-1] > 0) is reads_context


def test_a_long_doc_cut_into_sentences_keeps_its_neighbours_as_context(tmp_path, context_nlp):
    nlp = context_nlp(sentence_windows=True, sentence_context=8)
    words = "EU rejects it . Peter said so . BRUSSELS agreed .".split()
    doc = Doc(nlp.vocab, words=words, sent_starts=[i in (0, 4, 8) for i in range(len(words))])
    set_context(doc, "Before all .", "After all .")
    write_docbin([doc], tmp_path / "long.spacy")
    for kwargs in ({"max_length": 5}, {"gold_preproc": True}):
        examples = list(create_context_corpus(tmp_path / "long.spacy", **kwargs)(nlp))
        assert [get_context(eg.predicted) for eg in examples] == [
            ("Before all .", "Peter said so . BRUSSELS agreed . After all ."),
            ("Before all . EU rejects it .", "BRUSSELS agreed . After all ."),
            ("Before all . EU rejects it . Peter said so .", "After all ."),
        ]


def test_an_augmented_example_keeps_its_context(tmp_path, context_nlp):
    nlp = context_nlp(sentence_windows=True, sentence_context=8)
    doc = set_context(Doc(nlp.vocab, words=["Peter", "said", "so", "."]), "Before .", "After .")
    write_docbin([doc], tmp_path / "one.spacy")

    def lower(nlp, eg):
        yield eg
        text = eg.reference.text.lower()
        yield Example(nlp.make_doc(text), Doc(nlp.vocab, words=text.split()))

    examples = list(ContextCorpus(tmp_path / "one.spacy", augmenter=lower)(nlp))
    assert [get_context(eg.predicted) for eg in examples] == [("Before .", "After .")] * 2


@pytest.mark.parametrize(
    "settings", [{"sentence_windows": True}, {}], ids=["context-0", "no-sentence-windows"]
)
def test_recorded_context_for_an_encoder_that_ignores_it_is_refused(
    conll, tmp_path, context_nlp, settings
):
    convert_conll(conll, tmp_path / "ctx.spacy", context=3)
    nlp = context_nlp(**settings)
    with pytest.raises(ValueError, match="sentence_context = 0.*sentence_context = 32"):
        list(create_context_corpus(tmp_path / "ctx.spacy")(nlp))
    blank = spacy.blank("en")
    with pytest.raises(ValueError, match="no spacy-modernbert encoder"):
        list(create_context_corpus(tmp_path / "ctx.spacy")(blank))
    # a corpus without recorded context reads as with spacy.Corpus.v1, whatever the encoder
    convert_conll(conll, tmp_path / "plain.spacy")
    assert len(list(create_context_corpus(tmp_path / "plain.spacy")(nlp))) == 8


def test_evaluate_scores_a_context_corpus_with_its_context(
    conll, tmp_path, context_nlp, monkeypatch, capsys
):
    """`python -m spacy_modernbert evaluate` reads a `convert-conll --context` corpus with its
    context (spacy.Corpus.v1 dropped it: the encoder read each sentence alone), and scores it
    for a pipeline that ignores the context with a warning naming the setting, not a refusal."""
    from spacy_modernbert.cli.evaluate import evaluate

    convert_conll(conll, tmp_path / "ctx.spacy", context=3)
    extra = _spy_on_context(monkeypatch)
    for name, settings, reads in (
        ("context", {"sentence_windows": True, "sentence_context": 8}, True),
        ("sentences", {"sentence_windows": True}, False),
    ):
        spacy.util.fix_random_seed(0)
        nlp = context_nlp(**settings)
        nlp.initialize(lambda nlp=nlp: list(Corpus(tmp_path / "ctx.spacy")(nlp)))
        nlp.to_disk(tmp_path / name)
        capsys.readouterr()
        extra.clear()
        scores = evaluate(tmp_path / name, tmp_path / "ctx.spacy", tmp_path / f"metrics-{name}")
        out = " ".join(capsys.readouterr().out.split())
        assert "ents_f" in scores and extra
        assert (max(extra) > 0) is reads
        assert ("8 docs carry recorded context: each is read with" in out) is reads
        assert ("no encoder reads it ([components.transformer.model] " in out) is not reads


def test_distillation_examples_keep_the_context_of_gold_and_dev_docs():
    """`distill`'s student examples (its --gold and --dev docs, rebuilt with the same tokens)
    keep the context a `--context` corpus records, as the reader's do."""
    from spacy_modernbert.distill.loop import _examples

    nlp = spacy.blank("en")
    ref = set_context(Doc(nlp.vocab, words=["Peter", "said", "."]), "Before .", "After .")
    examples = _examples(nlp, [ref, Doc(nlp.vocab, words=["alone"])])
    assert [t.text for t in examples[0].predicted] == ["Peter", "said", "."]
    assert get_context(examples[0].predicted) == ("Before .", "After .")
    assert not has_context(examples[1].predicted)


def test_the_reader_is_an_entry_point():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    readers = setup["options.entry_points"]["spacy_readers"]
    assert f"{READER} = spacy_modernbert.data.context_corpus:create_context_corpus" in readers
    assert spacy.registry.readers.get(READER) is create_context_corpus


def test_spacy_train_with_the_reader_trains_on_the_context(
    conll, tiny_checkpoint, tmp_path, monkeypatch
):
    """configs/cpu_tiny.cfg cut to transformer + ner, its train corpus read by the reader, the
    encoder reading context with dropout: `spacy train` runs, its training batches hold the
    neighbours' pieces, and the trained pipeline loads and reads paragraphs."""
    from spacy.cli.train import train

    convert_conll(
        conll, tmp_path / "train.spacy", context=3, dev_output=tmp_path / "dev.spacy", dev_frac=0.34
    )
    extra = _spy_on_context(monkeypatch)
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "dev.spacy"),  # spacy.Corpus.v1: dev docs read no context
        "paths.base_model": str(tiny_checkpoint),
        "nlp.pipeline": ["transformer", "ner"],
        "corpora.train.@readers": READER,
        "components.transformer.model.sentence_context": 8,
        "components.transformer.model.sentence_context_dropout": 0.5,
        "training.max_steps": 3,
        "training.optimizer.learn_rate.total_steps": 3,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.eval_frequency": 3,
        "training.score_weights": {"ents_f": 1.0},
    }
    train(ROOT / "configs" / "cpu_tiny.cfg", tmp_path / "out", overrides=overrides)
    assert max(extra) > 0  # the training docs came with their neighbours' pieces
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert nlp.get_pipe("transformer").model.attrs["sentence_context"] == 8
    doc = nlp("EU rejects German call . Peter Blackburn said so .")
    assert [s.text for s in doc.sents] == ["EU rejects German call .", "Peter Blackburn said so ."]


# one-sentence CoNLL docs the encoder's rules would cut ("1." read as a sentence of its own), one
# that spaCy's tokenizer re-tokenizes, and a two-sentence doc
RULE_CUT = [[("1.", "O"), ("Germany", "B-LOC"), ("3", "O"), ("2", "O")]]
RETOKENIZED = [[("EU", "B-ORG"), ("rejects", "O"), ("German-born", "B-MISC"), ("call", "O")]]


@pytest.fixture
def gold_sentence_corpus(tmp_path) -> Path:
    from spacy_modernbert.data.from_conll import conll_sentences_to_doc

    vocab = spacy.blank("en").vocab
    docs = [
        conll_sentences_to_doc(vocab, RULE_CUT),
        conll_sentences_to_doc(vocab, RETOKENIZED),
        conll_sentences_to_doc(vocab, RETOKENIZED + RULE_CUT),
    ]
    write_docbin(docs, tmp_path / "train.spacy")
    return tmp_path / "train.spacy"


def test_gold_sentences_give_the_predicted_docs_the_annotated_sentence_starts(
    gold_sentence_corpus,
):
    from spacy_modernbert.encoder.sentences import sentence_token_starts

    nlp = spacy.blank("en")
    ours = list(create_context_corpus(gold_sentence_corpus, gold_sentences=True)(nlp))
    plain = list(create_context_corpus(gold_sentence_corpus)(nlp))
    spacys = list(Corpus(gold_sentence_corpus)(nlp))
    # the predicted tokens stay spaCy's ("German - born"); only the sentence starts are added
    assert [[t.text for t in eg.predicted] for eg in ours] == [
        [t.text for t in eg.predicted] for eg in spacys
    ]
    assert "-" in [t.text for t in ours[1].predicted]
    assert [[s.start for s in eg.predicted.sents] for eg in ours] == [[0], [0], [0, 6]]
    # what the encoder reads: the annotated sentences, where without them its rules cut "1."
    assert [sentence_token_starts(eg.predicted) for eg in ours] == [[0], [0], [0, 6]]
    assert [sentence_token_starts(eg.predicted) for eg in plain] == [[0, 2], [0], [0, 8]]
    # without gold_sentences the reader is spaCy's Corpus: no sentence starts predicted
    assert not any(eg.predicted.has_annotation("SENT_START") for eg in plain + spacys)
    # the annotations to learn are untouched
    assert [eg.get_aligned_ner() for eg in ours] == [eg.get_aligned_ner() for eg in spacys]


def test_gold_sentences_leave_a_doc_without_annotated_sentences_to_the_rules(tmp_path):
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words=["1.", "Germany", "won", "."])
    assert not doc.has_annotation("SENT_START")
    write_docbin([doc], tmp_path / "nosents.spacy")
    (eg,) = list(create_context_corpus(tmp_path / "nosents.spacy", gold_sentences=True)(nlp))
    assert not eg.predicted.has_annotation("SENT_START")


def test_gold_sentences_reach_augmented_examples(gold_sentence_corpus):
    nlp = spacy.blank("en")

    def lower(nlp, eg):
        yield eg
        ref = eg.reference
        words = [t.text.lower() for t in ref]
        low = Doc(
            nlp.vocab,
            words=words,
            spaces=[bool(t.whitespace_) for t in ref],
            sent_starts=[t.is_sent_start for t in ref],
        )
        yield Example(nlp.make_doc(low.text), low)

    examples = list(ContextCorpus(gold_sentence_corpus, augmenter=lower, gold_sentences=True)(nlp))
    assert [[s.start for s in eg.predicted.sents] for eg in examples[-2:]] == [[0, 6]] * 2


def test_a_training_step_reads_one_sentence_docs_whole_with_gold_sentences(
    gold_sentence_corpus, context_nlp, monkeypatch
):
    """The encoder's sentence windows in training follow the annotated sentences (one window
    for a one-sentence doc); read by spacy.Corpus.v1 the rules cut the doc at "1."."""
    import spacy_modernbert.encoder.sentences as sentences

    seen = []
    real = sentences.sentence_token_starts

    def spy(doc, record=False, rules=sentences.DEFAULT_RULES):
        starts = real(doc, record, rules)
        if not record:  # training
            seen.append(starts)
        return starts

    monkeypatch.setattr(sentences, "sentence_token_starts", spy)
    spacy.util.fix_random_seed(0)
    nlp = context_nlp(sentence_windows=True, sentence_rules="news")
    for reader, expected in (
        (lambda p: create_context_corpus(p, gold_sentences=True), [[0], [0], [0, 6]]),
        (Corpus, [[0, 2], [0], [0, 8]]),
    ):
        examples = list(reader(gold_sentence_corpus)(nlp))
        optimizer = nlp.initialize(lambda examples=examples: examples)
        seen.clear()
        nlp.update(examples, sgd=optimizer, losses={})
        assert seen == expected


def test_the_cpu_config_trains_on_the_annotated_sentences_and_scores_dev_as_text():
    from spacy.util import load_config

    corpora = load_config(ROOT / "configs" / "cpu_tiny.cfg")["corpora"]
    assert corpora["train"]["@readers"] == READER and corpora["train"]["gold_sentences"] is True
    # dev is read as `nlp(text)` reads text: split by the encoder's rules, as users' docs are
    assert corpora["dev"]["@readers"] == "spacy.Corpus.v1"
