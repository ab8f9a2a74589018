"""The recall diagnostics (issue 33): where entities go wrong, and the pre-registered adoption
rule (mean dev gain >= MIN_GAIN and wins on >= MIN_WINS seeds), read from dev runs only."""

import json

import pytest

from benchmarks import ner_recall as recall
from benchmarks.accuracy import span_errors


def test_span_errors_counts_labels_lengths_and_kinds_of_misses():
    gold = [[(0, 2, "PER"), (3, 4, "LOC"), (5, 6, "ORG"), (7, 8, "MISC")]]
    pred = [[(0, 2, "PER"), (3, 5, "LOC"), (5, 6, "PER")]]
    e = span_errors(gold, pred)
    assert e["by_label"]["PER"] == {"tp": 1, "fp": 1, "fn": 0}
    assert e["by_label"]["LOC"] == {"tp": 0, "fp": 1, "fn": 1}
    assert e["by_label"]["ORG"] == {"tp": 0, "fp": 0, "fn": 1}
    assert e["by_length"]["2"] == {"tp": 1, "fp": 1, "fn": 0}
    assert e["by_length"]["1"] == {"tp": 0, "fp": 1, "fn": 3}
    # LOC: boundaries differ; ORG: the same span with another label; MISC: nothing predicted
    assert e["missed"] == {"type": 1, "boundary": 1, "none": 1}
    assert (e["n_gold"], e["n_pred"]) == (4, 3)


@pytest.mark.parametrize(
    "other, passes",
    [
        ({0: 52.0, 1: 52.0, 2: 53.0}, True),  # +1.33, 3 wins
        ({0: 55.0, 1: 49.0, 2: 49.0}, False),  # +1.0 mean but 1 win: one lucky seed
        ({0: 51.9, 1: 50.6, 2: 50.4}, False),  # wins 3 but +0.97
        ({0: 50.0, 1: 52.5, 2: 52.5}, True),  # exactly +1.0, 2 wins
    ],
)
def test_the_rule_needs_the_mean_gain_and_two_seed_wins(other, passes):
    base = {0: 51.0, 1: 50.0, 2: 50.0}
    assert recall.verdict(base, other)["passes"] is passes


def _line(name, seed, f1, split="dev"):
    system, lr, settings = recall.DIAGNOSTICS[name]
    errors = span_errors([[(0, 1, "PER")]], [[(0, 1, "PER")]])
    return {
        "system": system,
        "lr": lr,
        "settings": settings,
        "tag": recall.tag_of(name),
        "n_train": recall.protocol.N_TRAIN,
        "split": split,
        "seed": seed,
        "f1": f1,
        "p": f1,
        "r": f1,
        "train_words_per_s": 100.0,
        "errors": errors,
    }


def test_adoption_reads_dev_runs_of_each_diagnostics_own_tag(tmp_path):
    results = tmp_path / "runs.jsonl"
    lines = [_line("base", s, 50.0) for s in recall.SEEDS]
    lines += [_line("head_rate_x2", s, 52.0) for s in recall.SEEDS]
    lines += [_line("hidden_width_128", s, 53.0) for s in recall.SEEDS[:2]]  # one seed short
    # a test-split run and a run under another tag never count
    lines += [_line("maxout_pieces_3", s, 90.0, split="test") for s in recall.SEEDS]
    lines += [
        {**_line("batch_16", s, 90.0), "tag": "protocol33-pretrained-r5"} for s in recall.SEEDS
    ]
    results.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf8")
    rows = recall.summarize(results)
    assert [r["diagnostic"] for r in rows] == ["base", "head_rate_x2"]
    assert rows[1]["vs_base"] == {"gain": 2.0, "wins": 3, "passes": True}
    assert rows[1]["change"] == {"learn_rate_scale": 0.5}
    assert recall.adopted(rows) == "head_rate_x2"
    # without base on every seed there is no verdict
    results.write_text("".join(json.dumps(x) + "\n" for x in lines[1:]), encoding="utf8")
    with pytest.raises(KeyError, match="base"):
        recall.summarize(results)


def test_nothing_is_adopted_when_no_change_passes(tmp_path):
    results = tmp_path / "runs.jsonl"
    lines = [_line("base", s, 50.0) for s in recall.SEEDS]
    lines += [_line("hidden_width_256", s, f) for s, f in zip(recall.SEEDS, (53.0, 49.0, 49.5))]
    results.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf8")
    rows = recall.summarize(results)
    assert rows[1]["vs_base"]["passes"] is False
    assert recall.adopted(rows) is None
