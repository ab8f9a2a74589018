"""Annotation problems reach the user as clear messages from `spacy train`, not as crashes mid-run.

The encoder is not what is under test here, so the pipeline uses spaCy's small HashEmbed
tok2vec (fast); the checks are on the data handling of `ner` and `anomaly_scorer`.
"""

import subprocess
import sys

import pytest
import spacy
from spacy.tokens import DocBin

CONFIG = """
[paths]
train = null
dev = null

[nlp]
lang = "en"
pipeline = ["tok2vec", "ner", "anomaly_scorer"]

[components]

[components.tok2vec]
factory = "tok2vec"

[components.tok2vec.model]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 32
depth = 1
embed_size = 500
window_size = 1
maxout_pieces = 2
subword_features = false

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
hidden_width = 16
maxout_pieces = 2
use_upper = false

[components.ner.model.tok2vec]
@architectures = "spacy.Tok2VecListener.v1"
width = 32

[components.anomaly_scorer]
factory = "anomaly_scorer"

[components.anomaly_scorer.model]
@architectures = "spacy-modernbert.AnomalyHead.v1"

[components.anomaly_scorer.model.tok2vec]
@architectures = "spacy.Tok2VecListener.v1"
width = 32

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${paths.train}

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${paths.dev}

[system]
seed = 0
gpu_allocator = null

[training]
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
max_steps = 4
eval_frequency = 2

[initialize]
"""


def _corpus(path, records):
    nlp = spacy.blank("en")
    db = DocBin()
    for text, ents, cats in records:
        doc = nlp.make_doc(text)
        if ents is not None:
            doc.ents = [doc.char_span(s, e, label=lab) for s, e, lab in ents]
        doc.cats = cats
        db.add(doc)
    db.to_disk(path)
    return path


GOOD = [
    ("Alice restarted the web server .", [(0, 5, "PERSON")], {"ANOMALY": 0.0}),
    ("Bob copied the password file to an unknown host .", [(0, 3, "PERSON")], {"ANOMALY": 1.0}),
    ("Carol cleaned the disk .", [(0, 5, "PERSON")], {}),
]


def _train(tmp_path, train_records):
    (tmp_path / "config.cfg").write_text(CONFIG)
    train = _corpus(tmp_path / "train.spacy", train_records)
    dev = _corpus(tmp_path / "dev.spacy", GOOD)
    cmd = [
        sys.executable,
        "-m",
        "spacy",
        "train",
        str(tmp_path / "config.cfg"),
        "--paths.train",
        str(train),
        "--paths.dev",
        str(dev),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_training_runs_on_good_data(tmp_path):
    run = _train(tmp_path, GOOD)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_anomaly_label_outside_0_1_stops_with_a_clear_message(tmp_path, bad):
    run = _train(tmp_path, GOOD + [("Dave deleted the backups .", None, {"ANOMALY": bad})])
    assert run.returncode != 0
    assert "must be 1.0 (anomaly) or 0.0 (normal)" in run.stderr
    assert "Dave deleted the backups" in run.stderr


def test_empty_training_corpus_is_reported(tmp_path):
    run = _train(tmp_path, [])
    assert run.returncode != 0
    # spaCy's E923 names the first component without sample data and points to `debug data`
    assert "no proper sample data" in run.stderr and "spacy debug data" in run.stderr
