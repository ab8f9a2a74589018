"""`python -m benchmarks explain`: its test docs, held-out text and retrieval metrics (no run)."""

import random

import numpy
import pytest

from benchmarks.explain import insert, insert_sentence, retrieval_metrics, sms_task


def test_insert_records_where_the_passage_lies():
    rng = random.Random(0)
    for _ in range(20):
        doc = insert(["a b", "cc", "ddd"], "SPAM!", rng, "\n")
        assert doc["text"][doc["start"] : doc["end"]] == "SPAM!"
        assert doc["text"].replace("SPAM!", "").replace("\n", "") == "a bccddd"
    doc = insert_sentence("Disk full. Backup failed. Fine.", "News item .", random.Random(1))
    assert doc["text"][doc["start"] : doc["end"]] == "News item ."


def test_sms_docs_keep_training_text_out(tmp_path):
    root = tmp_path / "data"
    (root / "sms_spam").mkdir(parents=True)
    lines = [f"ham\tham message {i}" for i in range(60)] + [
        f"spam\tspam offer {i}" for i in range(20)
    ]
    (root / "sms_spam" / "SMSSpamCollection").write_text("\n".join(lines) + "\n", encoding="utf8")
    task = sms_task(root, seed=0, n_docs=5, n_train=100)
    trained = {t for t, _ in task["labelled"]} | set(task["tokenizer_texts"])
    for doc in task["docs"]:
        lines_of_doc = doc["text"].split("\n")
        assert len(lines_of_doc) == 6 and not set(lines_of_doc) & trained
        assert doc["text"][doc["start"] : doc["end"]].startswith("spam offer")
    assert {y for _, y in task["labelled"]} == {0.0, 1.0}


def test_retrieval_metrics():
    vectors = numpy.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]])
    labels = ["a", "a", "b", "b", "c"]  # "c" has no relevant neighbour: left out
    m = retrieval_metrics(vectors, labels, k=1)
    assert m == {"recall@1": pytest.approx(1.0), "mrr": pytest.approx(1.0)}
    swapped = retrieval_metrics(vectors, ["a", "b", "a", "b", "c"], k=1)
    assert swapped["recall@1"] == pytest.approx(0.0) and swapped["mrr"] < 1.0
