"""export-hf / export-onnx: the exported encoder computes what the pipeline's encoder computes.

The pipeline is the tiny checkpoint's encoder with its weights moved (a stand-in for
fine-tuning: the export must carry the pipeline's weights, not the base checkpoint's),
saved to disk and exported by path. Docs: 100 generated demo reports of mixed length
(one sentence to six reports joined), seed 34 (not the seed of the tokenizer's text).
"""

import random
import shutil
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.util import load_config

import spacy_modernbert.anomaly  # noqa: F401  registers anomaly_scorer
from spacy_modernbert.cli.export import ExportError, export_hf, export_onnx
from spacy_modernbert.data.demo import generate_demo_records

LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "pooling": {"@layers": "reduce_mean.v1"},
}


def _texts(n: int = 100):
    rng = random.Random(34)
    reports = [str(r["text"]) for r in generate_demo_records(n_docs=3 * n, seed=34)]
    texts = []
    for i in range(n):
        k = rng.choice([0, 1, 1, 2, 3, 6])
        texts.append(reports[i].split(". ")[0] if k == 0 else " ".join(rng.sample(reports, k)))
    return texts


@pytest.fixture(scope="module")
def texts():
    return _texts()


@pytest.fixture(scope="module")
def pipeline_dir(tiny_checkpoint, transformer_config, tmp_path_factory) -> Path:
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config=transformer_config(tiny_checkpoint, max_length=1024, max_batch_tokens=4096),
    )
    nlp.add_pipe(
        "anomaly_scorer",
        config={
            "model": {"@architectures": "spacy-modernbert.AnomalyHead.v1", "tok2vec": LISTENER}
        },
    )
    with pytest.warns(UserWarning):  # no labelled anomalies: fine, the head is not exported
        nlp.initialize()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in nlp.get_pipe("transformer").model.transformer.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.02)
    path = tmp_path_factory.mktemp("pipeline")
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def reference(pipeline_dir, texts):
    """The saved pipeline's own encoder output per doc: ([CLS] pieces [SEP] ids, hidden)."""
    nlp = spacy.load(pipeline_dir)
    out = []
    for doc in nlp.pipe(texts):
        trf = doc._.trf_data
        out.append(
            (
                numpy.asarray(trf.wordpieces.input_ids[0], dtype=numpy.int64),
                trf.model_output.last_hidden_state[0],
            )
        )
    lengths = [len(ids) for ids, _ in out]
    assert max(lengths) <= 1024 and min(lengths) < 40 < 400 < max(
        lengths
    )  # one window each, mixed lengths
    return out


def test_export_hf_round_trip(pipeline_dir, texts, reference, tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    out = tmp_path / "hf"
    result = export_hf(str(pipeline_dir), out, texts=texts)
    assert result["check"]["n_docs"] == 100 and result["skipped"] == 0
    model, info = AutoModel.from_pretrained(
        str(out), output_loading_info=True, local_files_only=True
    )
    assert type(model).__name__ == "ModernBertModel"
    assert (
        not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ), info
    tokenizer = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for text, (ids, hidden) in zip(texts, reference):
            assert tokenizer(" " + text)["input_ids"] == ids.tolist()
            got = model(input_ids=torch.from_numpy(ids)[None]).last_hidden_state[0].numpy()
            worst = max(worst, float(numpy.abs(got - hidden).max()))
    assert worst <= 1e-5, worst
    # the pipeline's weights, not the base checkpoint's
    base, exported = (
        load_file(str(tiny_checkpoint / "model.safetensors")),
        load_file(str(out / "model.safetensors")),
    )
    key = "layers.1.attn.Wqkv.weight"
    assert set(exported) <= set(base) and not torch.equal(base[key], exported[key])
    card = (out / "README.md").read_text(encoding="utf8")
    assert str(pipeline_dir.resolve()) in card and str(tiny_checkpoint) in card
    assert (
        "`anomaly_scorer` (anomaly_scorer)" in card
        and "LayerNorm cannot act as the identity" in card
    )


def test_export_onnx_matches_pipeline(pipeline_dir, texts, reference, tmp_path):
    pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed")
    import onnx

    from spacy_modernbert.export.onnx import compare, run_padded, session

    out = tmp_path / "onnx"
    result = export_onnx(str(pipeline_dir), out, int8=True, texts=texts[:10])
    graph = onnx.load(str(out / "model.onnx"))
    assert graph.opset_import[0].version == 17 == result["opset"]
    ids = [i for i, _ in reference]
    want = [h for _, h in reference]
    for batch_size in (1, 7, 32):  # dynamic batch and length, padding inside batches
        fp32 = compare(
            run_padded(
                session(out / "model.onnx", threads=1), ids, pad_id=3, batch_size=batch_size
            ),
            want,
        )
        assert fp32["max_abs_diff"] <= 1e-4, (batch_size, fp32)
    int8 = compare(run_padded(session(out / "model.int8.onnx", threads=1), ids, pad_id=3), want)
    assert int8["mean_cosine"] > 0.99 and int8["max_abs_diff"] > 1e-4  # quantized: close, not equal


def _quantized_copy(pipeline_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "int8"
    shutil.copytree(pipeline_dir, copy)
    config = load_config(copy / "config.cfg", interpolate=False)
    config["components"]["transformer"]["model"]["quantize"] = "int8"
    config.to_disk(copy / "config.cfg", interpolate=False)
    return copy


def test_refusals(pipeline_dir, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match=r"is not empty \(notes.txt\).*--overwrite"):
        export_hf(str(pipeline_dir), full)
    with pytest.raises(ExportError, match=r"quantized \(quantize = \"int8\"\): exports are fp32"):
        export_hf(str(_quantized_copy(pipeline_dir, tmp_path)), tmp_path / "a")
    blank = tmp_path / "blank"
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(blank)
    with pytest.raises(
        ExportError, match=r"has no transformer component \(components: sentencizer\)"
    ):
        export_hf(str(blank), tmp_path / "b")
    with pytest.raises(
        ExportError,
        match=r"has no component 'trf'; its ModernBERT encoder is 'transformer': pass --component transformer",
    ):
        export_hf(str(pipeline_dir), tmp_path / "c", component="trf")
    with pytest.raises(
        ExportError, match=r"Component 'anomaly_scorer' .* is not a spacy-modernbert encoder"
    ):
        export_hf(str(pipeline_dir), tmp_path / "d", component="anomaly_scorer")
    with pytest.raises(ExportError, match=r"Could not load the pipeline"):
        export_hf(str(tmp_path / "missing"), tmp_path / "e")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:  # without the `onnx` extra, export-onnx refuses for that reason
        (tmp_path / "f").mkdir()
    else:
        with pytest.raises(ExportError, match=r"--opset must be at least 14"):
            export_onnx(str(pipeline_dir), tmp_path / "f", opset=12)
    assert not any((tmp_path / n).exists() for n in "abcde") and (full / "notes.txt").exists()


def test_overwrite_replaces_export_files_only(pipeline_dir, tmp_path):
    out = tmp_path / "hf"
    export_hf(str(pipeline_dir), out)
    (out / "notes.txt").write_text("keep me")
    (out / "model.safetensors").write_bytes(b"stale")
    export_hf(str(pipeline_dir), out, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me" and (
        out / "model.safetensors"
    ).stat().st_size > 1000


def test_cli_refusal_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    result = CliRunner().invoke(
        app, ["export-hf", str(tmp_path / "missing"), str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    # one message (wasabi wraps it at 80 columns), no traceback
    assert "Could not load the pipeline" in result.output and result.output.count("\u2718") == 1
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
