"""`spacy-modernbert.DocumentMemory.v1`: [v_t ; mean of v over the doc's tokens with t's key]."""

from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Model

from spacy_modernbert.layers.document_memory import (
    NAME,
    document_memory_v1,
    set_memory_group,
    units,
)

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["Smith", "met", "Mr.", "smith", "and", "Smith", "left"]


def _fixed(width=3, seed=0):
    """A stand-in tok2vec: fixed random vectors per token position; records its backprop."""
    rng = numpy.random.default_rng(seed)
    table = rng.normal(size=(64, width)).astype("f")
    seen = {}

    def forward(model, docs, is_train):
        out = [model.ops.asarray2f(table[: len(d)] + i) for i, d in enumerate(docs)]

        def backprop(d_out):
            seen["d"] = d_out
            return docs

        return out, backprop

    return Model("fixed", forward, dims={"nO": width}), table, seen


def _doc(words=WORDS):
    return Doc(spacy.blank("en").vocab, words=words)


@pytest.mark.parametrize(
    "key, groups",
    [
        ("lower", [[0, 3, 5], [1], [2], [3, 0, 5], [4], [5, 0, 3], [6]]),
        ("orth", [[0, 5], [1], [2], [3], [4], [5, 0], [6]]),
    ],
)
def test_forward_is_the_vector_beside_the_mean_of_its_words(key, groups):
    inner, table, _ = _fixed()
    model = document_memory_v1(inner, key=key)
    (Y,), _ = model([_doc()], False)
    V = table[: len(WORDS)]
    assert Y.shape == (len(WORDS), 6) and model.get_dim("nO") == 6
    numpy.testing.assert_allclose(Y[:, :3], V)
    for t, same in enumerate(groups):
        numpy.testing.assert_allclose(Y[t, 3:], V[same].mean(axis=0), rtol=1e-6, atol=1e-6)
    # "Smith" (0) reads its two other mentions: not its own vector
    assert not numpy.allclose(Y[0, 3:], V[0])


def test_a_word_seen_once_reads_itself_and_docs_are_pooled_alone():
    inner, table, _ = _fixed()
    model = document_memory_v1(inner)
    alone = _doc(["Paris", "is", "big", "."])
    (Y,), _ = model([alone], False)
    numpy.testing.assert_allclose(Y, numpy.hstack([table[:4], table[:4]]))
    # batch-independent: the same doc after another one (the stand-in adds the doc's batch
    # index to its vectors, so compare with that shift) pools only its own tokens
    (_, Y2), _ = model([_doc(), alone], False)
    numpy.testing.assert_allclose(Y2, numpy.hstack([table[:4] + 1, table[:4] + 1]))
    (E,), _ = model([_doc([])], False)
    assert E.shape == (0, 6)


def test_backprop_is_exact():
    """The gradient of sum(G * Y) by V, from backprop, equals finite differences (the layer is
    linear) and the hand computation: G's first half plus the group mean of its second half."""
    inner, table, seen = _fixed()
    model = document_memory_v1(inner)
    doc = _doc()
    (Y,), backprop = model([doc], True)
    G = numpy.random.default_rng(1).normal(size=Y.shape).astype("f")
    assert backprop([G]) == [doc]
    (dV,) = seen["d"]
    lower = [w.lower() for w in WORDS]
    hand = numpy.stack(
        [
            G[t, :3] + G[[u for u, w in enumerate(lower) if w == lower[t]], 3:].mean(axis=0)
            for t in range(len(WORDS))
        ]
    )
    numpy.testing.assert_allclose(dV, hand, rtol=1e-5, atol=1e-6)

    def loss(V):
        def forward(m, docs, is_train):
            return [m.ops.asarray2f(V)], lambda d: docs

        (out,), _ = document_memory_v1(Model("v", forward, dims={"nO": 3}))([doc], False)
        return float((G.astype("d") * out.astype("d")).sum())

    V = table[: len(WORDS)].astype("d")
    numeric = numpy.zeros_like(V)
    for i, j in numpy.ndindex(*V.shape):
        up, down = V.copy(), V.copy()
        up[i, j] += 0.5
        down[i, j] -= 0.5
        numeric[i, j] = loss(up) - loss(down)
    numpy.testing.assert_allclose(dV, numeric, rtol=1e-4, atol=1e-4)


