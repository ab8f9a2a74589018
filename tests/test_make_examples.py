"""docs/make_examples.py: the documented examples are the pipeline's own outputs (issue 26, item 11)."""

import json
import re
from pathlib import Path

import spacy
import srsly
from spacy.training import Example
from spacy.util import import_file

ROOT = Path(__file__).resolve().parent.parent
make_examples = import_file("make_examples", str(ROOT / "docs" / "make_examples.py"))


def _pipeline(path):
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.add_pipe("anomaly_scorer")
    rows = list(srsly.read_jsonl(ROOT / "assets" / "demo" / "train.jsonl"))[:40]
    examples = [
        Example.from_dict(
            nlp.make_doc(r["text"]),
            {
                "entities": [tuple(e) for e in r["entities"]],
                "cats": {"ANOMALY": float(r["anomaly"])},
            },
        )
        for r in rows
    ]
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=optimizer)
    nlp.to_disk(path)
    return spacy.load(path)


def test_headline_is_a_document_the_pipeline_gets_right_and_the_page_shows_its_outputs(tmp_path):
    nlp = _pipeline(tmp_path / "pipeline")
    rows = list(srsly.read_jsonl(ROOT / "assets" / "demo" / "dev.jsonl"))[:30]
    pick = min(
        (i for i, r in enumerate(rows) if not r["anomaly"]), key=lambda i: len(rows[i]["text"])
    )
    # make the shortest normal row's gold what the pipeline predicts: the one fully right normal document
    doc = nlp(rows[pick]["text"])
    rows[pick]["entities"] = [[e.start_char, e.end_char, e.label_] for e in doc.ents]
    rows[pick]["anomaly"] = int(bool(doc._.is_anomaly))
    for i, row in enumerate(rows):
        if i != pick and not row["anomaly"]:
            row["entities"] = row["entities"] + [
                [0, 1, "NOT_A_LABEL"]
            ]  # nobody else is fully right
    if rows[pick][
        "anomaly"
    ]:  # the headline is a normal report: keep the test meaningful either way
        rows[pick]["anomaly"] = 0
        nlp.get_pipe("anomaly_scorer").set_threshold(1.0)
        nlp.to_disk(tmp_path / "pipeline")
    data = tmp_path / "data.jsonl"
    srsly.write_jsonl(data, rows)
    page = make_examples.make_examples(str(tmp_path / "pipeline"), data, tmp_path / "examples.md")

    assert (tmp_path / "examples.md").read_text() == page
    assert "\n".join(make_examples._call_lines("doc = nlp(", rows[pick]["text"])) in page
    assert json.dumps(rows[pick]["text"], ensure_ascii=False) in page
    shipped = spacy.load(tmp_path / "pipeline")
    doc = shipped(rows[pick]["text"])
    assert repr([(e.text, e.label_) for e in doc.ents]) in page
    assert f"{round(float(doc._.anomaly_score), 4)} {doc._.is_anomaly}" in page
    assert (
        "gets 1 fully right" in page
        and "Not fully right" not in page.split("## An anomalous report")[0]
    )
    threshold = shipped.get_pipe("anomaly_scorer").cfg["threshold"]
    assert f"`{threshold:.6f}`" in page
    match = re.search(r"```json\n(\{.*?\})\n```", page, re.S)
    if match:  # the serve answer, when FastAPI is installed: the same score
        answer = json.loads(match.group(1))
        assert abs(answer["docs"][0]["anomaly_score"] - float(doc._.anomaly_score)) < 1e-6
