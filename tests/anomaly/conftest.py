"""Toy data and small pipelines for the anomaly_scorer tests.

Unit tests use spaCy's own HashEmbed tok2vec (fast on CPU); the ModernBERT encoder is
covered by the encoder and robustness tests. Normal and anomalous docs differ by their
content words, so the task is separable.
"""

import random
from typing import List, Optional, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.training import Example

from spacy_modernbert.anomaly.detectors import DEFAULT_DETECTOR, detector_config

LABEL = "ANOMALY"
NORMAL_WORDS = "server restarted deploy finished backup completed cache warmed disk cleaned job scheduled".split()
ANOMALY_WORDS = "breach stolen exfiltrated ransomware intruder leaked unauthorized rootkit".split()
NAMES = ["Alice", "Bob", "Carol", "Dave"]
WIDTH = 32

Record = Tuple[str, List[Tuple[int, int, str]], float]


def make_records(n: int, anomaly_rate: float, seed: int) -> List[Record]:
    """(text, PERSON entity offsets, anomaly 1.0/0.0): anomalies use their own content words."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        anomalous = rng.random() < anomaly_rate
        name = rng.choice(NAMES)
        words = rng.sample(ANOMALY_WORDS if anomalous else NORMAL_WORDS, 3) + rng.sample(
            NORMAL_WORDS, 2
        )
        text = f"{name} reported " + " ".join(words) + " today ."
        records.append((text, [(0, len(name), "PERSON")], 1.0 if anomalous else 0.0))
    return records


def tok2vec_config() -> dict:
    return {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "pretrained_vectors": None,
        "width": WIDTH,
        "depth": 2,
        "embed_size": 500,
        "window_size": 1,
        "maxout_pieces": 3,
        "subword_features": True,
    }


def listener_config() -> dict:
    return {"@architectures": "spacy.Tok2VecListener.v1", "width": WIDTH, "upstream": "*"}


DETECTOR_SETTINGS = (
    "n_neighbors",
    "memory_bank_size",
    "token_neighbors",
    "token_bank_size",
    "top_k_tokens",
    "pooling",
)


def anomaly_config(mode: str = "supervised", tok2vec: Optional[dict] = None, **settings) -> dict:
    """The component's config; `detector` (a short name) and the detector settings become the
    `detector` sub-config, keeping only the settings that detector has."""
    model = {
        "@architectures": "spacy-modernbert.AnomalyHead.v1",
        "tok2vec": tok2vec or tok2vec_config(),
    }
    model.update(settings.pop("model", {}))
    detector_settings = {key: settings.pop(key) for key in DETECTOR_SETTINGS if key in settings}
    if detector_settings and settings.get("detector") is None:
        settings["detector"] = DEFAULT_DETECTOR
    if isinstance(settings.get("detector"), str):
        settings["detector"] = detector_config(settings["detector"], **detector_settings)
    return {"mode": mode, "model": model, **settings}


def standalone_pipeline(mode: str = "supervised", **settings) -> Language:
    """blank("en") + anomaly_scorer with its own (embedded) HashEmbed tok2vec."""
    nlp = spacy.blank("en")
    nlp.add_pipe("anomaly_scorer", config=anomaly_config(mode, **settings))
    return nlp


def shared_pipeline(mode: str = "supervised", **settings) -> Language:
    """tok2vec + ner + anomaly_scorer (last): both listen to one spaCy Tok2Vec."""
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec", config={"model": tok2vec_config()})
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "hidden_width": 32,
                "maxout_pieces": 2,
                "use_upper": False,
                "tok2vec": listener_config(),
            }
        },
    )
    nlp.add_pipe(
        "anomaly_scorer", config=anomaly_config(mode, tok2vec=listener_config(), **settings)
    )
    return nlp


def examples(
    nlp: Language, records: List[Record], *, anomaly_labels: bool = True, entities: bool = True
) -> List[Example]:
    out = []
    for text, ents, gold in records:
        annotations = {}
        if entities:
            annotations["entities"] = ents
        if anomaly_labels:
            annotations["cats"] = {LABEL: gold}
        out.append(Example.from_dict(nlp.make_doc(text), annotations))
    return out


def train(
    nlp: Language,
    egs: List[Example],
    epochs: int,
    batch_size: int = 16,
    seed: int = 0,
    optimizer=None,
):
    """Initialize (unless an optimizer is given) and train; returns the optimizer and per-epoch losses."""
    rng = random.Random(seed)
    if optimizer is None:
        optimizer = nlp.initialize(lambda: egs)
    history = []
    egs = list(egs)
    for _ in range(epochs):
        rng.shuffle(egs)
        losses = {}
        for batch in spacy.util.minibatch(egs, batch_size):
            nlp.update(batch, sgd=optimizer, losses=losses)
        history.append(losses)
    return optimizer, history


@pytest.fixture
def seeded():
    spacy.util.fix_random_seed(0)
    yield