def test_docs_of_one_memory_group_are_pooled_as_one_text():
    """Docs sharing a group (set_memory_group) pool together, exactly as the concatenated doc
    pools alone; docs without a group, or with another group, are untouched; backprop pools the
    memory half's gradient across the group's docs."""
    inner, table, seen = _fixed()
    model = document_memory_v1(inner)
    words_a, words_b = WORDS[:3], WORDS[3:]  # "smith" in both halves
    a, b, alone, c = _doc(words_a), _doc(words_b), _doc(["Smith", "ran"]), _doc(["smith"])
    set_memory_group(a, "block-1")
    set_memory_group(b, "block-1")
    set_memory_group(c, 7)
    assert units([a, alone, b, c]) == [[0, 2], [1], [3]]
    (Ya, Yalone, Yb, Yc), backprop = model([a, alone, b, c], True)
    # the stand-in adds each doc's batch index to its vectors: V_a = table + 0, V_b = table + 2
    Va, Vb = table[: len(words_a)], table[: len(words_b)] + 2
    V = numpy.vstack([Va, Vb])
    lower = [w.lower() for w in WORDS]
    memory = numpy.stack(
        [V[[u for u, w in enumerate(lower) if w == lower[t]]].mean(0) for t in range(7)]
    )
    numpy.testing.assert_allclose(numpy.vstack([Ya, Yb]), numpy.hstack([V, memory]), rtol=1e-6)
    numpy.testing.assert_allclose(Yalone, numpy.hstack([table[:2] + 1] * 2))  # pooled alone
    numpy.testing.assert_allclose(Yc, numpy.hstack([table[:1] + 3] * 2))  # group of one
    G = [
        numpy.random.default_rng(k).normal(size=Y.shape).astype("f")
        for k, Y in enumerate((Ya, Yalone, Yb, Yc))
    ]
    backprop(G)
    Gab = numpy.vstack([G[0], G[2]])
    hand = Gab[:, :3] + numpy.stack(
        [Gab[[u for u, w in enumerate(lower) if w == lower[t]], 3:].mean(0) for t in range(7)]
    )
    numpy.testing.assert_allclose(
        numpy.vstack([seen["d"][0], seen["d"][2]]), hand, rtol=1e-5, atol=1e-6
    )
    numpy.testing.assert_allclose(seen["d"][1], G[1][:, :3] + G[1][:, 3:], rtol=1e-6)
    # b read for the memory only: it keeps its own half's gradient, loses the memory's; a's is
    # unchanged (b's memory half reads a's vectors)
    set_memory_group(b, "block-1", trained=False)
    _, backprop = model([a, alone, b, c], True)
    backprop(G)
    numpy.testing.assert_allclose(seen["d"][2], G[2][:, :3], rtol=1e-6)
    numpy.testing.assert_allclose(seen["d"][0], hand[: len(words_a)], rtol=1e-5, atol=1e-6)
    set_memory_group(b, "block-1")  # trained again
    _, backprop = model([a, alone, b, c], True)
    backprop(G)
    numpy.testing.assert_allclose(seen["d"][2], hand[len(words_a) :], rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="int or a str"):
        set_memory_group(a, ["block"])


def _ner_reading_a_recorder(memory: bool):
    """A blank pipeline whose ner reads a small HashEmbedCNN (wrapped in the memory when
    `memory`), with the gradient that reaches the tok2vec's output recorded per doc."""
    nlp = spacy.blank("en")
    tok2vec = {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "pretrained_vectors": None,
        "width": 8,
        "depth": 1,
        "embed_size": 200,
        "window_size": 1,
        "maxout_pieces": 2,
        "subword_features": True,
    }
    if memory:
        tok2vec = {"@architectures": NAME, "key": "lower", "tok2vec": tok2vec}
    model = {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": 16,
        "maxout_pieces": 2,
        "use_upper": True,
        "tok2vec": tok2vec,
    }
    ner = nlp.add_pipe("ner", config={"model": model})
    return nlp, ner


def _recorded_update(nlp, ner, examples, memory: bool):
    """One ner update (no optimizer step, no dropout, the same random draws): the ner's loss and the gradient that
    reached the (inner) tok2vec's output, per doc."""
    cnn = ner.model.get_ref("tok2vec").layers[0]  # the parser chains it to its own Linear
    if memory:
        cnn = cnn.layers[0]
    seen = {}
    original = cnn._func

    def recording(model, docs, is_train):
        out, backprop = original(model, docs, is_train)

        def record(d_out):
            seen["d"] = [numpy.array(d) for d in d_out]
            return backprop(d_out)

        return out, record

    cnn._func = recording
    losses = {}
    spacy.util.fix_random_seed(1)  # the ner's update draws random numbers: the same each call
    ner.update(examples, drop=0.0, sgd=None, losses=losses)
    cnn._func = original
    return losses["ner"], seen["d"]


