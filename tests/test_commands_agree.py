"""Commands that agree with each other (issue 26): one loader, one overwrite rule, one-line errors.

A small pipeline (ner + anomaly_scorer with their own tok2vec, no encoder) keeps this fast:
what is tested is the commands' handling of pipelines, corpora and outputs, not the encoder.
"""

import io
import json
import socket
import sys
import textwrap
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_modernbert.__main__ import app

ROOT = Path(__file__).resolve().parent.parent
DOCS_SEEN = {"n": 0}


@Language.component("t26_count_docs")
def count_docs(doc):
    """Counts the docs the pipeline runs over (evaluate must run it once per doc)."""
    DOCS_SEEN["n"] += 1
    return doc


def _rows(split, n):
    return list(srsly.read_jsonl(ROOT / "assets" / "demo" / f"{split}.jsonl"))[:n]


def _docbin(path, rows, labelled=True):
    nlp = spacy.blank("en")
    docs = []
    for row in rows:
        doc = nlp.make_doc(row["text"])
        if labelled is True:
            doc.cats = {"ANOMALY": float(row["anomaly"])}
        elif labelled == "normal":
            doc.cats = {"ANOMALY": 0.0}
        docs.append(doc)
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(pipeline dir, labelled dev corpus, directory) shared by the tests of this module."""
    base = tmp_path_factory.mktemp("commands")
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.add_pipe("anomaly_scorer")
    rows = _rows("train", 60)
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
    nlp.to_disk(base / "pipeline")
    dev = _docbin(base / "dev.spacy", _rows("dev", 40))
    return base / "pipeline", dev, base


@pytest.fixture
def installed_package(setup, tmp_path, monkeypatch):
    """The pipeline as an installed package (`en_t26pkg`, with its dist-info), as `pip install` leaves it."""
    pipeline, _, _ = setup
    site = tmp_path / "site"
    package = site / "en_t26pkg"
    nlp = spacy.load(pipeline)
    nlp.meta.update(name="t26pkg", version="0.0.1")
    package.mkdir(parents=True)
    nlp.to_disk(package / "en_t26pkg-0.0.1")
    srsly.write_json(package / "meta.json", nlp.meta)
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        from pathlib import Path
        from spacy.util import load_model_from_init_py

        def load(**overrides):
            return load_model_from_init_py(__file__, **overrides)
    """)
    )
    dist = site / "en_t26pkg-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: en_t26pkg\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(site))
    assert spacy.util.is_package("en_t26pkg")
    return "en_t26pkg"


def _invoke(args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result, " ".join(result.output.split())  # wasabi wraps long lines


def _one_line_failure(result, text, expected):
    """Exit 1 through msg.fail (no traceback), with the expected words in a short message."""
    assert result.exit_code == 1, text
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}: {text}"
    assert "Traceback" not in text and expected in text, text
    failure = result.output[result.output.rindex("\u2718") :]  # the message after wasabi's cross
    assert "\n\n" not in failure.strip() and 'File "' not in failure, (
        failure
    )  # one message (wasabi wraps it at 80 columns)


# --- one loader: a directory or an installed package, in every command -------------------------


def test_evaluate_takes_an_installed_package(setup, installed_package, tmp_path):
    _, dev, _ = setup
    result, text = _invoke(["evaluate", installed_package, dev, "--output", tmp_path / "metrics"])
    assert result.exit_code == 0, text
    metrics = json.loads((tmp_path / "metrics" / "metrics.json").read_text())
    assert metrics["anomaly_auc"] is not None
    assert (tmp_path / "metrics" / "anomaly_roc.svg").read_text().startswith("<svg")


def test_calibrate_takes_an_installed_package_and_writes_a_copy(setup, installed_package, tmp_path):
    _, dev, _ = setup
    result, text = _invoke(
        ["calibrate", installed_package, dev, "--output", tmp_path / "calibrated"]
    )
    assert result.exit_code == 0, text
    assert spacy.load(tmp_path / "calibrated").get_pipe("anomaly_scorer").cfg["threshold"] != 0.5
    result, text = _invoke(
        ["calibrate", installed_package, dev, "--overwrite"]
    )  # in place: not in site-packages
    _one_line_failure(result, text, "is an installed package: pass --output DIR")


