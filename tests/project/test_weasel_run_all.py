"""End to end: `weasel run all` on the offline default, then the wheel in a fresh venv."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "en_modernbert_demo"


def _run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
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
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # The offline default, with a smaller training budget to keep the suite fast.
    _run([sys.executable, "-m", "weasel", "run", "all", ".", "--vars.max_epochs", "2"], project, env)

    metrics = json.loads((project / "metrics" / "metrics.json").read_text())
    for key in ("ents_f", "anomaly_auc", "anomaly_ap", "anomaly_f"):
        assert key in metrics
    for image in ("anomaly_roc.svg", "anomaly_pr.svg"):
        assert (project / "metrics" / image).read_text().startswith("<svg")
    wheels = list((project / "packages").glob(f"{PACKAGE}-*/dist/*.whl"))
    assert len(wheels) == 1

    # A fresh venv: only the dependencies come from this environment (no network needed);
    # the pipeline package itself is installed from the wheel.
    fresh = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", str(fresh)], tmp_path, env)
    fresh_python = fresh / "bin" / "python"
    fresh_site = Path(_run([str(fresh_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).stdout.strip())
    (fresh_site / "_deps.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    _run([str(fresh_python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheels[0])], tmp_path, env)
    requires = _run([str(fresh_python), "-c", f"from importlib.metadata import requires; print(requires('{PACKAGE}'))"], tmp_path, env).stdout
    assert "spacy-modernbert" in requires.replace("_", "-")
    check = (
        "import spacy, math\n"
        f"nlp = spacy.load('{PACKAGE}')\n"
        "doc = nlp('At 03:12 UTC payments-api in eu-west-1 returned HTTP 502 after deploy v2.14.3 by Maria Lopez.')\n"
        "assert nlp.pipe_names == ['transformer', 'ner', 'anomaly_scorer'], nlp.pipe_names\n"
        "assert 0.0 <= doc._.anomaly_score <= 1.0 and math.isfinite(doc._.anomaly_score)\n"
        "assert all(0 <= e.start < e.end <= len(doc) for e in doc.ents)\n"
        "print('OK', [(e.text, e.label_) for e in doc.ents], doc._.anomaly_score)\n"
    )
    out = _run([str(fresh_python), "-c", check], tmp_path, env).stdout
    assert out.startswith("OK")
