"""A tiny teacher (4 x 64, ner + anomaly_scorer, a few updates) and students for `distill`.

The teacher trains for a few updates on the annotate tests' templated incident reports
(enough for silver entities and scores to exist); students are tiny checkpoints whose
tokenizer is trained on the same text as the teacher's, so that layer-subset
initialization applies to the one of the teacher's width.
"""

from pathlib import Path

import pytest
from annotate.conftest import _example, make_text, records, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
DEMO_TEXT = ROOT / "assets" / "demo" / "train.jsonl"


@pytest.fixture(scope="session")
def teacher(trained_pipeline) -> Path:
    import random

    def make_examples(nlp):
        rng = random.Random(0)
        flags = [i % 4 == 0 for i in range(24)]
        return [_example(nlp, make_text(rng, a), a) for a in flags]

    return trained_pipeline(make_examples, epochs=3, name="distill-teacher")


def _student_checkpoint(path: Path, **shape) -> Path:
    from spacy_modernbert.tiny import create_tiny_checkpoint

    texts = [p for p in [DEMO_TEXT] if p.exists()]
    return create_tiny_checkpoint(path, texts, vocab_size=1024, **shape)


@pytest.fixture(scope="session")
def student_checkpoints(tmp_path_factory):
    """{"deep": 2 layers of the teacher's width (64), "narrow": 1 layer of 32}."""
    root = tmp_path_factory.mktemp("students")
    return {
        "deep": _student_checkpoint(root / "deep", num_hidden_layers=2),
        "narrow": _student_checkpoint(
            root / "narrow",
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=48,
        ),
    }


STUDENT_CONFIG = """
[paths]
base_model = null

[nlp]
lang = "en"
pipeline = ["transformer","ner","anomaly_scorer"]

[components]

[components.transformer]
factory = "transformer"

[components.transformer.model]
@architectures = "spacy-modernbert.ModernBertTransformer.v1"
name = ${paths.base_model}
max_length = 128
max_batch_tokens = 1024

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 32
maxout_pieces = 2
use_upper = false

[components.ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "transformer"

[components.ner.model.tok2vec.pooling]
@layers = "reduce_mean.v1"

[components.anomaly_scorer]
factory = "anomaly_scorer"

[components.anomaly_scorer.model]
@architectures = "spacy-modernbert.AnomalyHead.v1"

[components.anomaly_scorer.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "transformer"

[components.anomaly_scorer.model.tok2vec.pooling]
@layers = "reduce_mean.v1"

[training]
dropout = 0.0

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 8
get_length = null

[training.optimizer]
@optimizers = "Adam.v1"

[training.optimizer.learn_rate]
@schedules = "warmup_linear.v1"
warmup_steps = 1
total_steps = 10
initial_rate = 0.001

[training.score_weights]
ents_f = 0.5
anomaly_auc = 0.5
"""


@pytest.fixture(scope="session")
def student_config(tmp_path_factory, student_checkpoints):
    """Factory: the student config file on the checkpoint named "deep" or "narrow"."""

    def make(kind: str) -> Path:
        path = tmp_path_factory.mktemp(f"config-{kind}") / "student.cfg"
        text = STUDENT_CONFIG.replace(
            "base_model = null", f'base_model = "{student_checkpoints[kind]}"'
        )
        path.write_text(text, encoding="utf8")
        return path

    return make


@pytest.fixture(scope="session")
def texts(tmp_path_factory) -> Path:
    """40 unlabelled reports (JSONL), as `annotate` and `pretrain` read them."""
    return write_jsonl(tmp_path_factory.mktemp("texts") / "texts.jsonl", records(40, seed=3))


@pytest.fixture(scope="session")
def run(teacher, student_config, texts, tmp_path_factory):
    """One distillation (layer-subset init, every signal), 6 steps; (run directory, summary)."""
    from spacy_modernbert.distill.loop import distill

    output = tmp_path_factory.mktemp("distill-run") / "run"
    summary = distill(
        teacher, student_config("deep"), [texts], output, steps=6, eval_every=3, log_every=3
    )
    return output, summary