def test_model_card_refuses_an_installed_package_in_one_line(installed_package):
    result, text = _invoke(["model-card", installed_package])
    _one_line_failure(result, text, "is an installed package, already packaged")


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "{missing}", "{dev}"],
        ["calibrate", "{missing}", "{dev}", "--output", "{out}"],
        ["quantize", "{missing}", "{out}"],
        ["model-card", "{missing}"],
        ["serve", "{missing}", "--port", "0"],
        ["annotate", "{missing}", "{jsonl}", "{out}.jsonl"],
        ["distill", "{missing}", "{config}", "{jsonl}", "--output", "{out}"],
    ],
    ids=lambda c: c[0],
)
def test_a_missing_pipeline_is_one_line_in_every_command(setup, tmp_path, command):
    pytest.importorskip("fastapi") if command[0] == "serve" else None
    _, dev, _ = setup
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "a"}\n')
    values = {
        "missing": tmp_path / "no-such-pipeline",
        "dev": dev,
        "out": tmp_path / "out",
        "jsonl": jsonl,
        "config": ROOT / "configs" / "cpu_tiny.cfg",
    }
    result, text = _invoke([part.format(**values) for part in command])
    assert result.exit_code == 1 and "Traceback" not in text
    assert "not found" in text or "no meta.json" in text or "not a pipeline directory" in text, text
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.jsonl").exists()


