"""The held-out NER protocol (issue 33): dev is carved from train and never trained on, the
test split is CoNLL valid, and choices read only the dev grid."""

from pathlib import Path

import pytest

from benchmarks import ner_protocol as proto
from benchmarks.ner_study import load_split


def _write(path: Path, n: int, prefix: str) -> None:
    path.write_text(
        "".join(f"{prefix}{i} B-PER 0\nsaid O 0\n\n" for i in range(n)), encoding="utf8"
    )


@pytest.fixture()
def data_dir(tmp_path):
    (tmp_path / "conll2003").mkdir()
    _write(tmp_path / "conll2003" / "train.iob", 200, "tr")
    _write(tmp_path / "conll2003" / "valid.iob", 30, "va")
    return tmp_path


def test_dev_is_the_last_tenth_of_train_and_never_trained_on(data_dir):
    train, dev = load_split("dev", n_train=100, data_dir=data_dir)
    _, test = load_split("test", n_train=100, data_dir=data_dir)
    assert [w[0] for w, _ in dev] == [f"tr{i}" for i in range(180, 200)]
    assert [w[0] for w, _ in test] == [f"va{i}" for i in range(30)]
    assert len(train) == 100 and not {w[0] for w, _ in train} & {w[0] for w, _ in dev}
    # blocks of 10 consecutive sentences, in reading order inside each block
    firsts = [int(w[0][2:]) for w, _ in train]
    for k in range(0, 100, 10):
        assert firsts[k : k + 10] == list(range(firsts[k], firsts[k] + 10))
    assert (
        load_split("dev", n_train=100, data_dir=data_dir)[0] == train
    )  # the same data for every run


def _run(system, lr, settings, f1, split="dev", seed=0):
    return {
        "system": system,
        "lr": lr,
        "settings": settings,
        "split": split,
        "seed": seed,
        "f1": f1,
        "f1_by_doc_size": {"1": f1, "10": f1},
    }


def test_choices_read_only_the_complete_dev_grid():
    runs = [
        _run(s, lr, dict(r), 40 + 10 * lr)
        for s, recipes in proto.RECIPES.items()
        for r in recipes
        for lr in proto.RATES
    ]
    best_lr = max(proto.RATES)
    ten = {"docs_of": 10, "epochs": proto.EPOCHS}
    # a science run and a test run with better scores must not steer the choice
    runs.append(_run("ours", proto.RATES[0], {**ten, "sentence_windows": True}, 99.0))
    runs.append(_run("ours", proto.RATES[0], ten, 99.0, split="test"))
    chosen = proto.select(runs)
    assert chosen["ours, 10-sentence docs"]["lr"] == best_lr
    assert chosen["ours, 10-sentence docs"]["settings"] == ten
    with pytest.raises(KeyError, match="grid"):
        proto.select(runs[1:])
