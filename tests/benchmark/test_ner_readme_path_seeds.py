"""The README path's bad-seed study (issue 33): the pre-registered rules (spread over 12 dev
seeds, the fix candidates tried in order) and the previous round's figures it reads. No training."""

import json

import pytest

from benchmarks import ner_readme_path_seeds as seeds


def test_the_previous_rounds_dev_figures_are_read_for_seeds_0_to_5():
    got = seeds.previous_scores()
    assert sorted(got) == ["B", "R-fixed"]
    assert sorted(got["R-fixed"]) == [0, 1, 2, 3, 4, 5] == sorted(got["B"])
    assert got["R-fixed"][3] == 68.34 and got["B"][3] == 73.55
    assert seeds._mean(got["R-fixed"].values()) == 72.34
    assert seeds._mean(got["B"].values()) == 73.17


def test_one_bad_seed_in_twelve_is_not_a_systematic_gap_nor_more_bad_seeds():
    bench = [73.0 + 0.1 * k for k in range(12)]
    readme = [73.0 + 0.1 * k for k in range(11)] + [66.0]  # one bad draw
    v = seeds.spread_verdict(readme, bench)
    assert v["gap"] == pytest.approx(0.67, abs=0.01)
    assert v["gap"] < 2 * v["se"] and not v["trails"]
    assert v["bad_runs"] == {"readme": 1, "benchmark": 0}
    assert not v["more_bad_seeds"]


def test_a_path_with_several_bad_seeds_trails_and_has_more_bad_seeds():
    bench = [73.0, 73.5, 74.0] * 4
    readme = [73.0, 73.5, 74.0] * 2 + [66.0, 66.0, 73.0, 66.0, 66.0, 74.0]
    v = seeds.spread_verdict(readme, bench)
    assert v["trails"] and v["gap"] >= 2 * v["se"]
    assert v["bad_runs"]["readme"] == 4 and v["bad_runs"]["benchmark"] == 0
    assert v["more_bad_seeds"]


def test_a_candidate_passes_within_half_a_point_of_b_and_not_below_the_shipped_path():
    bench, shipped = [73.17] * 6, [72.34] * 6
    assert seeds.candidate_passes([72.67] * 6, bench, shipped)
    assert not seeds.candidate_passes([72.66] * 6, bench, shipped)  # 0.51 below B
    # within 0.5 of B but below the path it would replace
    assert not seeds.candidate_passes([72.80] * 6, [73.0] * 6, [72.9] * 6)


def _f1(**arms):
    return {name.replace("_", "-"): dict(enumerate(v)) for name, v in arms.items()}


def test_the_candidates_are_tried_in_order_and_the_first_that_passes_ships():
    base = dict(R_fixed=[72.34] * 6, B=[73.17] * 6)
    assert list(seeds.CANDIDATES) == ["R-clip", "R-clip-warm30", "R-clip500"]
    # the first passes: the second is never needed
    f1 = _f1(**base, R_clip=[73.0] * 6)
    assert seeds.first_passing(f1) == "R-clip" and seeds.decided(f1)
    # the first fails: the second decides
    f1 = _f1(**base, R_clip=[72.0] * 6)
    assert seeds.first_passing(f1) is None and not seeds.decided(f1)
    f1 = _f1(**base, R_clip=[72.0] * 6, R_clip_warm30=[74.0] * 6)
    assert seeds.first_passing(f1) == "R-clip-warm30"
    # the second passes but the first has not run every seed: the order is the rule
    f1 = _f1(**base, R_clip=[72.0] * 5, R_clip_warm30=[74.0] * 6)
    assert seeds.first_passing(f1) is None and not seeds.decided(f1)
    # both fail: the third decides
    f1 = _f1(**base, R_clip=[72.0] * 6, R_clip_warm30=[71.0] * 6)
    assert seeds.first_passing(f1) is None and not seeds.decided(f1)
    # every one fails: decided, nothing ships
    f1 = _f1(**base, R_clip=[72.0] * 6, R_clip_warm30=[71.0] * 6, R_clip500=[70.0] * 6)
    assert seeds.first_passing(f1) is None and seeds.decided(f1)


def test_the_spike_clip_must_also_lift_the_worst_seed():
    shipped = [72.96, 75.39, 69.12, 68.34, 74.81, 73.45]
    bench = [75.05, 74.66, 69.16, 73.55, 73.28, 73.32]
    good_mean_same_worst = [74.0, 75.0, 73.0, 68.34, 74.0, 74.0]
    assert seeds.candidate_passes(good_mean_same_worst, bench, shipped)
    assert not seeds.candidate_passes(good_mean_same_worst, bench, shipped, lifts_worst=True)
    lifted = [74.0, 75.0, 73.0, 68.5, 74.0, 74.0]
    assert seeds.candidate_passes(lifted, bench, shipped, lifts_worst=True)
    f1 = {
        "R-fixed": dict(enumerate(shipped)),
        "B": dict(enumerate(bench)),
        "R-clip": dict(enumerate([70.0] * 6)),
        "R-clip-warm30": dict(enumerate([70.0] * 6)),
        "R-clip500": dict(enumerate(good_mean_same_worst)),
    }
    assert seeds.first_passing(f1) is None and seeds.decided(f1)
    f1["R-clip500"] = dict(enumerate(lifted))
    assert seeds.first_passing(f1) == "R-clip500"


