"""The dev diagnosis of the README path's gap (issue 33): the pre-registered rule, its arms, and
training docs made as `spacy train` makes them. No training here."""

import inspect
import json
from pathlib import Path

import pytest

from benchmarks import ner_readme_path_dev as dev


def _f1(r, nowin, b, retok):
    return {
        "R": dict(enumerate(r)),
        "R-nowin": dict(enumerate(nowin)),
        "B": dict(enumerate(b)),
        "B-retok": dict(enumerate(retok)),
    }


def test_a_gap_under_half_a_point_is_no_systematic_gap_whatever_the_factors_move():
    v = dev.verdict(_f1([70, 71, 72], [75, 76, 77], [70.4, 71.4, 72.4], [60, 61, 62]))
    assert v["gap"] == pytest.approx(0.4)
    assert not v["systematic"]
    assert not any(f["explains"] for f in v["factors"].values())
    assert "no systematic gap" in dev.conclusion(v)


def test_a_factor_explains_when_it_moves_half_the_gap_on_two_of_three_seeds():
    # gap B - R = 4.0; windows: R-nowin - R = +2.0 mean (= G/2), 2 of 3 seeds up
    v = dev.verdict(_f1([70, 70, 70], [73, 73.5, 69.5], [74, 74, 74], [74, 74, 74]))
    assert v["gap"] == pytest.approx(4.0)
    windows = v["factors"]["sentence windows in training"]
    assert windows["move"] == pytest.approx(2.0) and windows["seeds_in_gap_direction"] == 2
    assert windows["explains"]
    retok = v["factors"]["re-tokenization in training"]
    assert retok["move"] == 0 and not retok["explains"]
    assert dev.conclusion(v).endswith("explained by sentence windows in training")


def test_one_lucky_seed_or_a_small_move_does_not_explain_the_gap():
    # retok: B - B-retok = +2.33 mean (> G/2 = 2), but from one seed only
    lucky = dev.verdict(_f1([70, 70, 70], [70, 70, 70], [74, 74, 74], [66, 74.5, 74.5]))
    assert lucky["factors"]["re-tokenization in training"]["move"] > lucky["gap"] / 2
    assert not lucky["factors"]["re-tokenization in training"]["explains"]
    # 3 of 3 seeds, but 1.5 < G/2
    small = dev.verdict(_f1([70, 70, 70], [71.5, 71.5, 71.5], [74, 74, 74], [74, 74, 74]))
    assert small["factors"]["sentence windows in training"]["seeds_in_gap_direction"] == 3
    assert not small["factors"]["sentence windows in training"]["explains"]
    assert "unexplained" in dev.conclusion(small)


def test_a_factor_moving_against_the_gap_never_explains_it():
    v = dev.verdict(_f1([70, 70, 70], [65, 65, 65], [74, 74, 74], [78, 78, 78]))
    assert v["factors"]["sentence windows in training"]["move"] < 0
    assert not any(f["explains"] for f in v["factors"].values())


def test_a_fix_passes_within_half_a_point_of_the_benchmark_or_above():
    assert dev.fix_passes([74.6, 74.6, 74.6], [75, 75, 75])
    assert dev.fix_passes([77, 77, 77], [75, 75, 75])
    assert not dev.fix_passes([74.4, 74.4, 74.4], [75, 75, 75])


def _overridden(overrides):
    from spacy.util import load_config

    from benchmarks.ner_readme_path import CONFIG

    pairs = dict(zip(overrides[::2], overrides[1::2]))
    return load_config(
        CONFIG, overrides={k.lstrip("-"): v == "true" for k, v in pairs.items()}, interpolate=True
    )


