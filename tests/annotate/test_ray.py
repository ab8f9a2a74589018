"""`annotate --engine ray` on a local Ray instance (2 CPUs): same rows as local, exactly once when an actor dies."""

import builtins

import pytest

from spacy_modernbert.cli.annotate import annotate

from .conftest import KILLER, kill_run, read_jsonl, records, write_jsonl
from .test_local import _same

pytest.importorskip("ray.data")
pytestmark = pytest.mark.slow


def test_three_engines_give_the_same_rows(annotate_pipeline, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", records(36))
    common = dict(shard_size=6, batch_size=4, progress=False)
    annotate(str(annotate_pipeline), path, tmp_path / "local.jsonl", **common)
    annotate(str(annotate_pipeline), path, tmp_path / "local2.jsonl", n_process=2, **common)
    summary = annotate(
        str(annotate_pipeline), path, tmp_path / "ray.jsonl", engine="ray", num_actors=2, **common
    )
    local = read_jsonl(tmp_path / "local.jsonl")
    assert summary["annotated"] == 36 and any(r["entities"] for r in local)
    _same(local, read_jsonl(tmp_path / "local2.jsonl"))
    _same(local, read_jsonl(tmp_path / "ray.jsonl"))
    assert [r["id"] for r in read_jsonl(tmp_path / "ray.jsonl")] == [r["id"] for r in records(36)]


def test_killed_actor_rows_exactly_once(annotate_pipeline, kill_pipeline, tmp_path):
    rows, path, marker, armed = kill_run(kill_pipeline, tmp_path, 30, 13)
    summary = annotate(
        str(armed),
        path,
        tmp_path / "ray.jsonl",
        engine="ray",
        num_actors=2,
        code=KILLER,
        shard_size=5,
        batch_size=4,
        progress=False,
    )
    assert marker.exists(), "an actor should have been killed"
    out = read_jsonl(tmp_path / "ray.jsonl")
    assert summary["annotated"] == 30 and [r["id"] for r in out] == [r["id"] for r in rows]
    annotate(
        str(annotate_pipeline),
        path,
        tmp_path / "local.jsonl",
        shard_size=5,
        batch_size=4,
        progress=False,
    )
    _same(read_jsonl(tmp_path / "local.jsonl"), out)


def test_without_ray_says_how_to_install(annotate_pipeline, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = write_jsonl(tmp_path / "in.jsonl", records(2))
    with pytest.raises(ImportError, match=r"pip install 'spacy-modernbert\[ray\]'"):
        annotate(str(annotate_pipeline), path, tmp_path / "out.jsonl", engine="ray", progress=False)
    assert not (tmp_path / "out.jsonl.shards").exists()
