"""The shipped configs: valid for `spacy debug config`, and the settings the README promises."""

import subprocess
import sys
from pathlib import Path

import pytest
from spacy import util

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.cfg"))
# The NER + anomaly configs (configs/intents_*.cfg: tests/project/test_intents_config.py).
NER_CONFIGS = [p for p in CONFIGS if not p.stem.startswith("intents_")]


def test_all_three_configs_ship():
    assert {p.stem for p in CONFIGS} >= {"cpu_tiny", "gpu_base", "gpu_large"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_spacy_debug_config_passes(path):
    cmd = [
        sys.executable,
        "-m",
        "spacy",
        "debug",
        "config",
        str(path),
        "--paths.train",
        "corpus/train.spacy",
        "--paths.dev",
        "corpus/dev.spacy",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Config is valid" in run.stdout


@pytest.mark.parametrize("path", NER_CONFIGS, ids=lambda p: p.stem)
def test_shared_encoder_and_balanced_score_weights(path):
    config = util.load_config(path)
    assert config["nlp"]["pipeline"] == [
        "transformer",
        "ner",
        "entity_consistency",
        "anomaly_scorer",
    ]
    consistency = config["components"]["entity_consistency"]
    assert consistency == {
        "factory": "entity_consistency",
        "vote": True,
        "propagate": True,
        "min_count": 1,
    }
    encoder = config["components"]["transformer"]["model"]
    assert encoder["@architectures"] == "spacy-modernbert.ModernBertTransformer.v1"
    for name in ("ner", "anomaly_scorer"):
        assert (
            config["components"][name]["model"]["tok2vec"]["@architectures"]
            == "spacy-transformers.TransformerListener.v1"
        )
    weights = config["training"]["score_weights"]
    assert weights["ents_f"] == weights["anomaly_auc"] == 0.5


@pytest.mark.parametrize("stem, low, high", [("gpu_base", 5e-5, 8e-5), ("gpu_large", 1e-5, 3e-5)])
def test_gpu_configs_use_bf16_and_modernbert_learning_rates(stem, low, high):
    config = util.load_config(ROOT / "configs" / f"{stem}.cfg")
    encoder = config["components"]["transformer"]["model"]
    assert encoder["mixed_precision"] is True and encoder["max_length"] == 8192
    assert low <= config["training"]["optimizer"]["learn_rate"]["initial_rate"] <= high


def _train_overrides() -> dict:
    """The `--training.*` overrides that project.yml's `train` command passes, vars filled in."""
    import re

    import srsly

    project = srsly.read_yaml(ROOT / "project.yml")
    script = " ".join(next(c for c in project["commands"] if c["name"] == "train")["script"])
    script = re.sub(r"\$\{vars\.(\w+)\}", lambda m: str(project["vars"][m.group(1)]), script)
    return {
        key: srsly.json_loads(value)
        for key, value in re.findall(r"--(training\.\w+) (\S+)", script)
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("via_project", [False, True], ids=["config", "weasel-train"])
def test_learning_rate_stays_positive_until_training_ends(path, via_project):
    """warmup_linear reaches rate 0 at total_steps whatever max_epochs says: the run must end first."""
    from spacy.util import registry

    config = util.load_config(
        path, overrides=_train_overrides() if via_project else {}, interpolate=True
    )
    training = config["training"]
    max_steps = training["max_steps"]
    assert max_steps > 0, (
        f"{path.name}: max_steps = 0 bounds the run by epochs only, so on a larger corpus it goes on "
        "training at rate 0 after the schedule's total_steps; set max_steps and total_steps to the same number"
    )
    from itertools import islice

    schedule = registry.resolve({"lr": training["optimizer"]["learn_rate"]})["lr"]
    # thinc steps the schedule after every update: update k (0-based) uses its k-th value
    # (warmup_linear.v1 is a generator; a Schedule object is called with the step)
    values = (
        list(islice(schedule, max_steps))
        if hasattr(schedule, "__next__")
        else [schedule(step=k) for k in range(max_steps)]
    )
    rates = values[1:]
    assert min(rates) > 0, (
        f"{path.name}: the learning rate reaches 0 at step {1 + rates.index(min(rates))} of {max_steps}"
    )
    assert training["optimizer"]["learn_rate"]["total_steps"] == max_steps, (
        "the schedule should also cover the whole run"
    )


# The words configs/cpu_tiny.cfg trains on (max_steps x batch size): its budget, at which
# `ner_protocol.py config` and `ner_recall.py --study ship` chose its recipe on dev.
CPU_TINY_WORDS = 300 * 800


def test_cpu_config_trains_ner_with_the_benchmarks_tuned_recipe():
    """configs/cpu_tiny.cfg is what the NER studies measured: the batch size and rate the dev
    split (carved from CoNLL train) chose at the config's own budget (`ner_recall.py --study
    ship` when its rule passed, else `ner_protocol.py config`'s rate at 800 words), the same
    words whatever the batch size, warmup over 10% of the run, mean pooling of a token's pieces."""
    from spacy.util import load_config

    from benchmarks import ner_protocol as proto
    from benchmarks import ner_recall
    from benchmarks.accuracy import WARMUP_FRACTION

    config = load_config(
        Path(__file__).resolve().parents[2] / "configs" / "cpu_tiny.cfg", interpolate=True
    )
    rate = config["training"]["optimizer"]["learn_rate"]
    assert rate["@schedules"] == "warmup_linear.v1"
    recipe = ner_recall.shipped_recipe(proto.RESULTS)
    if recipe is None:  # the ship rule has not passed: the 800-word recipe
        runs = proto.read_runs(proto.RESULTS, proto.CONFIG_TAG, proto.CONFIG_N_TRAIN)
        recipe = {"lr": proto.config_choice(runs)["lr"], "batch_words": 800}
    batcher = config["training"]["batcher"]
    assert batcher["@batchers"] == "spacy.batch_by_words.v1"
    assert (batcher["size"], rate["initial_rate"]) == (recipe["batch_words"], recipe["lr"])
    assert config["training"]["max_steps"] * batcher["size"] == CPU_TINY_WORDS
    assert rate["warmup_steps"] == round(WARMUP_FRACTION * config["training"]["max_steps"])
    assert config["components"]["ner"]["model"]["tok2vec"]["pooling"]["@layers"] == "reduce_mean.v1"
