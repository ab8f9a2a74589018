"""benchmarks/ner_consistency.py: the pre-registered choice and rule, S's recipe, the gated test."""

import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, Span

from benchmarks import ner_consistency as nc
from benchmarks import ner_context as ctx


def _scores(base, docs):
    """{seed: scores} with S on sentences `base[i]` and each variant's docs figure `docs[v][i]`."""
    return {
        s: {"sentences": base[i], **{f"docs+{v}": docs[v][i] for v in docs}}
        for i, s in enumerate(nc.DEV_SEEDS)
    }


def test_s_is_ner_contexts_sentence_system_and_runs_as_its_studies_run_it():
    assert (nc.SYSTEM, nc.LR, nc.SETTINGS) == ctx.SENTENCES_R6
    assert nc.SETTINGS["batch_size"] == 16 and nc.LR == 2e-3 and nc.SETTINGS["docs_of"] == 1
    cmd = nc.train_command(3, Path("ckpt"), Path("r.jsonl"), Path("out"))
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert sets == [f"{k}={v}" for k, v in ctx.SENTENCES_R6[2].items()]
    for flag, value in [
        ("--seed", "3"),
        ("--split", "dev"),
        ("--tag", nc.TAG),
        ("--save-model", "out"),
        ("--checkpoint", "ckpt"),
        ("--lr", "0.002"),
    ]:
        assert cmd[cmd.index(flag) + 1] == value


def test_the_pre_registered_variants_seeds_and_rule():
    assert nc.VARIANTS["vote"] == {"vote": True, "propagate": False, "min_count": 1}
    assert nc.VARIANTS["vote+propagate"] == {"vote": True, "propagate": True, "min_count": 1}
    assert nc.DEV_SEEDS == (0, 1, 2, 3, 4, 5) and nc.TEST_SEEDS == (0, 1, 2)
    assert nc.RULE_MARGIN == 0.0 and nc.RULE_WINS == 4


def test_the_best_dev_mean_chooses_the_variant():
    scores = _scores([50] * 6, {"vote": [51] * 6, "vote+propagate": [52, 52, 52, 40, 52, 52]})
    assert nc.choose(scores) == "vote"  # 50.0 mean vs 51
    scores = _scores([50] * 6, {"vote": [51] * 6, "vote+propagate": [52] * 6})
    assert nc.choose(scores) == "vote+propagate"


@pytest.mark.parametrize(
    "docs, met, wins",
    [
        ([50.1, 50.1, 50.1, 50.1, 49.9, 49.9], True, 4),  # +0.03, 4 of 6
        ([50.1, 50.1, 50.1, 49.9, 49.9, 49.9], False, 3),  # +0.0 but only 3 of 6
        ([50.0, 51, 51, 51, 51, 44], False, 4),  # 4 of 6 but the mean loses
        ([50.0] * 6, False, 0),  # a tie on every seed is no win
    ],
)
def test_the_rule_needs_the_mean_and_four_of_six_seeds(docs, met, wins):
    rule = nc.rule(_scores([50] * 6, {"vote": docs, "vote+propagate": [0] * 6}))
    assert rule["chosen"] == "vote" and rule["wins"] == wins and rule["met"] is met
    assert rule["per seed"] == [round(d - 50, 2) for d in docs]


def test_the_rule_refuses_a_missing_seed():
    scores = _scores([50] * 6, {"vote": [51] * 6, "vote+propagate": [51] * 6})
    del scores[5]
    with pytest.raises(ValueError, match=r"\[5\] not scored"):
        nc.rule(scores)


def test_rows_pair_each_arm_with_s_on_sentences():
    scores = {
        0: {"sentences": 50, "docs": 50, "docs+vote": 51, "changed:docs+vote": 3},
        1: {"sentences": 52, "docs": 52, "docs+vote": 51, "changed:docs+vote": 4},
    }
    rows = nc.rows(scores, ("sentences", "docs"), ("vote",))
    assert [(r["view"], r["pipe"]) for r in rows] == [
        (nc.DESCRIBE["sentences"], "none"),
        (nc.DESCRIBE["docs"], "none"),
        (nc.DESCRIBE["docs"], "vote"),
    ]
    voted = rows[2]
    assert voted["- S on sentences"] == 0.0 and voted["seeds ahead"] == "1 of 2"
    assert voted["entities changed"] == 7 and voted["per seed"] == [51, 51]
    assert voted["F1"]["mean"] == 51


def test_with_pipe_scores_copies_and_counts_changes():
    doc = Doc(spacy.blank("en").vocab, words="Smith met Smith and Smith".split())
    doc.set_ents([Span(doc, 0, 1, "PER"), Span(doc, 2, 3, "ORG"), Span(doc, 4, 5, "PER")])
    new, changed = nc.with_pipe([doc], nc.VARIANTS["vote"])
    assert [e.label_ for e in new[0].ents] == ["PER"] * 3 and changed == 1
    assert [e.label_ for e in doc.ents] == ["PER", "ORG", "PER"]  # the scored doc is a copy


def test_test_runs_only_when_the_dev_rule_held(tmp_path, monkeypatch):
    monkeypatch.setattr(nc.para, "OUT", tmp_path)
    with pytest.raises(SystemExit, match="no dev result"):
        nc.test(tmp_path)
    rule = {"chosen": "vote", "difference": -0.3, "wins": 2, "met": False}
    (tmp_path / "ner_consistency_dev.json").write_text(json.dumps({"rule": rule}))
    with pytest.raises(SystemExit, match=r"not met \(vote: -0.30, 2 of 6"):
        nc.test(tmp_path)
    assert not (tmp_path / "ner_consistency.json").exists()


def test_the_as_trained_sentences_are_described_beside_the_rule_and_never_decide_it():
    scores = _scores([50] * 6, {"vote": [50.1] * 4 + [49.9] * 2, "vote+propagate": [0] * 6})
    for s in scores.values():
        s["plain"] = 51.0
    rule = nc.rule(scores)
    assert rule["met"] is True  # the pre-registered rule reads the sentences view only
    assert rule["vs S as trained (sentence_windows off)"] == round(50.0333 - 51, 2)
    assert rule["wins vs S as trained"] == 0