@pytest.mark.parametrize("memory", [False, True])
def test_unannotated_docs_give_the_ner_no_loss_and_no_gradient(memory):
    """A doc whose tokens all carry missing NER annotation (ent_iob 0) beside an annotated one:
    spaCy's ner makes no state for it, so the loss and the gradient reaching the annotated
    doc's vectors are those of the annotated doc alone, and the unannotated doc's vectors get
    an exactly zero gradient. With the memory and one memory group, the only gradient the
    unannotated doc gets comes through the pooled memory: nonzero exactly on its tokens whose
    lowercase form the annotated doc also has ("jones")."""
    nlp, ner = _ner_reading_a_recorder(memory)
    target = nlp.make_doc("Smith met Jones in Paris .")
    target_eg = Example.from_dict(
        target, {"entities": [(0, 5, "PER"), (10, 15, "PER"), (19, 24, "LOC")]}
    )
    neighbour = nlp.make_doc("JONES left Berlin today")
    neighbour_eg = Example.from_dict(neighbour, {})
    assert all(t.ent_iob == 0 for t in neighbour_eg.reference)
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: [target_eg])
    for _ in range(3):  # the upper layer starts at zero: no gradient below it before a step
        ner.update([target_eg], drop=0.0, sgd=optimizer)
    loss_alone, (d_alone,) = _recorded_update(nlp, ner, [target_eg], memory)
    assert loss_alone > 0 and numpy.abs(d_alone).sum() > 0
    loss_both, (d_target, d_neighbour) = _recorded_update(
        nlp, ner, [target_eg, neighbour_eg], memory
    )
    assert loss_both == pytest.approx(loss_alone, rel=1e-6)
    numpy.testing.assert_allclose(d_target, d_alone, rtol=1e-5, atol=1e-7)
    assert not d_neighbour.any()
    if memory:
        set_memory_group(target, 0)
        set_memory_group(neighbour, 0)
        loss_group, (_, d_neighbour) = _recorded_update(nlp, ner, [target_eg, neighbour_eg], memory)
        assert d_neighbour[0].any(), "JONES reads (and trains) the memory of Jones"
        assert not d_neighbour[1:].any(), "left, Berlin, today share no word with the target"
        set_memory_group(neighbour, 0, trained=False)  # read for the memory only
        _, (_, d_neighbour) = _recorded_update(nlp, ner, [target_eg, neighbour_eg], memory)
        assert not d_neighbour.any()


def test_missing_tags_inside_an_annotated_doc_still_train_the_ner():
    """Why ner_study's memory_block feeds a sentence's neighbours as docs of their own, not as
    the untagged rest of one doc: inside a doc with annotation, spaCy's ner still makes moves
    over the missing-tag tokens and scores them (every valid move costs 0 there, the invalid
    ones are pushed down), so they add loss and a gradient of their own."""
    nlp, ner = _ner_reading_a_recorder(False)
    tagged = ["U-PER", "O", "U-PER", "O", "U-LOC", "O"]
    target = Example.from_dict(nlp.make_doc("Smith met Jones in Paris ."), {"entities": tagged})
    joined = nlp.make_doc("Smith met Jones in Paris . JONES left Berlin today")
    one_doc = Example.from_dict(joined, {"entities": tagged + ["-"] * 4})
    assert [t.ent_iob for t in one_doc.reference][6:] == [0] * 4
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: [target])
    for _ in range(3):
        ner.update([target], drop=0.0, sgd=optimizer)
    loss_alone, _ = _recorded_update(nlp, ner, [target], False)
    loss_joined, (d_joined,) = _recorded_update(nlp, ner, [one_doc], False)
    assert loss_joined > loss_alone * 1.01
    assert all(d_joined[t].any() for t in range(6, 10))


def test_unknown_key_names_the_setting():
    with pytest.raises(ValueError, match="key 'norm'.*lower.*orth"):
        document_memory_v1(_fixed()[0], key="norm")


def test_the_layer_is_an_entry_point():
    """setup.cfg lists it under spacy_architectures (configs need no import), and the name
    resolves to this function."""
    target = "spacy_modernbert.layers.document_memory:document_memory_v1"
    architectures = (ROOT / "setup.cfg").read_text().split("spacy_architectures =")[1]
    assert f"{NAME} = {target}" in architectures.split("spacy_factories =")[0]
    assert spacy.registry.architectures.get(NAME) is document_memory_v1