def test_each_arm_switches_one_setting_of_the_config_it_ran_on():
    from benchmarks.ner_study import ours_ner

    shipped = _overridden(())
    before = _overridden(dev.ARMS["R"].overrides)
    # R: the config before the fixes (spaCy's tokens, training docs without sentence starts)
    assert before["nlp"]["tokenizer"]["split_hyphens"] is True
    assert before["corpora"]["train"]["gold_sentences"] is False
    assert shipped["nlp"]["tokenizer"]["split_hyphens"] is False
    assert shipped["corpora"]["train"]["gold_sentences"] is True
    # R-nowin: R with sentence windows off, nothing else
    nowin = dev.ARMS["R-nowin"].overrides
    assert nowin[: len(dev.ARMS["R"].overrides)] == dev.ARMS["R"].overrides
    assert _overridden(nowin)["components"]["transformer"]["model"]["sentence_windows"] is False
    assert before["components"]["transformer"]["model"]["sentence_windows"] is True
    # the fixes: gold sentences alone, then the config as shipped
    goldsents = _overridden(dev.FIXES["R-goldsents"].overrides)
    assert goldsents["corpora"]["train"]["gold_sentences"] is True
    assert goldsents["nlp"]["tokenizer"]["split_hyphens"] is True
    assert not dev.FIXES["R-fixed"].overrides
    # B-retok: B with one ours_ner keyword, off by default
    assert not dev.ARMS["B"].settings and dev.ARMS["B-retok"].settings == {"retokenize": True}
    assert inspect.signature(ours_ner).parameters["retokenize"].default is False


def test_benchmark_runs_are_read_back_only_at_the_benchmark_sides_exact_settings(tmp_path):
    from benchmarks.ner_readme_path import benchmark_settings, config_budget

    budget = config_budget(None)
    results = tmp_path / "runs.jsonl"

    def line(settings, split="dev", f1=75.0, seed=0):
        return json.dumps(
            {
                "system": "ours",
                "lr": budget["lr"],
                "settings": settings,
                "tag": "t",
                "n_train": 100,
                "split": split,
                "seed": seed,
                "f1": f1,
                "load_avg": [2.0, 2.0, 2.0],
            }
        )

    exact = benchmark_settings(budget)
    # the ship study's runs: 8,000 sentences x 2 epochs, no max_steps -> not the benchmark side
    ship = {"batch_words": budget["batch_words"], "epochs": 2, "extra_state_tokens": True}
    results.write_text(
        "\n".join(
            [
                line(ship, f1=60.0),
                line(exact, split="test", f1=80.0),
                line(exact, f1=75.0),
                line({**exact, "retokenize": True}, f1=71.0),
            ]
        )
    )
    read = lambda arm: dev.run_benchmark_arm(  # noqa: E731
        dev.ARMS[arm], 0, results, "t", budget, 100
    )
    assert read("B") == {"f1": 75.0, "load": 2.0}
    assert read("B-retok")["f1"] == 71.0
    assert dev.run_benchmark_arm(dev.ARMS["B"], 1, results, "t", budget, 100) is None


def test_the_result_file_holds_every_arm_and_the_rules_verdict(tmp_path):
    from benchmarks.ner_readme_path import config_budget

    out = tmp_path / "ner_readme_path_dev.json"
    f1 = _f1([70, 70, 70], [73, 73.5, 69.5], [74, 74, 74], [74, 74, 74])
    f1["R-fixed"] = {0: 73.6, 1: 73.6, 2: 73.6}  # within 0.5 of B: passes
    f1["R-goldsents"] = {0: 73.0, 1: 73.0, 2: 73.4}  # 0.87 below B: fails
    result = dev.write(out, f1, [1.0, 3.0], [0, 1, 2], config_budget(None), "cmd")
    saved = json.loads(Path(out).read_text())
    assert saved["benchmark"] == "ner_readme_path_dev" and saved["load_avg"] == [1.0, 3.0]
    assert [r["arm"] for r in saved["rows"][:4]] == list(dev.ARMS)
    assert saved["rows"][0]["mean"] == 70 and saved["rows"][2]["seed 1"] == 74
    assert saved["rows"][-1]["rule"].startswith("explains")
    assert "dev only" in saved["protocol"]["reports"]
    assert result["verdict"]["conclusion"].endswith("sentence windows in training")
    # the fixes, in the order they were tried, each checked against B
    assert [r["arm"] for r in saved["rows"][4:6]] == ["R-goldsents", "R-fixed"]
    assert saved["rows"][4]["rule"].startswith("fails") and saved["rows"][5]["rule"].startswith(
        "passes"
    )
    fixes = saved["verdict"]["fixes"]
    assert fixes["R-fixed"]["passes"] and not fixes["R-goldsents"]["passes"]
    assert fixes["R-goldsents"]["vs_B"] == pytest.approx(-0.87)


