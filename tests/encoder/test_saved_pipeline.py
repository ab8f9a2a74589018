"""Pipelines saved by earlier releases still load and compute the same vectors.

`tests/fixtures/pipeline_v0_1` was saved by release 0.1.0 (transformers' ModernBertModel
inside); see tests/fixtures/make_saved_pipeline.py.
"""

import json
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from safetensors.torch import load as load_safetensors

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "pipeline_v0_1"


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(FIXTURE)


def test_pipeline_saved_by_0_1_loads_and_agrees(nlp):
    for record in json.loads((FIXTURE / "expected.json").read_text()):
        doc = nlp(record["text"])
        trf = doc._.trf_data
        assert [int(i) for i in trf.wordpieces.input_ids[0]] == record["input_ids"]
        numpy.testing.assert_allclose(
            trf.model_output.last_hidden_state[0], record["last_hidden_state"], atol=2e-5, rtol=1e-4
        )


def _shim_message(path):
    """The encoder shim's bytes inside thinc's serialized model."""
    return srsly.msgpack_loads(srsly.msgpack_loads(path.read_bytes())["shims"][0][0])


def test_resaving_keeps_the_format(nlp, tmp_path):
    """Config + tokenizer + safetensors in Hugging Face naming, byte-compatible with 0.1."""
    nlp.to_disk(tmp_path)
    old, new = (_shim_message(d / "transformer" / "model") for d in (FIXTURE, tmp_path))
    assert new["format"] == old["format"] and set(new["tokenizer"]) == set(old["tokenizer"])
    old_state, new_state = load_safetensors(old["state"]), load_safetensors(new["state"])
    assert set(new_state) == set(old_state)
    for key, value in old_state.items():
        assert numpy.array_equal(new_state[key].numpy(), value.numpy()), key
    assert new["config"]["model_type"] == "modernbert"
    again = spacy.load(tmp_path)
    text = "The quick brown fox jumps over the lazy dog."
    numpy.testing.assert_array_equal(
        again(text)._.trf_data.model_output.last_hidden_state,
        nlp(text)._.trf_data.model_output.last_hidden_state,
    )


BLOCKED = "transformers.models.modernbert.modeling_modernbert"
_LOAD_WITHOUT_MODELING = f"""
import json, sys
import numpy

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == {BLOCKED!r}:
            raise ImportError("blocked by the test: " + name)
        return None

sys.meta_path.insert(0, Refuse())
import spacy
nlp = spacy.load(sys.argv[1])
record = json.loads(open(sys.argv[2]).read())[0]
hidden = nlp(record["text"])._.trf_data.model_output.last_hidden_state[0]
numpy.testing.assert_allclose(hidden, record["last_hidden_state"], atol=2e-5, rtol=1e-4)
assert {BLOCKED!r} not in sys.modules
print("loaded without", {BLOCKED!r})
"""


def test_saved_pipeline_loads_without_transformers_modeling_code(tmp_path):
    """Our modules own the weights and their shapes: loading a saved pipeline never imports
    transformers' ModernBERT modeling code (a fresh process where importing it fails)."""
    import subprocess
    import sys

    script = tmp_path / "load.py"
    script.write_text(_LOAD_WITHOUT_MODELING)
    result = subprocess.run(
        [sys.executable, str(script), str(FIXTURE), str(FIXTURE / "expected.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded without" in result.stdout
