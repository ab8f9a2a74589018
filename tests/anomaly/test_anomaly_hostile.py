"""Files that load but lie, divergence and missing upstream output (issue 14, items 6, 7, 9).

Each refusal names the component, the file and the field; nothing returns a NaN score or
a score computed from zero vectors.
"""

import json
import math
import shutil

import numpy
import pytest
import spacy
from thinc.api import Adam

from .conftest import examples, make_records, shared_pipeline, standalone_pipeline, train


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained one_class shared pipeline (tok2vec + ner + anomaly_scorer), saved.

    The Deep-SVDD detector keeps its statistics in cfg (one_class_location/scale), which the
    cfg tests below edit; the embedding detectors' state has its own test at the end.
    """
    spacy.util.fix_random_seed(0)
    nlp = shared_pipeline("one_class", detector="svdd")
    train(nlp, examples(nlp, make_records(40, 0.1, seed=1)), epochs=2)
    path = tmp_path_factory.mktemp("anomaly") / "pipeline"
    nlp.to_disk(path)
    return path


def _copy(saved, tmp_path):
    out = tmp_path / "pipeline"
    shutil.copytree(saved, out)
    return out


def _edit_cfg(path, **fields):
    cfg_file = path / "anomaly_scorer" / "cfg"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(fields)
    cfg_file.write_text(json.dumps(cfg))  # json writes NaN / Infinity as such
    return cfg_file


def test_saved_pipeline_loads_and_scores(saved):
    doc = spacy.load(saved)("Alice reported server restarted today .")
    assert 0.0 <= doc._.anomaly_score <= 1.0


@pytest.mark.parametrize(
    "field,value",
    [
        ("threshold", float("nan")),
        ("threshold", 5.0),
        ("threshold", -0.1),
        ("threshold", "high"),
        ("one_class_scale", 0.0),
        ("one_class_scale", -1.0),
        ("one_class_scale", float("inf")),
        ("one_class_location", float("nan")),
        ("pos_weight", -2.0),
        ("mode", "evil"),
        ("label", ""),
        ("n_train_normal", -5),
    ],
)
def test_lying_cfg_is_refused_naming_file_and_field(saved, tmp_path, field, value):
    path = _copy(saved, tmp_path)
    cfg_file = _edit_cfg(path, **{field: value})
    with pytest.raises(
        ValueError, match=f"anomaly_scorer 'anomaly_scorer': {cfg_file}.* invalid '{field}'"
    ):
        spacy.load(path)


def test_scale_without_location_is_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    _edit_cfg(path, one_class_location=None)
    with pytest.raises(ValueError, match="set together with one_class_location"):
        spacy.load(path)


def test_cfg_that_is_not_json_is_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    (path / "anomaly_scorer" / "cfg").write_bytes(b"\x00\xff not json")
    with pytest.raises(ValueError, match=r"anomaly_scorer/cfg is not valid JSON"):
        spacy.load(path)


def test_truncated_model_file_is_named(saved, tmp_path):
    path = _copy(saved, tmp_path)
    model_file = path / "anomaly_scorer" / "model"
    model_file.write_bytes(model_file.read_bytes()[:200])
    with pytest.raises(ValueError, match=f"{model_file} is unreadable, truncated"):
        spacy.load(path)


def test_non_finite_weights_are_refused_at_load(saved, tmp_path):
    nlp = spacy.load(saved)
    out_layer = nlp.get_pipe("anomaly_scorer").model.get_ref("output_layer")
    name = next(n for n in out_layer.param_names if out_layer.has_param(n))
    param = out_layer.get_param(name).copy()
    param.flat[0] = numpy.nan
    out_layer.set_param(name, param)
    nlp.to_disk(tmp_path / "nan")
    with pytest.raises(
        ValueError, match=r"anomaly_scorer/model holds non-finite weights .*learn_rate"
    ):
        spacy.load(tmp_path / "nan")
    with pytest.raises(ValueError, match="non-finite weights"):
        spacy.load(saved).get_pipe("anomaly_scorer").from_bytes(
            nlp.get_pipe("anomaly_scorer").to_bytes()
        )


@pytest.mark.parametrize(
    "mode,settings,layer",
    [
        ("supervised", {}, "output_layer"),
        ("one_class", {"detector": "svdd"}, "output_layer"),
        ("one_class", {"detector": "knn"}, "tok2vec"),  # the detector reads the pooled embedding
    ],
)
def test_nan_output_never_becomes_a_score(mode, settings, layer, seeded):
    nlp = standalone_pipeline(mode, **settings)
    train(nlp, examples(nlp, make_records(20, 0.3, seed=2), entities=False), epochs=1)
    for node in nlp.get_pipe("anomaly_scorer").model.get_ref(layer).walk():
        for name in node.param_names:
            if node.has_param(name):
                node.set_param(name, node.get_param(name) * numpy.nan)
    with pytest.raises(
        ValueError, match="produced NaN for 1 document|non-finite document embeddings"
    ):
        nlp("Alice reported server restarted today .")


def _transformer_anomaly_pipeline(tiny_checkpoint, transformer_config, ner_config=None):
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config=transformer_config(tiny_checkpoint, max_length=64, max_batch_tokens=512),
    )
    if ner_config is not None:
        nlp.add_pipe("ner", config=ner_config)
    listener = {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
    }
    nlp.add_pipe(
        "anomaly_scorer",
        config={
            "model": {"@architectures": "spacy-modernbert.AnomalyHead.v1", "tok2vec": listener}
        },
    )
    egs = [
        Example.from_dict(nlp.make_doc(t), {"cats": {"ANOMALY": a}, "entities": e})
        for t, a, e in [
            ("Maria Lopez restarted payments-api in eu-west-1.", 0.0, [(0, 11, "PERSON")]),
            ("Someone copied all customer passwords to a personal drive.", 1.0, []),
            ("Bob Stone rolled back auth-service at 03:12 UTC.", 0.0, [(0, 9, "PERSON")]),
            ("Disk usage on db-7 reached 91 percent.", 0.0, []),
        ]
    ]
    return nlp, egs


def test_diverging_training_stops_naming_component_and_learning_rate(
    tiny_checkpoint, transformer_config, listener_ner_config, seeded, tmp_path
):
    """learn_rate = 1000 with ner sharing the encoder (issue 14): a clear stop instead of
    `scores must be finite` at the first evaluation, and the diverged model does not load."""
    nlp, egs = _transformer_anomaly_pipeline(
        tiny_checkpoint, transformer_config, listener_ner_config
    )
    nlp.initialize(lambda: egs)
    optimizer = Adam(1000.0)
    with pytest.raises(
        ValueError,
        match=r"anomaly_scorer 'anomaly_scorer': the training loss is .*not finite.*learning rate",
    ):
        for _ in range(30):
            nlp.update(egs, sgd=optimizer)
    nlp.to_disk(tmp_path / "model-last")  # what `spacy train` saves on the way out
    with pytest.raises(ValueError, match="NaN or infinite|non-finite"):
        spacy.load(tmp_path / "model-last")


def test_non_finite_loss_stops_before_the_update(seeded):
    """The failing batch changes no weight (the gradient is never applied)."""
    nlp = standalone_pipeline("supervised")
    egs = examples(nlp, make_records(8, 0.5, seed=4), entities=False)
    optimizer = nlp.initialize(lambda: egs)
    model = nlp.get_pipe("anomaly_scorer").model
    out_layer = model.get_ref("output_layer")
    name = next(
        n
        for n in out_layer.param_names
        if out_layer.has_param(n) and out_layer.get_param(n).size > 1
    )
    poisoned = out_layer.get_param(name).copy()
    poisoned.flat[0] = numpy.inf
    out_layer.set_param(name, poisoned)
    tok2vec_before = [p.copy() for p in _params(model.get_ref("tok2vec"))]
    with pytest.raises(ValueError, match="not finite"):
        nlp.update(egs, sgd=optimizer)
    for before, after in zip(tok2vec_before, _params(model.get_ref("tok2vec"))):
        numpy.testing.assert_array_equal(before, after)


def _params(model):
    return [
        node.get_param(n) for node in model.walk() for n in node.param_names if node.has_param(n)
    ]


def test_disabled_tok2vec_is_an_error_not_zero_vectors(saved):
    nlp = spacy.load(saved, disable=["tok2vec"])
    with pytest.raises(ValueError, match="carries no output of it: that component is disabled"):
        nlp("Alice reported server restarted today .")
    # empty docs need no upstream output
    assert math.isfinite(nlp("")._.anomaly_score)
    spacy.load(saved)("Alice reported server restarted today .")  # enabled: fine


def test_disabled_transformer_is_an_error(tiny_checkpoint, transformer_config, tmp_path):
    nlp, egs = _transformer_anomaly_pipeline(tiny_checkpoint, transformer_config)
    nlp.initialize(lambda: egs)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p", disable=["transformer"])
    with pytest.raises(ValueError, match="listens to the encoder component.*disabled"):
        loaded("Disk usage reached 91 percent.")
    assert (
        0.0 <= spacy.load(tmp_path / "p")("Disk usage reached 91 percent.")._.anomaly_score <= 1.0
    )


def test_knn_state_with_zero_scale_is_refused(tmp_path):
    """The knn detector's stored statistics are checked at load like the cfg."""
    import io

    spacy.util.fix_random_seed(0)
    nlp = shared_pipeline("one_class", detector="knn")
    train(nlp, examples(nlp, make_records(40, 0.1, seed=1)), epochs=1)
    path = tmp_path / "pipeline"
    nlp.to_disk(path)
    state_file = path / "anomaly_scorer" / "detector"
    with numpy.load(io.BytesIO(state_file.read_bytes()), allow_pickle=False) as npz:
        state = {key: numpy.array(npz[key]) for key in npz.files}
    state["scale"] = numpy.array(0.0)
    buffer = io.BytesIO()
    numpy.savez(buffer, **state)
    state_file.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="anomaly_scorer.*non-positive scale"):
        spacy.load(path)
