"""Shared fixtures: the tiny offline ModernBERT checkpoint, created once per test session.

It is written by the same code as `python -m spacy_modernbert init-model` and loaded by
path through `from_pretrained`, exactly like a hub checkpoint.
"""

from pathlib import Path

import pytest
import spacy

ROOT = Path(__file__).resolve().parent.parent
TINY_TEXT = ROOT / "assets"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from spacy_modernbert.tiny import create_tiny_checkpoint

    out = tmp_path_factory.mktemp("tiny-modernbert")
    texts = [p for p in [TINY_TEXT / "demo" / "train.jsonl"] if p.exists()]
    return create_tiny_checkpoint(out, texts, vocab_size=1024)


def _transformer_config(checkpoint: Path, **overrides) -> dict:
    model = {"@architectures": "spacy-modernbert.ModernBertTransformer.v1", "name": str(checkpoint)}
    model.update(overrides)
    return {"model": model}


@pytest.fixture(scope="session")
def transformer_config():
    """Factory: a `transformer` component config using our architecture on a checkpoint."""
    return _transformer_config


@pytest.fixture(scope="session")
def listener_ner_config() -> dict:
    """An `ner` component config listening to the shared transformer."""
    return {
        "model": {
            "@architectures": "spacy.TransitionBasedParser.v2",
            "state_type": "ner",
            "extra_state_tokens": False,
            "hidden_width": 32,
            "maxout_pieces": 2,
            "use_upper": False,
            "tok2vec": {
                "@architectures": "spacy-transformers.TransformerListener.v1",
                "grad_factor": 1.0,
                "pooling": {"@layers": "reduce_mean.v1"},
            },
        }
    }


@pytest.fixture(scope="session")
def shared_encoder_pipeline(tiny_checkpoint, transformer_config, listener_ner_config):
    """Factory: an untrained blank("en") + transformer + ner + anomaly_scorer on the tiny
    checkpoint, both heads listening to the one encoder (the shape of our shipped configs)."""

    def make():
        nlp = spacy.blank("en")
        nlp.add_pipe(
            "transformer",
            config=transformer_config(tiny_checkpoint, max_length=256, max_batch_tokens=2048),
        )
        nlp.add_pipe("ner", config=listener_ner_config)
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
        return nlp

    return make


@pytest.fixture(scope="session")
def trained_pipeline(shared_encoder_pipeline, tmp_path_factory):
    """Factory: a `shared_encoder_pipeline` trained for a few updates and saved; returns its path.

    `make_examples(nlp)` builds the examples (with the pipeline's tokenizer); the pipeline is
    initialized on them and updated `epochs` times over minibatches of `batch_size` (default:
    all at once), seeded, so the same arguments give the same weights. Used by the annotate
    and serve tests, which train on different data because they assert different label sets.
    """

    def train(make_examples, epochs, name, batch_size=None, meta=None):
        spacy.util.fix_random_seed(0)
        nlp = shared_encoder_pipeline()
        examples = make_examples(nlp)
        optimizer = nlp.initialize(lambda: examples)
        for _ in range(epochs):
            for batch in spacy.util.minibatch(examples, batch_size or len(examples)):
                nlp.update(batch, sgd=optimizer, drop=0.0)
        nlp.meta.update(meta or {})
        path = tmp_path_factory.mktemp(name) / "pipeline"
        nlp.to_disk(path)
        return path

    return train


# The normal texts `svdd_pipeline` is initialized on.
SVDD_NORMAL = [f"Deploy {i} finished on web-{i % 3}." for i in range(12)]


@pytest.fixture(scope="session")
def svdd_pipeline():
    """blank("en") + a one-class anomaly_scorer with the Deep-SVDD head (`detector` svdd,
    explain.NOT_EXPLAINED: it offers no explanation) on a small HashEmbed tok2vec,
    initialized on SVDD_NORMAL. Not to be changed by a test (session-scoped)."""
    from spacy.training import Example

    nlp = spacy.blank("en")
    tok2vec = {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "pretrained_vectors": None,
        "width": 32,
        "depth": 1,
        "embed_size": 500,
        "window_size": 1,
        "maxout_pieces": 2,
        "subword_features": True,
    }
    config = {
        "mode": "one_class",
        "detector": {"@anomaly_detectors": "spacy-modernbert.SvddDetector.v1"},
        "model": {"@architectures": "spacy-modernbert.AnomalyHead.v1", "tok2vec": tok2vec},
    }
    nlp.add_pipe("anomaly_scorer", config=config)
    nlp.initialize(lambda: [Example(nlp.make_doc(t), nlp.make_doc(t)) for t in SVDD_NORMAL])
    return nlp
