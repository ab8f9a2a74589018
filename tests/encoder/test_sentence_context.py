"""`sentence_context`: each sentence is encoded with its neighbours as context, and takes its
vectors from its own window only (issue 33; FLERT-style document context)."""

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_modernbert.encoder.windows import plan_sentence_windows

SENTS = [
    ["The", "European", "Commission", "said", "on", "Thursday", "it", "disagreed", "."],
    ["Germany", "'s", "representative", "to", "the", "European", "Union", "said", "so", "."],
    ["Peter", "Blackburn", "reported", "from", "Brussels", "."],
]
OTHER_FIRST = ["Rain", "fell", "all", "day", "in", "Oslo", "and", "nobody", "went", "out", "."]


def _doc(vocab, sents):
    words = [w for s in sents for w in s]
    starts = [j == 0 for s in sents for j in range(len(s))]
    return Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False], sent_starts=starts)


@pytest.fixture(scope="module")
def make_nlp(tiny_checkpoint, transformer_config):
    pipelines = {}

    def make(**settings):
        key = tuple(sorted(settings.items()))
        if key not in pipelines:
            nlp = spacy.blank("en")
            nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, **settings))
            nlp.initialize()
            pipelines[key] = nlp
        return pipelines[key]

    return make


def _hidden(nlp, sents):
    doc = nlp(_doc(nlp.vocab, sents))
    return doc, doc._.trf_data.model_output.last_hidden_state[0]


def _rows_of_sentence(doc, k):
    """The [CLS]-based rows of sentence k's pieces (from its first token's first piece to its last
    token's last one, whitespace pieces between them included)."""
    sent = list(doc.sents)[k]
    align = doc._.trf_data.align
    rows = {int(i) for t in range(sent.start, sent.end) for i in align[t].data.ravel()}
    return list(range(min(rows), max(rows) + 1))


@pytest.mark.parametrize("context", [0, 1, 3, 5])
@pytest.mark.parametrize("starts,n", [([0, 5, 9], 20), ([], 7), ([3, 3, 40], 30), ([2, 4], 40)])
def test_each_sentence_owns_its_pieces_once_with_context_around_it(starts, n, context):
    windows = plan_sentence_windows(0, starts, n, max_length=12, overlap=2, context=context)
    owned = numpy.concatenate([numpy.arange(w.own_start, w.own_end) for w in windows])
    numpy.testing.assert_array_equal(owned, numpy.arange(n))
    edges = [0] + sorted({s for s in starts if 0 < s < n}) + [n]
    for w in windows:
        assert w.length <= 12
        a, b = (
            max(e for e in edges[:-1] if e <= w.own_start),
            min(e for e in edges[1:] if e >= w.own_end),
        )
        # a window owns pieces of one sentence only, and holds at most `context` pieces
        # outside that sentence on each side
        assert a <= w.own_start < w.own_end <= b
        assert max(0, a - context) <= w.start and w.end <= min(n, b + context)
        if w.own_start == a and b - a + 2 * context <= 10:
            # a sentence that fits with its context: exactly that context, clipped at the doc
            assert (w.start, w.end) == (max(0, a - context), min(n, b + context))


def test_context_zero_is_sentence_windows():
    for starts, n in [([0, 5, 9], 20), ([2, 4], 40), ([], 7)]:
        assert plan_sentence_windows(0, starts, n, 12, 2, context=0) == plan_sentence_windows(
            0, starts, n, 12, 2
        )
    assert plan_sentence_windows(3, [], 0, 12, 2, context=4)[0].length == 2  # an empty doc


def test_a_sentences_vectors_depend_on_its_neighbours_with_context(make_nlp):
    nlp = make_nlp(sentence_windows=True, sentence_context=16)
    doc_a, a = _hidden(nlp, SENTS)
    doc_b, b = _hidden(nlp, [OTHER_FIRST, *SENTS[1:]])
    # sentence 2 (index 1) has the same pieces in both docs, after a different first sentence
    rows_a, rows_b = _rows_of_sentence(doc_a, 1), _rows_of_sentence(doc_b, 1)
    assert len(rows_a) == len(rows_b)
    assert not numpy.allclose(a[rows_a], b[rows_b], atol=1e-3)
    # without context (sentence_windows alone) the same sentence is read the same in both
    nlp0 = make_nlp(sentence_windows=True)
    doc_a, a = _hidden(nlp0, SENTS)
    doc_b, b = _hidden(nlp0, [OTHER_FIRST, *SENTS[1:]])
    numpy.testing.assert_allclose(
        a[_rows_of_sentence(doc_a, 1)], b[_rows_of_sentence(doc_b, 1)], atol=2e-5, rtol=1e-4
    )