def test_the_candidates_add_the_encoders_global_clip_to_the_readme_path():
    clips = {}
    for arm in seeds.CANDIDATES.values():
        assert arm.path == "readme"
        flags = dict(zip(arm.overrides[::2], arm.overrides[1::2]))
        clips[arm.name] = flags["--components.transformer.model.grad_clip_norm"]
    assert clips == {"R-clip": "1.0", "R-clip-warm30": "1.0", "R-clip500": "500"}
    assert seeds.LIFTS_WORST == ("R-clip500",)
    warm = dict(zip(*[iter(seeds.CANDIDATES["R-clip-warm30"].overrides)] * 2))
    assert warm["--training.optimizer.learn_rate.warmup_steps"] == "180"


def test_the_result_file_lists_every_seed_the_rule_and_both_verdicts(tmp_path):
    every = list(range(12))
    f1 = {
        "R-fixed": {s: 72.0 + 0.1 * s for s in every},
        "B": {s: 73.0 + 0.1 * s for s in every},
        "R-clip": {s: 70.0 for s in seeds.FIX_SEEDS},
        "R-clip-warm30": {s: 71.0 for s in seeds.FIX_SEEDS},
    }
    budget = {"max_steps": 600, "batch_words": 400, "lr": 1e-3}
    out = tmp_path / "seeds.json"
    result = seeds.write(out, f1, [1.0, 2.0], budget, "python benchmarks/ner_readme_path_seeds.py")
    assert out.exists()
    rows = {r["arm"]: r for r in result["rows"]}
    assert list(rows) == ["R-fixed", "B", "R-clip", "R-clip-warm30"]
    assert rows["R-fixed"]["seed 11"] == 73.1 and rows["R-fixed"]["mean 0-11"] == 72.55
    assert "seed 6" not in rows["R-clip"] and rows["R-clip"]["mean 0-5"] == 70.0
    assert rows["R-clip"]["rule"].startswith("fails")
    assert result["verdict"]["fix"] == "none passes"
    assert result["verdict"]["spread"]["gap"] == 1.0
    # a steady 1-point gap (SE 0.15) is systematic, though no run is a bad run
    assert "trails systematically" in result["verdict"]["spread_conclusion"]
    assert "not more bad seeds" in result["verdict"]["spread_conclusion"]


def test_a_trajectory_sums_up_each_block_of_updates_and_the_evaluation_ending_it():
    # before_update of step N holds the norm of update N - 1 (none before the first)
    norms = [{"step": 0, "norm_before": None}] + [
        {"step": n, "norm_before": 1000.0 if n == 31 else 100.0 + n} for n in range(1, 41)
    ]
    evaluations = [
        {"step": 0, "losses": {"transformer": 5.0}, "score": 0.01},
        {"step": 20, "losses": {"transformer": 50.0}, "score": 0.2},
        {"step": 40, "losses": {"transformer": 900.0}, "score": 0.3},
    ]
    t = seeds.trajectory_summary(norms, evaluations, 68.34)
    first, second = t["blocks"]
    assert first == {
        "updates": "0-19",
        "max_norm": 120,
        "median_norm": 110,
        "transformer_loss": 50,
        "dev_f1": 20.0,
    }
    assert second["updates"] == "20-39" and second["max_norm"] == 1000  # update 30's spike
    assert second["transformer_loss"] == 900 and second["dev_f1"] == 30.0
    assert t["model_last_dev_f1"] == 68.34


def test_the_grad_norm_callback_writes_the_norm_of_the_previous_update(tmp_path):
    from benchmarks.train_grad_norms import grad_norms

    class _Shim:
        last_grad_norm = None

    class _Pipe:
        model = type("M", (), {"shims": [_Shim()]})()

    nlp = type("N", (), {"get_pipe": lambda self, name: _Pipe()})()
    path = tmp_path / "norms.jsonl"
    callback = grad_norms(str(path))
    callback(nlp, {"step": 0, "epoch": 0})
    _Shim.last_grad_norm = 12.5
    callback(nlp, {"step": 1, "epoch": 0})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"step": 0, "norm_before": None}, {"step": 1, "norm_before": 12.5}]