def test_training_docs_are_made_as_spacy_trains_corpus_makes_them(tmp_path):
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Corpus, iob_to_biluo

    from benchmarks.ner_study import as_spacy_train_reads
    from spacy_modernbert.data.from_conll import conll_sentences_to_doc

    nlp = spacy.blank("en")
    sents = [
        (
            ["EU", "rejects", "German-born", "call", "1996-08-30", "."],
            ["B-ORG", "O", "B-MISC"] + ["O"] * 3,
        ),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    ]
    group = [(words, iob_to_biluo(tags)) for words, tags in sents]
    mine = as_spacy_train_reads(nlp, group)
    # spacy train: convert-conll's doc on disk, read back by spacy.Corpus.v1 (gold_preproc false)
    DocBin(docs=[conll_sentences_to_doc(nlp.vocab, [list(zip(w, t)) for w, t in sents])]).to_disk(
        tmp_path / "train.spacy"
    )
    (theirs,) = list(Corpus(tmp_path / "train.spacy", gold_preproc=False)(nlp))
    assert [t.text for t in mine.predicted] == [t.text for t in theirs.predicted]
    assert "German" in [t.text for t in mine.predicted]  # spaCy's tokens, not CoNLL's
    assert [t.text for t in mine.reference] == sum((w for w, _ in sents), [])
    assert mine.get_aligned_ner() == theirs.get_aligned_ner()
    assert [t.is_sent_start for t in mine.reference] == [t.is_sent_start for t in theirs.reference]
    assert not mine.predicted.has_annotation("SENT_START")


def test_retokenized_training_refuses_recorded_context():
    from benchmarks.ner_study import ours_ner

    with pytest.raises(ValueError, match="context_block"):
        ours_ner(Path("unused"), [], [], 1e-3, retokenize=True, context_block=10)


def test_only_arms_with_every_seed_are_written_and_the_required_ones_must_be_complete():
    f1 = {"R": {3: 70.0, 4: 71.0}, "B": {3: 72.0, 4: 73.0}, "R-fixed": {3: 71.0}}
    kept, missing = dev.complete_arms(f1, [3, 4], ("R", "B"))
    assert set(kept) == {"R", "B"} and not missing  # R-fixed lacks seed 4: left out
    _, missing = dev.complete_arms(f1, [3, 4], tuple(dev.ARMS))  # the pre-registered run
    assert missing == ["R-nowin/3", "R-nowin/4", "B-retok/3", "B-retok/4"]
    _, missing = dev.complete_arms(f1, [3, 4, 5], ("R", "B"))
    assert missing == ["R/5", "B/5"]


def test_a_partial_result_file_has_no_factor_rows_for_arms_it_lacks(tmp_path):
    from benchmarks.ner_readme_path import config_budget

    f1 = {"R": {3: 70.0}, "B": {3: 72.0}, "R-fixed": {3: 71.6}}
    saved = dev.write(tmp_path / "x.json", f1, [1.0], [3], config_budget(None), "cmd", True)
    assert saved["protocol"]["chooses"].startswith("nothing: a diagnostic")
    assert [r["arm"] for r in saved["rows"]] == ["R", "B", "R-fixed"]
    assert saved["verdict"]["factors"] == {} and saved["verdict"]["fixes"]["R-fixed"]["passes"]
    assert saved["verdict"]["conclusion"] == "B - R = +2.00 (no factor arms in this run)"


def test_the_readme_path_trains_the_configs_pipeline_without_the_anomaly_scorer(tmp_path):
    from benchmarks.ner_readme_path import CONFIG, ner_half

    assert ner_half() == ["transformer", "ner", "entity_consistency"]
    other = tmp_path / "other.cfg"
    text = CONFIG.read_text("utf8").replace(
        'pipeline = ["transformer","ner","entity_consistency","anomaly_scorer"]',
        'pipeline = ["transformer","ner","anomaly_scorer"]',
    )
    other.write_text(text, encoding="utf8")
    assert ner_half(other) == ["transformer", "ner"]
