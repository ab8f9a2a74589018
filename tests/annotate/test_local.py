"""`annotate` with the local engine: rows, carried fields, order, formats, rejects, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spacy_modernbert.annotate.io import AnnotateInputError
from spacy_modernbert.cli.annotate import annotate

from .conftest import KILLER, kill_run, read_jsonl, records, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["entities"] == y["entities"], (x, y)
        assert x["anomaly_score"] == pytest.approx(y["anomaly_score"], abs=1e-5)
        assert x["is_anomaly"] == y["is_anomaly"] or abs(x["anomaly_score"] - 0.5) < 1e-4
        assert {
            k: v for k, v in x.items() if k not in ("entities", "anomaly_score", "is_anomaly")
        } == {k: v for k, v in y.items() if k not in ("entities", "anomaly_score", "is_anomaly")}


def test_rows_carry_fields_in_order_with_annotations(annotate_pipeline, tmp_path):
    rows = records(30)
    summary = annotate(
        str(annotate_pipeline),
        write_jsonl(tmp_path / "in.jsonl", rows),
        tmp_path / "out.jsonl",
        shard_size=7,
        batch_size=4,
        cats=True,
        progress=False,
    )
    out = read_jsonl(tmp_path / "out.jsonl")
    assert summary["rows"] == 30 and summary["annotated"] == 30 and summary["rejected"] == 0
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert all(r["source"] == {"n": i} and r["text"] == rows[i]["text"] for i, r in enumerate(out))
    assert any(r["entities"] for r in out), "the test pipeline should predict entities"
    for r in out:
        for ent in r["entities"]:
            assert r["text"][ent["start"] : ent["end"]] == ent["text"] and ent["label"] in (
                "PERSON",
                "SERVICE",
            )
        assert 0.0 <= r["anomaly_score"] <= 1.0 and isinstance(r["is_anomaly"], bool)
        assert r["cats"]["ANOMALY"] == pytest.approx(r["anomaly_score"])
    assert not (tmp_path / "out.jsonl.shards").exists()


def test_n_process_2_equals_1(annotate_pipeline, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", records(24))
    annotate(
        str(annotate_pipeline),
        path,
        tmp_path / "one.jsonl",
        shard_size=5,
        batch_size=4,
        progress=False,
    )
    annotate(
        str(annotate_pipeline),
        path,
        tmp_path / "two.jsonl",
        shard_size=5,
        batch_size=4,
        n_process=2,
        progress=False,
    )
    _same(read_jsonl(tmp_path / "one.jsonl"), read_jsonl(tmp_path / "two.jsonl"))


def test_rejects_with_line_numbers_and_nothing_lost(annotate_pipeline, tmp_path):
    good = records(6)
    lines = [
        json.dumps(good[0]),
        "{not json",
        json.dumps(good[1]),
        "",
        json.dumps({"id": "no-text"}),
        json.dumps({"id": "x", "text": 7}),
        json.dumps(["a list"]),
        json.dumps(good[2]),
        json.dumps({"text": "clash", "entities": []}),
        json.dumps(good[3]),
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        ("\n".join(lines) + "\n").encode("utf8")
        + b'{"text": "bad \xff byte"}\n'
        + json.dumps(good[4]).encode()
        + b"\n"
    )
    with pytest.raises(AnnotateInputError, match=r"line 2: invalid JSON"):
        annotate(str(annotate_pipeline), path, tmp_path / "out.jsonl", progress=False)
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.shards").exists()

    summary = annotate(
        str(annotate_pipeline),
        path,
        tmp_path / "out.jsonl",
        on_error="skip",
        shard_size=3,
        progress=False,
    )
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert [(r["line"], r["reason"].split(" ")[0]) for r in rejects] == [
        (2, "invalid"),
        (5, "no"),
        (6, "'text'"),
        (7, "not"),
        (9, "field"),
        (11, "not"),
    ]
    assert "no 'text' field" in rejects[1]["reason"] and "not a string" in rejects[2]["reason"]
    assert "overwritten" in rejects[4]["reason"] and "UTF-8" in rejects[5]["reason"]
    assert rejects[0]["raw"] == "{not json"
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == [g["id"] for g in good[:5]]
    # rows in (the blank line is not a row) = rows out + rows rejected
    assert summary["rows"] == 11 == len(out) + len(rejects)


def test_plain_text_and_parquet(annotate_pipeline, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = records(12)
    (tmp_path / "in.txt").write_text(
        "".join(r["text"] + "\n" for r in rows) + "\n", encoding="utf8"
    )
    annotate(
        str(annotate_pipeline),
        tmp_path / "in.txt",
        tmp_path / "txt.jsonl",
        shard_size=5,
        progress=False,
    )
    txt = read_jsonl(tmp_path / "txt.jsonl")
    assert (
        len(txt) == 13 and txt[-1]["text"] == "" and txt[-1]["entities"] == []
    )  # an empty line is a document

    table = pa.table(
        {
            "id": [r["id"] for r in rows] + ["null-text"],
            "text": [r["text"] for r in rows] + [None],
            "n": list(range(13)),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=4)
    summary = annotate(
        str(annotate_pipeline),
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        shard_size=5,
        on_error="skip",
        progress=False,
    )
    assert summary["rejected"] == 1 and read_jsonl(tmp_path / "out.rejects.jsonl")[0]["line"] == 13
    out = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in out] == [r["id"] for r in rows] and [r["n"] for r in out] == list(
        range(12)
    )
    expected = [{**r, "text": t["text"]} for r, t in zip(txt, rows)]
    _same(
        [{k: v for k, v in r.items() if k not in ("id", "n")} for r in out],
        [{k: v for k, v in r.items() if k != "source"} for r in expected[:12]],
    )

    with pytest.raises(AnnotateInputError, match="no column 'body'"):
        annotate(
            str(annotate_pipeline),
            tmp_path / "in.parquet",
            tmp_path / "x.parquet",
            text_field="body",
            progress=False,
        )


def test_refuses_existing_output_unknown_format_and_changed_resume(annotate_pipeline, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", records(3))
    (tmp_path / "out.jsonl").write_text("keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        annotate(str(annotate_pipeline), path, tmp_path / "out.jsonl", progress=False)
    assert (tmp_path / "out.jsonl").read_text() == "keep me"
    with pytest.raises(AnnotateInputError, match="unknown extension '.csv'"):
        annotate(str(annotate_pipeline), path, tmp_path / "out.csv", progress=False)
    (tmp_path / "b.jsonl.shards").mkdir()
    with pytest.raises(FileExistsError, match="--resume"):
        annotate(str(annotate_pipeline), path, tmp_path / "b.jsonl", progress=False)


def test_resume_after_a_killed_run(annotate_pipeline, kill_pipeline, tmp_path):
    rows, path, marker, armed = kill_run(kill_pipeline, tmp_path, 40, 27)
    out = tmp_path / "out.jsonl"
    args = [
        sys.executable,
        "-m",
        "spacy_modernbert",
        "annotate",
        str(armed),
        str(path),
        str(out),
        "--code",
        str(KILLER),
        "--shard-size",
        "8",
        "--batch-size",
        "4",
        "--no-progress",
    ]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]
    assert marker.exists() and not out.exists()
    done = sorted(p.name for p in (tmp_path / "out.jsonl.shards").glob("shard-*"))
    assert done == [f"shard-{i:06d}.jsonl" for i in range(3)]  # row 28 is in shard 3

    summary = annotate(
        str(armed), path, out, code=KILLER, shard_size=8, batch_size=4, resume=True, progress=False
    )
    assert summary["annotated_this_run"] == 16 and summary["annotated"] == 40
    annotate(
        str(annotate_pipeline),
        path,
        tmp_path / "clean.jsonl",
        shard_size=8,
        batch_size=4,
        progress=False,
    )
    _same(read_jsonl(out), read_jsonl(tmp_path / "clean.jsonl"))

    with pytest.raises(ValueError, match="shard_size"):
        (tmp_path / "again.jsonl.shards").mkdir()
        (tmp_path / "again.jsonl.shards" / "plan.json").write_text(
            (json.dumps({"version": 1, "settings": {"shard_size": 3}, "shards": []}))
        )
        annotate(
            str(armed),
            path,
            tmp_path / "again.jsonl",
            code=KILLER,
            shard_size=8,
            resume=True,
            progress=False,
        )


def test_command_line_progress_and_stop_message(annotate_pipeline, tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    path = write_jsonl(tmp_path / "in.jsonl", records(5))
    result = CliRunner().invoke(
        app, ["annotate", str(annotate_pipeline), str(path), str(tmp_path / "out.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert "doc/s" in result.output and "5 rows annotated" in result.output
    path.write_text(path.read_text() + '{"id": 1}\n')
    result = CliRunner().invoke(
        app, ["annotate", str(annotate_pipeline), str(path), str(tmp_path / "out2.jsonl")]
    )
    message = " ".join(result.output.split())
    assert (
        result.exit_code == 1
        and "line 6: no 'text' field" in message
        and "--on-error skip" in message
    )


def test_killed_worker_process_stops_and_resume_finishes(
    annotate_pipeline, kill_pipeline, tmp_path
):
    rows, path, marker, armed = kill_run(kill_pipeline, tmp_path, 24, 17)
    out = tmp_path / "out.jsonl"
    common = dict(code=KILLER, shard_size=4, batch_size=4, n_process=2, progress=False)
    with pytest.raises(RuntimeError, match="worker process died.*--resume"):
        annotate(str(armed), path, out, **common)
    assert marker.exists() and not out.exists()
    summary = annotate(str(armed), path, out, resume=True, **common)
    assert summary["annotated"] == 24 and summary["annotated_this_run"] < 24
    annotate(
        str(annotate_pipeline),
        path,
        tmp_path / "clean.jsonl",
        shard_size=4,
        batch_size=4,
        progress=False,
    )
    _same(read_jsonl(out), read_jsonl(tmp_path / "clean.jsonl"))


def test_input_that_is_a_directory_is_refused(annotate_pipeline, tmp_path):
    from spacy_modernbert.annotate.io import AnnotateInputError

    folder = tmp_path / "corpus.jsonl"
    folder.mkdir()
    with pytest.raises(AnnotateInputError, match="is not a file"):
        annotate(str(annotate_pipeline), folder, tmp_path / "out.jsonl", progress=False)
    assert not (tmp_path / "out.jsonl").exists()
