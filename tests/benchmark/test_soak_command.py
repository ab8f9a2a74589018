"""`python -m benchmarks soak` runs `spacy train` end to end on tiny inputs and writes well-formed JSON.

No timing or memory assertions here (tests/encoder/test_memory_soak.py holds the memory check).
"""

import json

from typer.testing import CliRunner

from benchmarks.__main__ import app

CONLL = """EU B-ORG 0
rejects O 0
German B-MISC 0
call O 0
to O 0
boycott O 0
British B-MISC 0
lamb O 0
. O 0

Peter B-PER 0
Blackburn I-PER 0
flew O 0
to O 0
Paris B-LOC 0
on O 0
Monday O 0
. O 0

"""


def test_soak_command_writes_json(tiny_checkpoint, tmp_path):
    data = tmp_path / "data"
    (data / "conll2003").mkdir(parents=True)
    (data / "conll2003" / "train.iob").write_text(CONLL * 10, encoding="utf8")
    out = tmp_path / "soak.json"
    result = CliRunner().invoke(
        app,
        [
            "soak",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data),
            "--output",
            str(out),
            "--updates",
            "3",
            "--batch-words",
            "30",
            "--variant",
            "ours",
        ],
    )
    assert result.exit_code == 0, result.output
    res = json.loads(out.read_text())
    assert res["benchmark"] == "soak" and res["columns"] == ["system", "update", "rss_mib"]
    assert [(r["system"], r["update"]) for r in res["rows"]] == [("ours", 0), ("ours", 3)]
    assert all(r["rss_mib"] > 0 for r in res["rows"])
    assert res["summary"][0]["figure"] is None  # no update 100 in a 3-update run: no ratio claimed