def test_context_zero_equals_sentence_windows_in_the_encoder(make_nlp):
    _, with_zero = _hidden(make_nlp(sentence_windows=True, sentence_context=0), SENTS)
    _, plain = _hidden(make_nlp(sentence_windows=True), SENTS)
    numpy.testing.assert_array_equal(with_zero, plain)


def test_context_over_the_whole_doc_gives_the_whole_docs_vectors_at_every_token(make_nlp):
    """Every sentence's window is then the whole doc: each centre piece's vector, and the token
    -> piece alignment, are exactly those of reading the doc whole (no window is off by a piece)."""
    doc_c, ctx = _hidden(make_nlp(sentence_windows=True, sentence_context=128), SENTS)
    doc_w, whole = _hidden(make_nlp(), SENTS)
    assert ctx.shape == whole.shape and ctx.shape[0] - 2 <= 128  # the context spans the doc
    numpy.testing.assert_array_equal(doc_c._.trf_data.align.data, doc_w._.trf_data.align.data)
    numpy.testing.assert_allclose(ctx, whole, atol=2e-5, rtol=1e-4)


def test_context_reaches_the_neighbours_only_as_far_as_set(make_nlp):
    """With 2 pieces of context, a change to the last piece of the first sentence reaches the
    second sentence (it is in the second sentence's window), but not the third (further away)."""
    nlp = make_nlp(sentence_windows=True, sentence_context=2)
    changed = [[*SENTS[0][:-1], "!"], *SENTS[1:]]
    doc_a, a = _hidden(nlp, SENTS)
    doc_b, b = _hidden(nlp, changed)
    ra, rb = _rows_of_sentence(doc_a, 1), _rows_of_sentence(doc_b, 1)
    assert not numpy.allclose(a[ra], b[rb], atol=1e-3)
    ra, rb = _rows_of_sentence(doc_a, 2), _rows_of_sentence(doc_b, 2)
    numpy.testing.assert_allclose(a[ra], b[rb], atol=2e-5, rtol=1e-4)


def test_long_sentence_with_context_is_cut_and_every_piece_gets_a_vector(make_nlp):
    nlp = make_nlp(sentence_windows=True, sentence_context=2, max_length=12)
    doc, hidden = _hidden(nlp, SENTS)
    assert hidden.shape[0] == doc._.trf_data.align.data.max() + 2
    assert numpy.isfinite(hidden).all()


def test_save_load_round_trip_keeps_the_context(make_nlp, tmp_path):
    nlp = make_nlp(sentence_windows=True, sentence_context=16)
    _, before = _hidden(nlp, SENTS)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("transformer").model.attrs["sentence_context"] == 16
    _, after = _hidden(loaded, SENTS)
    numpy.testing.assert_allclose(after, before, atol=1e-6)
    # a config override at load wins over the saved value, as for the other settings
    off = spacy.load(
        tmp_path / "p", config={"components": {"transformer": {"model": {"sentence_context": 0}}}}
    )
    _, plain = _hidden(make_nlp(sentence_windows=True), SENTS)
    numpy.testing.assert_allclose(_hidden(off, SENTS)[1], plain, atol=1e-6)


def test_training_reads_context_and_updates(
    tiny_checkpoint, transformer_config, listener_ner_config
):
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config=transformer_config(tiny_checkpoint, sentence_windows=True, sentence_context=8),
    )
    nlp.add_pipe("ner", config=listener_ner_config)
    doc = _doc(nlp.vocab, SENTS)
    ents = ["O"] * len(doc)
    ents[1], ents[2] = "B-ORG", "L-ORG"
    ents[19], ents[20] = "B-PER", "L-PER"
    examples = [Example.from_dict(doc, {"entities": ents})]
    optimizer = nlp.initialize(lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer, drop=0.0, losses={})["ner"] for _ in range(5)]
    assert all(numpy.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"sentence_windows": True, "sentence_context": -1}, "sentence_context must be in"),
        ({"sentence_windows": True, "sentence_context": 200, "max_length": 512}, "max_length"),
        ({"sentence_windows": True, "sentence_context": 2.5}, "whole number"),
        ({"sentence_windows": True, "sentence_context": True}, "whole number"),
        ({"sentence_context": 8}, "needs sentence_windows = true"),
    ],
)
def test_bad_sentence_context_is_refused_with_the_fix(settings, message, tiny_checkpoint):
    from spacy_modernbert.encoder.architecture import modernbert_transformer_v1

    with pytest.raises(ValueError, match=message):
        modernbert_transformer_v1(str(tiny_checkpoint), **settings)


