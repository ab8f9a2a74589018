"""End to end: `weasel run all` on the offline default, then its wheels installed offline in a fresh venv."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "en_modernbert_demo"


def _run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{cmd} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.mark.slow
def test_weasel_run_all_offline_default(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "assets" / "demo", project / "assets" / "demo")
    # One torch thread: the tiny encoder's ops are too small to gain from threads, and on a
    # loaded 2-core machine OpenMP threads spin-waiting on each other made a training step
    # take seconds instead of ~0.3 s (measured while developing).
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
    )
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # The offline default, with a smaller training budget to keep the suite fast.
    _run(
        [
            sys.executable,
            "-m",
            "weasel",
            "run",
            "all",
            ".",
            "--vars.max_epochs",
            "2",
            "--vars.plugin_source",
            str(ROOT),
        ],
        project,
        env,
    )

    metrics = json.loads((project / "metrics" / "metrics.json").read_text())
    for key in ("ents_f", "anomaly_auc", "anomaly_ap", "anomaly_f"):
        assert key in metrics
    for image in ("anomaly_roc.svg", "anomaly_pr.svg"):
        assert (project / "metrics" / image).read_text().startswith("<svg")
    # the training curves: one JSON line per evaluation, drawn by plot-training
    assert (project / "training" / "metrics.jsonl").read_text().count("\n") >= 2
    assert (project / "training" / "curves.svg").read_text().startswith("<svg")
    wheels = list((project / "packages").glob(f"{PACKAGE}-*/dist/*.whl"))
    assert len(wheels) == 1
    plugin_wheels = list((project / "packages").glob("spacy_modernbert-*.whl"))
    assert len(plugin_wheels) == 1

    # A fresh venv on a machine that has the dependencies (spaCy, torch, ... here: this
    # environment's packages, linked in) but neither the plugin nor the pipeline, and no
    # index: the README's offline install of the two wheels from packages/.
    fresh = tmp_path / "fresh"
    fresh_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    # --without-pip: the venv's bundled setuptools would shadow the one torch requires; pip
    # itself comes with the linked dependencies
    _run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], tmp_path, fresh_env)
    fresh_python = fresh / "bin" / "python"
    fresh_site = Path(
        _run(
            [str(fresh_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
            fresh_env,
        ).stdout.strip()
    )
    deps = _dependencies_without_the_plugin(tmp_path / "deps")
    (fresh_site / "_deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    absent = subprocess.run(
        [str(fresh_python), "-c", "import spacy_modernbert"],
        cwd=tmp_path,
        env=fresh_env,
        capture_output=True,
    )
    assert absent.returncode != 0, "the fresh venv must not see the plugin before the install"
    _run(
        [
            str(fresh_python),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(project / "packages"),
            str(wheels[0]),
        ],
        tmp_path,
        fresh_env,
    )

    requires = _run(
        [
            str(fresh_python),
            "-c",
            f"from importlib.metadata import requires; print(requires('{PACKAGE}'))",
        ],
        tmp_path,
        fresh_env,
    ).stdout
    assert "spacy-modernbert" in requires.replace("_", "-")
    card = _run(
        [
            str(fresh_python),
            "-c",
            f"from importlib.metadata import metadata; print(metadata('{PACKAGE}').get_payload())",
        ],
        tmp_path,
        fresh_env,
    ).stdout
    for expected in (
        "Base checkpoint",
        "assets/tiny-modernbert",
        "`ner`",
        "`HOST`",
        "doc._.anomaly_score",
        "doc._.is_anomaly",
        "ents_f",
        "anomaly_auc",
        "MIT",
    ):
        assert expected in card, f"{expected!r} missing from the model card:\n{card}"
    check = (
        "import spacy, math, spacy_modernbert\n"
        f"assert spacy_modernbert.__file__.startswith({str(fresh_site)!r}), spacy_modernbert.__file__\n"
        f"nlp = spacy.load('{PACKAGE}')\n"
        "doc = nlp('At 03:12 UTC payments-api in eu-west-1 returned HTTP 502 after deploy v2.14.3 by Maria Lopez.')\n"
        "assert nlp.pipe_names == ['transformer', 'ner', 'entity_consistency', 'anomaly_scorer'], nlp.pipe_names\n"
        "assert 0.0 <= doc._.anomaly_score <= 1.0 and math.isfinite(doc._.anomaly_score)\n"
        "assert all(0 <= e.start < e.end <= len(doc) for e in doc.ents)\n"
        "print('OK', [(e.text, e.label_) for e in doc.ents], doc._.anomaly_score)\n"
    )
    out = _run([str(fresh_python), "-c", check], tmp_path, fresh_env).stdout
    assert out.startswith("OK")


def _dependencies_without_the_plugin(target: Path) -> Path:
    """Links to every package of this environment's site-packages except spacy-modernbert.

    No .pth files: they would bring back an editable install of the plugin.
    """
    target.mkdir()
    seen = set()
    for directory in (
        Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()
    ):
        for entry in directory.iterdir():
            if (
                entry.name in seen
                or "modernbert" in entry.name
                or entry.suffix == ".pth"
                or entry.name == "__pycache__"
            ):
                continue
            seen.add(entry.name)
            (target / entry.name).symlink_to(entry)
    return target
