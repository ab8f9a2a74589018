"""The shipped configs: valid for `spacy debug config`, and the settings the README promises."""
import subprocess
import sys
from pathlib import Path

import pytest
from spacy import util

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.cfg"))


def test_all_three_configs_ship():
    assert {p.stem for p in CONFIGS} >= {"cpu_tiny", "gpu_base", "gpu_large"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_spacy_debug_config_passes(path):
    cmd = [sys.executable, "-m", "spacy", "debug", "config", str(path),
           "--paths.train", "corpus/train.spacy", "--paths.dev", "corpus/dev.spacy"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Config is valid" in run.stdout


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shared_encoder_and_balanced_score_weights(path):
    config = util.load_config(path)
    assert config["nlp"]["pipeline"] == ["transformer", "ner", "anomaly_scorer"]
    encoder = config["components"]["transformer"]["model"]
    assert encoder["@architectures"] == "spacy-modernbert.ModernBertTransformer.v1"
    for name in ("ner", "anomaly_scorer"):
        assert config["components"][name]["model"]["tok2vec"]["@architectures"] == "spacy-transformers.TransformerListener.v1"
    weights = config["training"]["score_weights"]
    assert weights["ents_f"] == weights["anomaly_auc"] == 0.5


@pytest.mark.parametrize("stem, low, high", [("gpu_base", 5e-5, 8e-5), ("gpu_large", 1e-5, 3e-5)])
def test_gpu_configs_use_bf16_and_modernbert_learning_rates(stem, low, high):
    config = util.load_config(ROOT / "configs" / f"{stem}.cfg")
    encoder = config["components"]["transformer"]["model"]
    assert encoder["mixed_precision"] is True and encoder["max_length"] == 8192
    assert low <= config["training"]["optimizer"]["learn_rate"]["initial_rate"] <= high
