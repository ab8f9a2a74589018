"""`annotate --explain --vectors`: anomaly_spans per row, one float32 vector per row."""

import numpy
import pytest
import spacy

from spacy_modernbert.cli.annotate import annotate
from spacy_modernbert.vectors import doc_vector

from .conftest import read_jsonl, records, write_jsonl


@pytest.fixture(scope="module")
def rows():
    rows = records(12)
    rows[3]["text"] = rows[3]["text"] + "\nSomeone copied all customer passwords to a drive."
    return rows


def test_parquet_vectors_are_a_fixed_size_float32_list(annotate_pipeline, rows, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    annotate(
        str(annotate_pipeline),
        write_jsonl(tmp_path / "in.jsonl", rows),
        tmp_path / "out.parquet",
        shard_size=5,
        batch_size=4,
        explain=True,
        vectors=True,
        progress=False,
    )
    table = pq.read_table(tmp_path / "out.parquet")
    nlp = spacy.load(annotate_pipeline)
    width = len(doc_vector(nlp(rows[0]["text"])))
    assert table.schema.field("vector").type == pa.list_(pa.float32(), width)
    got = numpy.asarray(table.column("vector").to_pylist(), dtype="float32")
    expected = numpy.stack([doc_vector(nlp(r["text"])) for r in rows])
    numpy.testing.assert_allclose(got, expected, atol=1e-4)
    spans = table.column("anomaly_spans").to_pylist()
    scorer = nlp.get_pipe("anomaly_scorer")
    for row, got_spans in zip(rows, spans):
        doc = scorer.explain(nlp(row["text"]))
        want = [(s.start_char, s.end_char, s.text) for s in doc.spans["anomaly"]]
        assert [(s["start"], s["end"], s["text"]) for s in got_spans] == want
        assert row["text"][got_spans[0]["start"] : got_spans[0]["end"]] == got_spans[0]["text"]


def test_jsonl_and_the_fields_are_off_by_default(annotate_pipeline, rows, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", rows)
    annotate(
        str(annotate_pipeline), tmp_path / "in.jsonl", tmp_path / "plain.jsonl", progress=False
    )
    plain = read_jsonl(tmp_path / "plain.jsonl")
    assert "vector" not in plain[0] and "anomaly_spans" not in plain[0]
    annotate(
        str(annotate_pipeline),
        tmp_path / "in.jsonl",
        tmp_path / "out.jsonl",
        vectors=True,
        explain=True,
        progress=False,
    )
    out = read_jsonl(tmp_path / "out.jsonl")
    assert all(isinstance(r["vector"], list) and len(r["vector"]) > 1 for r in out)
    assert all(r["anomaly_spans"] and 0.0 <= r["anomaly_spans"][0]["score"] <= 1.0 for r in out)
    assert [r["anomaly_score"] for r in out] == pytest.approx(
        [r["anomaly_score"] for r in plain], abs=1e-5
    )


def test_an_input_field_named_vector_needs_a_prefix(annotate_pipeline, tmp_path):
    rows = [{"text": "Maria Lopez restarted payments-api.", "vector": [1, 2]}]
    with pytest.raises(Exception, match="vector"):
        annotate(
            str(annotate_pipeline),
            write_jsonl(tmp_path / "in.jsonl", rows),
            tmp_path / "out.jsonl",
            vectors=True,
            progress=False,
        )


def test_explain_with_a_scorer_that_offers_none_stops_with_the_reason(tmp_path, svdd_pipeline):
    """--explain on a pipeline whose anomaly_scorer offers no explanation (the Deep-SVDD head,
    explain.NOT_EXPLAINED): a clear error naming the fix, and no OUTPUT written."""
    svdd_pipeline.to_disk(tmp_path / "svdd")
    rows = [{"text": f"Disk {i} full on db-0{i}."} for i in range(12)]
    with pytest.raises(ValueError, match="not offered for the Deep-SVDD head") as err:
        annotate(
            str(tmp_path / "svdd"),
            write_jsonl(tmp_path / "in.jsonl", rows),
            tmp_path / "out.jsonl",
            explain=True,
            progress=False,
        )
    assert "no --explain" in str(err.value)
    assert not (tmp_path / "out.jsonl").exists()
    plain = tmp_path / "plain.jsonl"
    annotate(str(tmp_path / "svdd"), tmp_path / "in.jsonl", plain, progress=False)
    assert len(read_jsonl(plain)) == len(rows)  # scoring is unchanged