TRAIN = [
    (
        "Mr. Smith joined Acme in London . Smith said Acme grew .",
        [(4, 9, "PER"), (17, 21, "ORG"), (25, 31, "LOC"), (34, 39, "PER"), (45, 49, "ORG")],
    ),
    (
        "Bob Stone flew to Paris . Stone met Bob .",
        [(0, 9, "PER"), (18, 23, "LOC"), (26, 31, "PER")],
    ),
]


def _memory_ner(listener_ner_config, key="lower"):
    config = {"model": dict(listener_ner_config["model"])}
    config["model"]["tok2vec"] = {
        "@architectures": NAME,
        "key": key,
        "tok2vec": listener_ner_config["model"]["tok2vec"],
    }
    return config


def test_pipeline_with_the_memory_trains_saves_and_reloads(
    tiny_checkpoint, transformer_config, listener_ner_config, tmp_path
):
    # seed 1: on this 2-doc toy, seed 0 plateaus for ~25 updates whether the memory half is
    # pooled or zeroed (the doubled Linear's initialization), while a wrapper passing v alone
    # trains bit for bit as the plain listener does
    spacy.util.fix_random_seed(1)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, max_length=256))
    nlp.add_pipe("ner", config=_memory_ner(listener_ner_config))
    # the transformer found the listener inside the wrapper
    transformer = nlp.get_pipe("transformer")
    assert list(transformer.listener_map) == ["ner"] and len(transformer.listeners) == 1
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    memory, _, linear = nlp.get_pipe("ner").model.get_ref("tok2vec").layers
    assert memory.name == "document_memory"
    assert linear.get_dim("nI") == memory.get_dim("nO") == 2 * transformer.model.get_dim("nO")
    encoder = transformer.model.shims[0]._model
    before = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    losses = []
    for _ in range(20):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step, drop=0.0)
        losses.append(step["ner"])
    assert losses[-1] < losses[0] * 0.5
    changed = [k for k, v in encoder.state_dict().items() if not numpy.allclose(before[k], v)]
    assert len(changed) > len(before) // 2, "the memory's backprop must reach the encoder"
    texts = [t for t, _ in TRAIN] + ["Smith went to London .", ""]
    expected = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    assert expected[0], "the trained pipeline finds entities"
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(texts)] == expected
    assert list(loaded.get_pipe("transformer").listener_map) == ["ner"]


def test_config_round_trip(tiny_checkpoint, transformer_config, listener_ner_config):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint))
    nlp.add_pipe("ner", config=_memory_ner(listener_ner_config, key="orth"))
    text = nlp.config.to_str()
    tok2vec = nlp.config["components"]["ner"]["model"]["tok2vec"]
    assert tok2vec["@architectures"] == NAME and tok2vec["key"] == "orth"
    again = spacy.util.load_model_from_config(spacy.util.load_config_from_str(text))
    assert again.config.to_str() == text
    memory = again.get_pipe("ner").model.get_ref("tok2vec").layers[0]
    assert memory.name == "document_memory" and memory.attrs["key"] == "orth"
    assert list(again.get_pipe("transformer").listener_map) == ["ner"]


def test_replace_listeners_reaches_the_listener_inside_the_memory(
    tiny_checkpoint, transformer_config, listener_ner_config, tmp_path
):
    """`nlp.replace_listeners("transformer", "ner", ["model.tok2vec.tok2vec"])`: the ner gets
    its own encoder inside the memory, with the same entities, and the saved pipeline loads
    (spaCy hands the wrapper's config to the encoder's replace_listener_cfg)."""
    spacy.util.fix_random_seed(1)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, max_length=256))
    nlp.add_pipe("ner", config=_memory_ner(listener_ner_config))
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    texts = [t for t, _ in TRAIN]
    expected = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    nlp.replace_listeners("transformer", "ner", ["model.tok2vec.tok2vec"])
    tok2vec = nlp.config["components"]["ner"]["model"]["tok2vec"]
    assert tok2vec["@architectures"] == NAME
    assert tok2vec["tok2vec"]["@architectures"] == "spacy-modernbert.Tok2VecModernBert.v1"
    nlp.remove_pipe("transformer")
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)] == expected
    nlp.to_disk(tmp_path / "own")
    loaded = spacy.load(tmp_path / "own")
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(texts)] == expected
