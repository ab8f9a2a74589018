"""benchmarks/vocab_downstream.py: the CLINC150 splits keep out-of-scope text out of fitting,
rows compare each system with no extension seed by seed, and the NER and AUROC stages run."""

import json
import math

from benchmarks.vocab_downstream import aggregate, clinc_splits, ner_f1, oos_auroc, summarize
from spacy_modernbert.data.demo import generate_demo_splits


def _clinc(tmp_path):
    data = {
        "train": [[f"train {intent} {i}", intent] for intent in ("a", "b") for i in range(4)],
        "val": [[f"val {intent} {i}", intent] for intent in ("b", "a") for i in range(3)],
        "oos_train": [["never used", "oos"]],
        "oos_val": [[f"out of scope {i}", "oos"] for i in range(3)],
    }
    (tmp_path / "clinc150").mkdir()
    (tmp_path / "clinc150" / "clinc150_train_val.json").write_text(json.dumps(data))
    return tmp_path


def test_clinc_splits_take_the_first_of_each_intent_and_keep_oos_out_of_training(tmp_path):
    splits = clinc_splits(_clinc(tmp_path), n_fit=2, n_val=1)
    assert splits["fit"] == ["train a 0", "train a 1", "train b 0", "train b 1"]
    assert splits["val"] == ["val b 0", "val a 0"]
    assert splits["oos"] == ["out of scope 0", "out of scope 1", "out of scope 2"]
    assert len(splits["train"]) == 8
    assert not {t for t in splits["train"] + splits["fit"] if "scope" in t or "never" in t}


def _run(system, seed, value, metric="NER F1 (dev)", field="ents_f"):
    return {
        "system": system,
        "domain": "demo-reports",
        "metric": metric,
        "seed": seed,
        field: value,
    }


def test_rows_compare_each_system_with_no_extension_seed_by_seed():
    runs = [
        _run("no extension", 0, 50.0),
        _run("no extension", 1, 60.0),
        _run("extend-vocab, mean init", 1, 61.0),  # seed order differs from the base's
        _run("extend-vocab, mean init", 0, 54.0),
        _run("no extension", 0, 10.0, "held-out MLM loss per word", "loss_per_word"),
        _run("extend-vocab, mean init", 0, 8.0, "held-out MLM loss per word", "loss_per_word"),
    ]
    rows = {(r["metric"], r["system"]): r for r in aggregate(runs)}
    mean = rows[("NER F1 (dev) (higher is better)", "extend-vocab, mean init")]
    assert mean["mean"] == 57.5 and mean["range"] == "54-61" and mean["seeds"] == 2
    assert mean["vs no extension"] == "+2.5 (+1 to +4)"
    assert rows[("NER F1 (dev) (higher is better)", "no extension")]["vs no extension"] == "-"
    loss = rows[("held-out MLM loss per word (lower is better)", "extend-vocab, mean init")]
    assert loss["vs no extension"] == "-2 (-2 to -2)"
    summary = summarize(aggregate(runs), {"general_steps": 1, "domain_steps": 2})
    assert [s["claim"].split(",")[0] for s in summary] == [
        "demo-reports: NER F1 after the same pretrain budget"
    ]


def test_ner_and_oos_stages_score_a_checkpoint(tiny_checkpoint, tmp_path):
    demo = generate_demo_splits(n_docs=40, seed=0)
    scores = ner_f1(tiny_checkpoint, demo["train"][:6], demo["dev"][:4], 1, 3, 0)
    assert 0.0 <= scores["ents_f"] <= 100.0 and math.isfinite(scores["train_seconds"])
    splits = clinc_splits(_clinc(tmp_path), n_fit=4, n_val=3)
    auroc = oos_auroc(tiny_checkpoint, splits, 0)
    assert 0.0 <= auroc <= 1.0


def test_a_checkpoints_ner_f1_is_the_mean_over_its_own_ner_seeds(monkeypatch):
    import benchmarks.vocab_downstream as vd

    calls = []

    def fake_ner_f1(run, train, dev, epochs, batch, seed):
        calls.append(seed)
        return {"ents_f": 90.0 + seed, "ents_p": 1.0, "ents_r": 1.0, "train_seconds": 1.0}

    monkeypatch.setattr(vd, "ner_f1", fake_ner_f1)
    demo = {"train": [{"text": "a", "entities": []}] * 4, "dev": []}
    got = vd.ner_over_seeds("ckpt", demo, 2, 1, 1, 1, 3, lambda *_: None, "x")
    assert calls == [3, 4, 5]  # checkpoint seed 1: NER seeds 3..5, apart from seed 0's 0..2
    assert got["ents_f"] == 94.0 and got["ner_runs"] == [93.0, 94.0, 95.0]
    calls.clear()
    assert vd.ner_over_seeds("ckpt", demo, 2, 1, 1, 2, 1, lambda *_: None, "x")["ents_f"] == 92.0
    assert calls == [2]  # one NER seed: the checkpoint's own (the earlier runs' protocol)
