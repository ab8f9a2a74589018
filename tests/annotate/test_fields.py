"""`annotate` on the project's own JSONL (issue 26, item 10): output prefix, rejects, throughput."""

import json

import srsly

from spacy_modernbert.cli.annotate import annotate

from .conftest import read_jsonl, write_jsonl


def test_output_prefix_keeps_the_gold_fields_of_the_projects_jsonl(annotate_pipeline, tmp_path):
    """The demo corpus has `entities` (gold offsets): with --output-prefix the prediction sits beside them."""
    from pathlib import Path

    demo = Path(__file__).resolve().parents[2] / "assets" / "demo" / "dev.jsonl"
    rows = list(srsly.read_jsonl(demo))[:6]
    path = write_jsonl(tmp_path / "demo.jsonl", rows)
    summary = annotate(
        str(annotate_pipeline),
        path,
        tmp_path / "out.jsonl",
        output_prefix="pred_",
        cats=True,
        progress=False,
    )
    assert summary["annotated"] == 6 and summary["rejected"] == 0
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["entities"] for r in out] == [r["entities"] for r in rows]  # gold kept as it was
    assert all(
        {"pred_entities", "pred_anomaly_score", "pred_is_anomaly", "pred_cats"} <= set(r)
        for r in out
    )
    assert all(0.0 <= r["pred_anomaly_score"] <= 1.0 for r in out)


def test_without_a_prefix_the_clash_names_the_option(annotate_pipeline, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "a b", "entities": []}, {"text": "c d"}])
    summary = annotate(
        str(annotate_pipeline), path, tmp_path / "out.jsonl", on_error="skip", progress=False
    )
    assert summary["rejected"] == 1
    reason = read_jsonl(tmp_path / "out.rejects.jsonl")[0]["reason"]
    assert "--output-prefix" in reason


def test_a_clean_run_writes_no_rejects_file_and_reports_docs_per_second_after_loading(
    annotate_pipeline, tmp_path
):
    path = write_jsonl(
        tmp_path / "in.jsonl", [{"text": f"Document number {i} about hosts."} for i in range(5)]
    )
    summary = annotate(str(annotate_pipeline), path, tmp_path / "out.jsonl", progress=False)
    assert summary["rejected"] == 0 and summary["rejects"] is None
    assert not (tmp_path / "out.rejects.jsonl").exists()
    assert summary["load_seconds"] is not None and summary["load_seconds"] > 0
    # the rate is docs over the time after loading, not over the whole run
    assert summary["docs_per_second"] > 5 / summary["seconds"]
    json.dumps(summary)