@pytest.mark.parametrize("context", [2, 16])
def test_a_sentence_doc_with_its_text_around_reads_as_inside_its_paragraph(make_nlp, context):
    """One sentence per doc, with the text before and after it recorded (set_context): its
    vectors equal those its pieces get inside the whole paragraph, at every context size."""
    from spacy_modernbert.encoder.context import set_context

    nlp = make_nlp(sentence_windows=True, sentence_context=context)
    para_doc, para = _hidden(nlp, SENTS)
    texts = [" ".join(s) for s in SENTS]
    for k in range(len(SENTS)):
        doc = _doc(nlp.vocab, [SENTS[k]])
        set_context(doc, " ".join(texts[:k]), " ".join(texts[k + 1 :]))
        alone = nlp(doc)._.trf_data.model_output.last_hidden_state[0]
        rows = _rows_of_sentence(para_doc, k)
        numpy.testing.assert_allclose(alone[1:-1], para[rows], atol=2e-5, rtol=1e-4)
    # the control: without the recorded text the first and last sentences read differently
    bare = nlp(_doc(nlp.vocab, [SENTS[1]]))._.trf_data.model_output.last_hidden_state[0]
    assert not numpy.allclose(bare[1:-1], para[_rows_of_sentence(para_doc, 1)], atol=1e-3)


def test_recorded_context_is_ignored_without_sentence_context(make_nlp):
    from spacy_modernbert.encoder.context import set_context

    nlp = make_nlp(sentence_windows=True)
    doc = set_context(_doc(nlp.vocab, [SENTS[1]]), "Rain fell all day .", "Nobody went out .")
    plain = nlp(_doc(nlp.vocab, [SENTS[1]]))._.trf_data.model_output.last_hidden_state[0]
    numpy.testing.assert_array_equal(nlp(doc)._.trf_data.model_output.last_hidden_state[0], plain)


def test_malformed_recorded_context_is_refused_with_the_fix(make_nlp):
    from spacy_modernbert.encoder.context import CONTEXT_KEY, set_context

    nlp = make_nlp(sentence_windows=True, sentence_context=16)
    doc = _doc(nlp.vocab, [SENTS[1]])
    doc.user_data[CONTEXT_KEY] = "just one string"
    with pytest.raises(ValueError, match="set_context"):
        nlp(doc)
    with pytest.raises(TypeError, match="two strings"):
        set_context(doc, None, "x")


def test_recorded_context_survives_docbin_with_user_data(make_nlp):
    from spacy.tokens import DocBin

    from spacy_modernbert.encoder.context import get_context, set_context

    nlp = make_nlp(sentence_windows=True, sentence_context=16)
    doc = set_context(_doc(nlp.vocab, [SENTS[1]]), "before it .", "after it .")
    (back,) = (
        DocBin(docs=[doc], store_user_data=True)
        .from_bytes(DocBin(docs=[doc], store_user_data=True).to_bytes())
        .get_docs(nlp.vocab)
    )
    assert get_context(back) == ("before it .", "after it .")


# ------------------------------------------------------------ sentence_context_dropout (training)


def test_a_sentence_whose_context_is_dropped_gets_the_window_of_context_zero():
    starts, n = [0, 5, 9, 14], 20
    calls = []

    def keep(pattern=iter([True, False, True, False])):
        calls.append(1)
        return next(pattern)

    planned = plan_sentence_windows(
        0, starts, n, 40, 2, context=3, before=2, after=2, keep_context=keep
    )
    with_ctx = plan_sentence_windows(0, starts, n, 40, 2, context=3, before=2, after=2)
    alone = plan_sentence_windows(0, starts, n, 40, 2, context=0)
    assert len(calls) == 4  # one draw per sentence
    assert planned == [with_ctx[0], alone[1], with_ctx[2], alone[3]]
    assert with_ctx[0].start == -2 and with_ctx[1] != alone[1]  # the control: context was there
    never = plan_sentence_windows(0, starts, n, 40, 2, context=3, keep_context=lambda: False)
    assert never == alone


