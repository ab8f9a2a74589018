"""`spacy-modernbert.DocumentMemory.v1`: [v_t ; mean of v over the doc's tokens with t's key]."""

from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Model

from spacy_modernbert.layers.document_memory import NAME, document_memory_v1

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