def test_a_damaged_pipeline_is_one_line(setup, tmp_path):
    _, dev, _ = setup
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.cfg").write_text("[nlp\nnot a config")
    text_file = tmp_path / "unlabelled.txt"
    text_file.write_text("server is down again\n")
    for args in (
        ["evaluate", broken, dev, "--output", tmp_path / "m"],
        ["calibrate", broken, dev, "--output", tmp_path / "c"],
        [
            "distill",
            broken,
            ROOT / "configs" / "cpu_tiny.cfg",
            text_file,
            "--output",
            tmp_path / "d",
        ],
    ):
        result, text = _invoke(args)
        _one_line_failure(result, text, f"Cannot load the pipeline {broken}")


# --- one-line errors for malformed and wrong-typed inputs, a test per command -------------------


@pytest.mark.parametrize(
    "command,expected",
    [
        (["convert-jsonl", "{tmp}/none.jsonl", "{tmp}/x.spacy"], "not found"),
        (
            [
                "pretrain",
                "{tmp}/no-model",
                "{tmp}/none.txt",
                "--output",
                "{tmp}/run",
                "--steps",
                "1",
            ],
            "does not exist",
        ),
        (
            ["evaluate", "{pipeline}", "{tmp}/garbage.spacy", "--output", "{tmp}/m"],
            "is not a readable .spacy corpus",
        ),
        (
            ["calibrate", "{pipeline}", "{tmp}/garbage.spacy", "--output", "{tmp}/c"],
            "is not a readable .spacy corpus",
        ),
        (["quantize", "{pipeline}", "{tmp}/q", "--mode", "int4"], "--mode must be one of"),
        (["model-card", "{pipeline}", "--metrics", "{tmp}/garbage.spacy"], "is not JSON"),
        (["serve", "{pipeline}", "--port", "99999"], "--port must be between 0 and 65535"),
        (["annotate", "{pipeline}", "{tmp}/in.jsonl", "{tmp}/out.csv"], "unknown extension"),
    ],
    ids=lambda c: c[0] if isinstance(c, list) else None,
)
def test_bad_input_is_one_line(setup, tmp_path, command, expected):
    if command[0] == "serve":
        pytest.importorskip("fastapi")
    pipeline, _, _ = setup
    (tmp_path / "garbage.spacy").write_bytes(b"\x00\x01 not a docbin")
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n')
    result, text = _invoke([part.format(tmp=tmp_path, pipeline=pipeline) for part in command])
    _one_line_failure(result, text, expected)


def test_model_card_refuses_metrics_that_are_not_evaluate_output(setup, tmp_path):
    pipeline, _, _ = setup
    metrics = tmp_path / "foo.json"
    metrics.write_text('{"foo": 1}')
    result, text = _invoke(["model-card", pipeline, "--metrics", metrics])
    _one_line_failure(result, text, "holds no evaluation metrics")
    metrics.write_text("[1, 2]")
    result, text = _invoke(["model-card", pipeline, "--metrics", metrics])
    _one_line_failure(result, text, "holds no evaluation metrics")


# --- the card describes the pipeline that ships -------------------------------------------------


def test_model_card_refuses_figures_from_before_calibrate(setup, tmp_path):
    pipeline, dev, _ = setup
    assert _invoke(["evaluate", pipeline, dev, "--output", tmp_path / "metrics"])[0].exit_code == 0
    assert (
        _invoke(["calibrate", pipeline, dev, "--output", tmp_path / "calibrated"])[0].exit_code == 0
    )
    result, text = _invoke(
        ["model-card", tmp_path / "calibrated", "--metrics", tmp_path / "metrics" / "metrics.json"]
    )
    _one_line_failure(result, text, "were scored at threshold 0.5")
    assert not (tmp_path / "calibrated" / "README.md").exists()
    assert (
        _invoke(["evaluate", tmp_path / "calibrated", dev, "--output", tmp_path / "m2"])[
            0
        ].exit_code
        == 0
    )
    result, text = _invoke(
        ["model-card", tmp_path / "calibrated", "--metrics", tmp_path / "m2" / "metrics.json"]
    )
    assert result.exit_code == 0, text


def test_calibrating_again_leaves_no_stale_card(setup, tmp_path):
    """A second calibrate over a packaged-and-carded output replaces it whole: no old README.md."""
    pipeline, dev, _ = setup
    out = tmp_path / "calibrated"
    assert _invoke(["calibrate", pipeline, dev, "--output", out])[0].exit_code == 0
    (out / "README.md").write_text("# a card at the old threshold")
    meta = srsly.read_json(out / "meta.json")
    srsly.write_json(out / "meta.json", {**meta, "name": "modernbert_demo", "version": "0.1.0"})
    result, text = _invoke(["calibrate", pipeline, dev, "--output", out])
    _one_line_failure(result, text, "pass --overwrite")
    result, text = _invoke(
        ["calibrate", pipeline, dev, "--output", out, "--overwrite", "--method", "target_fpr"]
    )
    assert result.exit_code == 0, text
    assert not (out / "README.md").exists()


def test_calibrate_in_place_needs_overwrite_and_removes_the_stale_card(setup, tmp_path):
    pipeline, dev, _ = setup
    copy = tmp_path / "copy"
    spacy.load(pipeline).to_disk(copy)
    (copy / "README.md").write_text("# a card at threshold 0.5")
    result, text = _invoke(["calibrate", copy, dev])
    _one_line_failure(result, text, "in place")
    assert spacy.load(copy).get_pipe("anomaly_scorer").cfg["threshold"] == 0.5
    result, text = _invoke(["calibrate", copy, dev, "--overwrite"])
    assert result.exit_code == 0 and "Removed" in text, text
    assert not (copy / "README.md").exists()


# --- one overwrite rule ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["calibrate", "quantize", "evaluate"])
def test_never_writes_beside_files_it_did_not_create(setup, tmp_path, command):
    pipeline, dev, _ = setup
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    args = {
        "calibrate": ["calibrate", pipeline, dev, "--output", out],
        "quantize": ["quantize", pipeline, out],
        "evaluate": ["evaluate", pipeline, dev, "--output", out],
    }[command]
    result, text = _invoke(args)
    assert result.exit_code == 1 and "Traceback" not in text, text
    if (
        command != "quantize"
    ):  # quantize refuses this pipeline anyway (no ModernBERT encoder to quantize)
        assert "--overwrite" in text, text
        result, text = _invoke(args + ["--overwrite"])
        _one_line_failure(result, text, "Not replacing")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_evaluate_replaces_its_own_output_only_with_overwrite(setup, tmp_path):
    pipeline, dev, _ = setup
    assert _invoke(["evaluate", pipeline, dev, "--output", tmp_path / "m"])[0].exit_code == 0
    result, text = _invoke(["evaluate", pipeline, dev, "--output", tmp_path / "m"])
    _one_line_failure(result, text, "pass --overwrite")
    assert (
        _invoke(["evaluate", pipeline, dev, "--output", tmp_path / "m", "--overwrite"])[0].exit_code
        == 0
    )


def _writer_args(command, setup, tmp_path):
    """(args, output) of one run of a command that writes, on small inputs made here."""
    _, dev, _ = setup
    if command == "convert-conll":
        iob = tmp_path / "in.iob"
        sentences = [f"Peter B-PER 0\nspoke O 0\nin O 0\nParis{i} B-LOC 0\n" for i in range(12)]
        iob.write_text("\n".join(sentences) + "\n")
        return [
            "convert-conll",
            iob,
            tmp_path / "c.spacy",
            "--dev-output",
            tmp_path / "d.spacy",
            "--dev-frac",
            "0.25",
        ]
    if command == "convert-sms":
        sms = tmp_path / "sms.tsv"
        lines = [f"spam\tWIN {i} now" if i % 5 == 0 else f"ham\tsee you at {i}" for i in range(20)]
        sms.write_text("\n".join(lines) + "\n")
        return ["convert-sms", sms, tmp_path / "sms"]
    out = tmp_path / "out"
    return {
        "convert-jsonl": ["convert-jsonl", ROOT / "assets" / "demo" / "dev.jsonl", out],
        "merge-corpora": ["merge-corpora", out, dev, dev],
        "generate-demo": ["generate-demo", out, "--n-docs", "20"],
        "init-model": ["init-model", out, "--vocab-size", "300", "--hidden-size", "32"]
        + ["--num-hidden-layers", "1", "--num-attention-heads", "2", "--intermediate-size", "48"],
    }[command]


WRITERS = [
    "convert-jsonl",
    "convert-conll",
    "convert-sms",
    "merge-corpora",
    "generate-demo",
    "init-model",
]


@pytest.mark.parametrize("command", WRITERS)
def test_writers_refuse_an_existing_output_unless_overwrite(setup, tmp_path, command):
    """Every command that writes: a second run is one line asking for --overwrite, which works."""
    args = _writer_args(command, setup, tmp_path)
    result, text = _invoke(args)
    assert result.exit_code == 0, text
    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    result, text = _invoke(args)
    _one_line_failure(result, text, "pass --overwrite")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == written
    result, text = _invoke(args + ["--overwrite"])
    assert result.exit_code == 0, text


@pytest.mark.parametrize("command", ["convert-sms", "generate-demo", "init-model"])
def test_writers_never_write_beside_files_they_did_not_create(setup, tmp_path, command):
    args = _writer_args(command, setup, tmp_path)
    out = Path(args[2] if command != "generate-demo" and command != "init-model" else args[1])
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    result, text = _invoke(args + ["--overwrite"])
    _one_line_failure(result, text, "Not replacing")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_generate_demo_leaves_the_corpus_readme_alone(tmp_path):
    """assets/demo holds the data card beside the corpus: regenerating there keeps it."""
    out = tmp_path / "demo"
    out.mkdir()
    (out / "README.md").write_text("card")
    assert _invoke(["generate-demo", out, "--n-docs", "20"])[0].exit_code == 0
    result, text = _invoke(["generate-demo", out, "--n-docs", "20", "--overwrite"])
    assert result.exit_code == 0, text
    assert (out / "README.md").read_text() == "card"
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "dev.jsonl",
        "test.jsonl",
        "train.jsonl",
    ]


