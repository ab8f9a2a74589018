"""`python -m spacy_modernbert evaluate` refuses bad input before writing anything (issue 14, item 8).

Before: `evaluate MODEL garbage.bin` printed a traceback and left a metrics.json with every
metric null in --output.
"""

import os

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_modernbert.cli.evaluate import evaluate


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "pipeline"
    spacy.blank("en").to_disk(path)
    return path


def _refused(capsys, pipeline, data, out, match):
    with pytest.raises(SystemExit) as exc:
        evaluate(pipeline, data, out)
    assert exc.value.code == 1
    assert match in " ".join(capsys.readouterr().out.split())  # wasabi wraps lines
    assert not out.exists()


def test_garbage_bin_is_refused_before_writing(capsys, pipeline, tmp_path):
    data = tmp_path / "garbage.bin"
    data.write_bytes(os.urandom(4096))
    _refused(capsys, pipeline, data, tmp_path / "metrics", "is not a .spacy corpus")


def test_garbage_with_spacy_suffix_is_refused_before_writing(capsys, pipeline, tmp_path):
    data = tmp_path / "garbage.spacy"
    data.write_bytes(os.urandom(4096))
    _refused(
        capsys, pipeline, data, tmp_path / "metrics", "is not a readable .spacy corpus (DocBin)"
    )


def test_missing_data_and_empty_directory_are_refused(capsys, pipeline, tmp_path):
    _refused(
        capsys, pipeline, tmp_path / "nope.spacy", tmp_path / "metrics", "Evaluation data not found"
    )
    (tmp_path / "empty").mkdir()
    _refused(capsys, pipeline, tmp_path / "empty", tmp_path / "metrics", "No .spacy files in")


def test_missing_pipeline_is_refused_before_writing(capsys, tmp_path):
    data = tmp_path / "dev.spacy"
    DocBin(docs=[spacy.blank("en")("A small text.")]).to_disk(data)
    _refused(capsys, tmp_path / "no-pipeline", data, tmp_path / "metrics", "Pipeline not found")


def test_good_corpus_still_evaluates(pipeline, tmp_path):
    data = tmp_path / "dev.spacy"
    DocBin(docs=[spacy.blank("en")("A small text.")]).to_disk(data)
    evaluate(pipeline, data, tmp_path / "metrics")
    assert (tmp_path / "metrics" / "metrics.json").exists()


def test_calibrate_refuses_garbage_before_writing(capsys, pipeline, tmp_path):
    from spacy_modernbert.cli.calibrate import calibrate

    data = tmp_path / "garbage.spacy"
    data.write_bytes(os.urandom(4096))
    with pytest.raises(SystemExit):
        calibrate(pipeline, data, output=tmp_path / "calibrated")
    assert "is not a readable .spacy corpus" in " ".join(capsys.readouterr().out.split())
    assert not (tmp_path / "calibrated").exists()


def test_compression_bomb_is_refused_without_inflating_it(capsys, pipeline, tmp_path, monkeypatch):
    import zlib

    import spacy_modernbert.cli.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "MIN_CORPUS_LIMIT", 1 << 20)  # keep the test small
    data = tmp_path / "bomb.spacy"
    data.write_bytes(zlib.compress(b"\x00" * (64 << 20), 9))  # 64 MiB from ~64 KB
    _refused(capsys, pipeline, data, tmp_path / "metrics", "(a compression bomb?)")
