"""`python -m benchmarks intents` on a CLINC150-shaped sample: dev chooses, val reports, 3 systems."""

import json

from .conftest import clinc_data


def test_intents_benchmark_chooses_on_dev_and_reports_val(tmp_path):
    from benchmarks.intents import load_splits, run_intents

    data_dir = tmp_path / "data"
    (data_dir / "clinc150").mkdir(parents=True)
    (data_dir / "clinc150" / "clinc150_train_val.json").write_text(json.dumps(clinc_data()))
    splits = load_splits(data_dir, carve_dev=2, carve_oos=1, per_intent=3, seed=1)
    dev = {t for t, _ in splits["dev"]}
    assert not dev & {t for t, _ in splits["train"]}
    assert sum(i is None for _, i in splits["dev"]) == 1
    assert len(splits["val"]) == 3 * 8 + 4

    out = tmp_path / "intents.json"
    result = run_intents(
        data_dir=data_dir,
        cache_dir=tmp_path / "cache",
        output=out,
        per_intent=3,
        carve_dev=2,
        carve_oos=1,
        seeds=2,
        epochs=1,
        batch_size=8,
        hidden=32,
        layers=2,
        rates=(1e-3,),
    )
    assert json.loads(out.read_text())["benchmark"] == "intents"
    assert (
        result["protocol"]["reports"].startswith("val") and "dev" in result["protocol"]["chooses"]
    )
    assert [len(runs) for runs in result["runs"].values()] == [2, 2, 2]
    for runs in result["runs"].values():
        for figures in runs:
            assert 0.0 <= figures["intent_acc"] <= 1.0
            assert figures["oos_score"] in figures["dev_auroc"]
    assert {r["system"].split()[0] for r in result["rows"]} == {"ours", "HF", "TF-IDF"}