def test_project_steps_that_rerun_pass_overwrite():
    """weasel reruns a step when its deps or outputs change: each writing command must pass --overwrite."""
    project = srsly.read_yaml(ROOT / "project.yml")
    lines = [
        line
        for command in project["commands"]
        for line in command["script"]
        if any(f"spacy_modernbert {w} " in line for w in WRITERS)
    ]
    assert len(lines) >= 11
    assert [line for line in lines if "--overwrite" not in line] == []


# --- evaluate: scored once, and a false-positive rate on normal-only corpora ---------------------


def test_evaluate_runs_the_pipeline_once_per_doc(setup, tmp_path):
    pipeline, dev, _ = setup
    nlp = spacy.load(pipeline)
    nlp.add_pipe("t26_count_docs")
    nlp.to_disk(tmp_path / "counting")
    DOCS_SEEN["n"] = 0
    result, text = _invoke(["evaluate", tmp_path / "counting", dev, "--output", tmp_path / "m"])
    assert result.exit_code == 0, text
    assert DOCS_SEEN["n"] == 40  # nlp.evaluate only; the curves come from the same predictions


def test_evaluate_reports_the_false_positive_rate_on_normal_docs_only(setup, tmp_path):
    pipeline, _, _ = setup
    normal = _docbin(
        tmp_path / "normal.spacy",
        [r for r in _rows("dev", 60) if not r["anomaly"]][:30],
        labelled="normal",
    )
    result, text = _invoke(["evaluate", pipeline, normal, "--output", tmp_path / "m"])
    assert result.exit_code == 0, text
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    threshold = spacy.load(pipeline).get_pipe("anomaly_scorer").cfg["threshold"]
    assert metrics["anomaly_threshold"] == threshold
    nlp = spacy.load(pipeline)
    flagged = sum(
        doc._.anomaly_score >= threshold
        for doc in nlp.pipe(d.text for d in DocBin().from_disk(normal).get_docs(nlp.vocab))
    )
    assert metrics["anomaly_fpr"] == pytest.approx(flagged / 30)
    assert "ANOMALY FPR" in text and "false-positive rate at the threshold" in text


