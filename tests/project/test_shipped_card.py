"""The model card in the wheel states the figures `spacy evaluate` gives on the pipeline in that wheel.

Issue 26 (1, 2): `evaluate` ran on `model-best` before `calibrate`, so the shipped card of
`model-calibrated` listed precision/recall "at the threshold" of another threshold. Here the
project's own commands after `train` run in the order of its `all` workflow (on a small
pipeline trained in the test, not the tiny encoder, to stay fast), the wheel is opened, and
its card is compared with `spacy evaluate` of the pipeline the wheel holds.
"""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.training import Example

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "en_modernbert_demo"


def _train_small_pipeline(path: Path) -> None:
    """ner + anomaly_scorer with their own small tok2vec, a few updates on the demo train split."""
    rows = list(srsly.read_jsonl(ROOT / "assets" / "demo" / "train.jsonl"))[:120]
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.add_pipe("anomaly_scorer")
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
    for _ in range(2):
        for start in range(0, len(examples), 16):
            nlp.update(examples[start : start + 16], sgd=optimizer)
    nlp.to_disk(path)


def _card_figures(card: str) -> dict:
    """{metric key: the card's test figure (percent, 2 decimals)} from rows like `| NER F (`ents_f`) | 90.00 | ... |`."""
    figures = {}
    for key, value in re.findall(r"\(`(\w+)`\) \| ([0-9.]+|-) \|", card):
        figures[key] = value
    return figures


@pytest.mark.slow
def test_wheel_card_matches_spacy_evaluate_of_the_shipped_pipeline(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copy(ROOT / "project.yml", project)
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for split in ("dev", "test"):
        from spacy_modernbert.cli.convert import convert_jsonl

        (project / "corpus").mkdir(exist_ok=True)
        convert_jsonl(
            ROOT / "assets" / "demo" / f"{split}.jsonl", project / "corpus" / f"{split}.spacy"
        )
    (project / "training").mkdir()
    _train_small_pipeline(project / "training" / "model-best")

    workflow = srsly.read_yaml(project / "project.yml")["workflows"]["all"]
    after_train = workflow[workflow.index("train") + 1 :]
    assert set(after_train) == {"calibrate", "evaluate", "package"}
    for command in after_train:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "weasel",
                "run",
                command,
                ".",
                "--vars.plugin_source",
                str(ROOT),
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, f"{command}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"

    wheels = list((project / "packages").glob(f"{PACKAGE}-*/dist/*.whl"))
    assert len(wheels) == 1
    shipped = tmp_path / "shipped"
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(shipped)
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        card = wheel.read(metadata).decode("utf8")
    pipeline = next(p.parent for p in (shipped / PACKAGE).glob("*/config.cfg"))

    from spacy.cli.evaluate import evaluate as spacy_evaluate

    scores = spacy_evaluate(str(pipeline), project / "corpus" / "test.spacy", silent=True)
    threshold = spacy.load(pipeline).get_pipe("anomaly_scorer").cfg["threshold"]
    assert f"doc._.anomaly_score >= {threshold:.6f}" in card
    figures = _card_figures(card)
    for key in ("ents_f", "anomaly_auc", "anomaly_p", "anomaly_r", "anomaly_f"):
        expected = "-" if scores.get(key) is None else f"{100 * scores[key]:.2f}"
        assert figures.get(key) == expected, (
            f"{key}: card {figures.get(key)}, spacy evaluate {expected}\n{card}"
        )