def _train_rows(nlp, sents):
    """The encoder's output for one doc in a training forward pass (begin_update)."""
    batch, _ = nlp.get_pipe("transformer").model.begin_update([_doc(nlp.vocab, sents)])
    return batch.cached_doc_data[0].model_output.last_hidden_state[0]


def test_context_dropout_reads_training_sentences_alone_and_never_touches_inference(make_nlp):
    always = make_nlp(sentence_windows=True, sentence_context=16, sentence_context_dropout=1.0)
    _, with_context = _hidden(make_nlp(sentence_windows=True, sentence_context=16), SENTS)
    _, alone = _hidden(make_nlp(sentence_windows=True), SENTS)
    assert not numpy.allclose(with_context, alone, atol=1e-3)  # the control
    # training: every sentence read alone; inference: every sentence with its context
    numpy.testing.assert_allclose(_train_rows(always, SENTS), alone, atol=2e-5, rtol=1e-4)
    numpy.testing.assert_allclose(_hidden(always, SENTS)[1], with_context, atol=2e-5, rtol=1e-4)
    # without dropout, training reads the context as inference does
    off = make_nlp(sentence_windows=True, sentence_context=16, sentence_context_dropout=0.0)
    numpy.testing.assert_allclose(_train_rows(off, SENTS), with_context, atol=2e-5, rtol=1e-4)


def test_context_dropout_draws_per_sentence(make_nlp):
    """At 0.5, each training sentence is read either with its context or alone, drawn per sentence
    from numpy's generator (seeded by spacy's fix_random_seed), so both happen in one doc."""
    half = make_nlp(sentence_windows=True, sentence_context=16, sentence_context_dropout=0.5)
    doc, with_context = _hidden(make_nlp(sentence_windows=True, sentence_context=16), SENTS * 2)
    _, alone = _hidden(make_nlp(sentence_windows=True), SENTS * 2)
    spacy.util.fix_random_seed(0)
    seen = set()
    for _ in range(3):
        rows = _train_rows(half, SENTS * 2)
        for k in range(len(SENTS) * 2):
            r = _rows_of_sentence(doc, k)
            read = [
                name
                for name, ref in (("context", with_context), ("alone", alone))
                if numpy.allclose(rows[r], ref[r], atol=2e-5, rtol=1e-4)
            ]
            assert len(read) == 1, k  # exactly one of the two readings
            seen.add(read[0])
    assert seen == {"context", "alone"}


def test_context_dropout_round_trips_and_a_config_override_wins(make_nlp, tmp_path):
    nlp = make_nlp(sentence_windows=True, sentence_context=16, sentence_context_dropout=0.5)
    nlp.to_disk(tmp_path / "p")
    assert (
        spacy.load(tmp_path / "p").get_pipe("transformer").model.attrs["sentence_context_dropout"]
        == 0.5
    )
    override = {"components": {"transformer": {"model": {"sentence_context_dropout": 0.0}}}}
    loaded = spacy.load(tmp_path / "p", config=override)
    assert loaded.get_pipe("transformer").model.attrs["sentence_context_dropout"] == 0.0


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"sentence_context": 8, "sentence_context_dropout": 1.5}, r"probability in \[0, 1\]"),
        ({"sentence_context": 8, "sentence_context_dropout": -0.1}, r"probability in \[0, 1\]"),
        ({"sentence_context": 8, "sentence_context_dropout": True}, r"probability in \[0, 1\]"),
        ({"sentence_context": 8, "sentence_context_dropout": "0.5"}, r"probability in \[0, 1\]"),
        ({"sentence_context_dropout": 0.5}, "needs sentence_context > 0"),
    ],
)
def test_bad_sentence_context_dropout_is_refused_with_the_fix(settings, message, tiny_checkpoint):
    from spacy_modernbert.encoder.architecture import modernbert_transformer_v1

    with pytest.raises(ValueError, match=message):
        modernbert_transformer_v1(str(tiny_checkpoint), sentence_windows=True, **settings)