# --- calibrate: counts, a target finer than the data, the flag to use without labels -------------


def test_calibrate_counts_unlabelled_docs_and_warns_when_the_target_is_too_fine(setup, tmp_path):
    pipeline, _, _ = setup
    unlabelled = _docbin(tmp_path / "unlabelled.spacy", _rows("dev", 40), labelled=False)
    result, text = _invoke(["calibrate", pipeline, unlabelled, "--output", tmp_path / "c"])
    _one_line_failure(result, text, "--unlabelled-normal")
    result, text = _invoke(
        [
            "calibrate",
            pipeline,
            unlabelled,
            "--output",
            tmp_path / "c",
            "--method",
            "target_fpr",
            "--target-fpr",
            "0.01",
            "--unlabelled-normal",
        ]
    )
    assert result.exit_code == 0, text
    assert "0 labelled documents" in text and "40 unlabelled documents counted as normal" in text
    assert "finer than the data allows" in text and "1/40" in text


# --- serve: the port before the pipeline ----------------------------------------------------------


def test_serve_reports_a_busy_port_before_loading(setup, capsys):
    pytest.importorskip("fastapi")
    from spacy_modernbert.cli.serve import serve

    pipeline, _, _ = setup
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(SystemExit):
            serve(str(pipeline), port=busy.getsockname()[1])
    out = capsys.readouterr().out
    assert "Cannot listen on 127.0.0.1" in out and "Loaded" not in out


# --- the training logger sees both lengths ---------------------------------------------------------


def test_logger_warns_once_when_max_steps_and_the_schedule_disagree():
    from spacy_modernbert.training_logger import console_logger

    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.config["training"]["max_steps"] = 20
    nlp.config["training"]["optimizer"]["learn_rate"] = {
        "@schedules": "warmup_linear.v1",
        "warmup_steps": 30,
        "total_steps": 300,
        "initial_rate": 5e-5,
    }
    err = io.StringIO()
    log_step, finalize = console_logger()(nlp, io.StringIO(), err)
    for step in range(3):
        log_step(
            {"epoch": 0, "step": step, "losses": {"ner": 1.0}, "other_scores": {}, "score": 0.0}
        )
    finalize()
    lines = [line for line in err.getvalue().splitlines() if "max_steps" in line]
    assert len(lines) == 1 and "total_steps = 300" in lines[0] and "inside warm-up" in lines[0]
    nlp.config["training"]["max_steps"] = 300
    err = io.StringIO()
    console_logger()(nlp, io.StringIO(), err)
    assert "max_steps" not in err.getvalue()


def test_one_label_constant():
    """No "ANOMALY" literal in the package beside DEFAULT_LABEL."""
    literal = '"ANOMALY"'
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "spacy_modernbert").rglob("*.py")
        if literal in p.read_text(encoding="utf8") and p.name != "__init__.py"
    ]
    assert offenders == [], offenders


def test_cli_modules_name_the_typer_signature_x_cli_and_the_function_x():
    import importlib

    for module, command in (
        ("annotate", "annotate"),
        ("pretrain", "pretrain"),
        ("calibrate", "calibrate"),
        ("evaluate", "evaluate"),
        ("quantize", "quantize"),
        ("serve", "serve"),
    ):
        mod = importlib.import_module(f"spacy_modernbert.cli.{module}")
        assert callable(getattr(mod, f"{command}_cli")) and callable(getattr(mod, command)), module
    assert not (ROOT / "spacy_modernbert" / "cli" / "plots.py").exists()
    assert "spacy_modernbert.anomaly.plots" in sys.modules or importlib.import_module(
        "spacy_modernbert.anomaly.plots"
    )
