"""convert-clinc: one .spacy per split, out-of-scope as anomaly docs with no intent, clear errors."""

import json
import re

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_modernbert.cli.convert_clinc import convert_clinc
from spacy_modernbert.data.from_clinc import clinc_to_docs, read_clinc, split_name

from .conftest import INTENTS


def _docs(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def test_splits_val_is_dev_and_oos_is_merged(clinc_file, tmp_path):
    out = convert_clinc(clinc_file, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "dev.spacy",
        "intents.json",
        "train.spacy",
    ]
    assert srsly.read_json(tmp_path / "out" / "intents.json") == sorted(INTENTS)
    train = _docs(tmp_path / "out" / "train.spacy")
    assert len(train) == 3 * 8 + 4 and out["train"]["n_out_of_scope"] == 4
    oos = [doc for doc in train if doc.cats.get("ANOMALY") == 1.0]
    assert len(oos) == 4 and all(set(doc.cats) == {"ANOMALY"} for doc in oos)
    in_scope = [doc for doc in train if doc.cats.get("ANOMALY") == 0.0]
    assert all(len(doc.cats) == 2 and 1.0 in doc.cats.values() for doc in in_scope)
    assert len(_docs(tmp_path / "out" / "dev.spacy")) == 3 * 8 + 4


def test_intent_oos_under_any_key_is_out_of_scope(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"test": [["hello there", "oos"], ["set an alarm", "alarm"]]}))
    splits, intents = clinc_to_docs(path)
    assert intents == ["alarm"]
    assert [doc.cats for doc in splits["test"]] == [
        {"ANOMALY": 1.0},
        {"alarm": 1.0, "ANOMALY": 0.0},
    ]


def test_carve_dev_and_per_intent_keep_val_for_the_report(clinc_file):
    splits, _ = clinc_to_docs(clinc_file, carve_dev=2, per_intent_train=3, seed=1)
    assert len(splits["val"]) == 3 * 8 + 4  # untouched
    dev_texts = {doc.text for doc in splits["dev"]}
    train_texts = {doc.text for doc in splits["train"]}
    assert sum(doc.cats.get("ANOMALY") == 0.0 for doc in splits["dev"]) == 3 * 2
    assert sum(doc.cats.get("ANOMALY") == 0.0 for doc in splits["train"]) == 3 * 3
    assert sum(doc.cats.get("ANOMALY") == 1.0 for doc in splits["dev"]) == 1  # 2/8 of 4
    assert not dev_texts & train_texts - {d.text for d in splits["val"]}
    again, _ = clinc_to_docs(clinc_file, carve_dev=2, per_intent_train=3, seed=1)
    assert [d.text for d in again["train"]] == [d.text for d in splits["train"]]


def test_split_names():
    assert [split_name(k) for k in ("train", "val", "oos_val", "oos_test")] == [
        "train",
        "dev",
        "dev",
        "test",
    ]


@pytest.mark.parametrize(
    "data, where",
    [
        ({"train": [["ok text", "alarm"], ["only text"]]}, "train[1]"),
        ({"oos_val": [["", "oos"]]}, "oos_val[0]"),
        ({"val": [["some text", 3]]}, "val[0]"),
        ({"train": "not a list"}, "'train'"),
    ],
)
def test_malformed_items_name_key_and_index(tmp_path, data, where):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(where)):
        read_clinc(path)


def test_cli_exits_cleanly_on_bad_item_and_unknown_split(tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": [["x", "alarm"], [1, "alarm"]]}))
    run = CliRunner().invoke(app, ["convert-clinc", str(bad), str(tmp_path / "o")])
    assert run.exit_code == 1 and "train[1]" in run.output
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"extra": [["x", "alarm"]]}))
    run = CliRunner().invoke(app, ["convert-clinc", str(odd), str(tmp_path / "o2")])
    assert run.exit_code == 1 and "extra" in run.output
