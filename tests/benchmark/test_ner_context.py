"""The document-context comparison (issue 33): chosen on dev by the view that has neighbours,
reported on test against the sentence system, every run from the same checkpoint."""

import json

import pytest

from benchmarks import ner_context as ctx


def _run(lr, settings, f1_sent, f1_docs, split="dev", seed=0, system="ours"):
    return {
        "system": system,
        "lr": lr,
        "settings": dict(settings),
        "split": split,
        "seed": seed,
        "f1": f1_sent,
        "f1_by_doc_size": {"1": f1_sent, "10": f1_docs, "10sz": f1_docs - 1},
        "train_seconds": 1.0,
        "train_words_per_s": 100.0,
        "load_avg": [1.0, 1.0, 1.0],
    }


def _grid():
    runs = [_run(ctx.SENTENCES[1], ctx.SENTENCES[2], 52.0, 51.0)]
    for _, lr, settings in ctx.GRID:
        c = settings["sentence_context"]
        # the sentence view prefers context 32, the 10-sentence view (the one that chooses) 64;
        # context 0 scores highest of all but is the control, never the choice
        runs.append(_run(lr, settings, 60.0 - c / 10, 40.0 + c / 10 + (30 if c == 0 else 0)))
    return runs


def test_the_choice_is_the_best_context_point_on_the_view_with_neighbours():
    best = ctx.choose(_grid())
    assert best["settings"]["sentence_context"] == max(ctx.CONTEXTS)
    assert best["settings"]["sentence_windows"] is True


def test_no_choice_before_the_grid_is_complete_and_none_from_test_runs():
    runs = _grid()
    with pytest.raises(KeyError, match="dev grid"):
        ctx.choose(runs[:-1])
    # a test run never chooses, whatever its score
    test_only = [dict(r, split="test") for r in runs]
    with pytest.raises(KeyError):
        ctx.choose(test_only)


def test_seed_runs_cover_the_choice_and_the_sentence_system():
    runs = _grid()
    dev = ctx.seed_runs(runs, "dev")
    test = ctx.seed_runs(runs, "test")
    assert {r[4] for r in dev} == {1, 2} and {r[4] for r in test} == {0, 1, 2}
    assert {r[3] for r in test} == {"test"}
    assert {(r[0], r[1]) for r in test} == {("ours", ctx.choose(runs)["lr"]), ctx.SENTENCES[:2]}
    grid_points = {(s, lr, str(sorted(st.items()))) for s, lr, st, _, _ in ctx.grid_runs()}
    assert len(grid_points) == len(ctx.GRID) + 1  # the sentence system runs on dev too


def test_write_reports_test_figures_with_the_split_that_chose(tmp_path, monkeypatch):
    import json

    runs = _grid()
    best = ctx.choose(runs)
    for seed in (0, 1, 2):
        runs.append(_run(best["lr"], best["settings"], 50.0, 58.0 + seed, "test", seed))
        runs.append(_run(ctx.SENTENCES[1], ctx.SENTENCES[2], 56.0 + seed, 55.0, "test", seed))
    results = tmp_path / "runs.jsonl"
    results.write_text(
        "".join(json.dumps(dict(r, tag=ctx.TAG, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs)
    )
    out = ctx.write(results, tmp_path / "ner_context.json", None)
    dev = json.loads((tmp_path / "ner_context_dev.json").read_text())
    assert len(dev["rows"]) == len(ctx.GRID) and "test" not in " ".join(dev["columns"])
    assert out["summary"][0]["figure"] == "59.00 vs 57.00 (+2.00)"
    assert "dev" in out["protocol"]["chooses"] and "valid" in out["protocol"]["reports"]
    assert out["chosen"]["sentence_context"] == best["settings"]["sentence_context"]


def test_a_training_sentence_reads_only_its_own_blocks_neighbours():
    from benchmarks.ner_study import block_context

    texts = [f"s{i} ." for i in range(25)]
    assert block_context(texts, 0, 10) == ("", " ".join(texts[1:10]))
    assert block_context(texts, 13, 10) == ("s10 . s11 . s12 .", " ".join(texts[14:20]))
    assert block_context(texts, 19, 10) == (" ".join(texts[10:19]), "")
    assert block_context(texts, 24, 10) == (" ".join(texts[20:24]), "")  # a short last block


def _dropout_grid(scores):
    """The dropout study (with a second grid point, context 32) and its dev runs: for each grid
    point its 10-sentence F1 per seed."""
    import dataclasses

    study = ctx.STUDIES["dropout"]
    (system, lr, settings), *_ = study.grid
    study = dataclasses.replace(
        study, grid=[(system, lr, settings), (system, lr, {**settings, "sentence_context": 32})]
    )
    runs = [
        _run(ctx.SENTENCES[1], ctx.SENTENCES[2], 52.0, 51.0, seed=seed) for seed in ctx.proto.SEEDS
    ]
    for (_, lr, settings), per_seed in zip(study.grid, scores):
        runs += [_run(lr, settings, 50.0, f1, seed=seed) for seed, f1 in enumerate(per_seed)]
    return study, runs


def test_the_dropout_study_chooses_by_the_mean_of_three_dev_seeds():
    # the first point wins seed 0 but loses the 3-seed mean
    study, runs = _dropout_grid([(60.0, 40.0, 40.0), (50.0, 50.0, 50.0)])
    best = ctx.choose(runs, study)
    assert best["settings"] == study.grid[1][2] and best["choice_f1"] == 50.0
    assert ctx.STUDIES["dropout"].grid[0][2]["sentence_context_dropout"] > 0
    with pytest.raises(KeyError, match="dev grid"):
        ctx.choose(runs[:-1], study)
    # every point and the sentence system run on each choosing seed; no extra dev seeds after
    assert len(ctx.grid_runs(study)) == (len(study.grid) + 1) * len(ctx.proto.SEEDS)
    assert ctx.seed_runs(runs, "dev", study) == []
    test = ctx.seed_runs(runs, "test", study)
    assert {(r[2].get("sentence_context_dropout"), r[4]) for r in test} == {
        (d, s) for d in (None, best["settings"]["sentence_context_dropout"]) for s in (0, 1, 2)
    }


def test_the_dropout_study_writes_its_own_files_and_claim(tmp_path):
    import json

    study, runs = _dropout_grid([(60.0, 40.0, 40.0), (50.0, 50.0, 50.0)])
    best = ctx.choose(runs, study)
    for seed in (0, 1, 2):
        runs.append(_run(best["lr"], best["settings"], 50.0, 54.0, "test", seed))
        runs.append(_run(ctx.SENTENCES[1], ctx.SENTENCES[2], 55.0, 55.0, "test", seed))
    results = tmp_path / "runs.jsonl"
    results.write_text(
        "".join(json.dumps(dict(r, tag=study.tag, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs)
    )
    out = ctx.write(results, tmp_path / "ner_context_dropout.json", None, study)
    dev = json.loads((tmp_path / "ner_context_dropout_dev.json").read_text())
    assert len(dev["rows"]) == len(study.grid) * 3 and dev["protocol"]["seeds"] == 3
    assert out["summary"][0]["figure"] == "54.00 vs 55.00 (-1.00)"
    assert "context dropout" in out["summary"][0]["claim"]
    assert "seed 0 -1.00, seed 1 -1.00, seed 2 -1.00" in out["summary"][0]["caveat"]
    assert "mean of seeds 0, 1, 2" in out["protocol"]["chooses"]
    assert out["protocol"]["tag"] == study.tag != ctx.TAG
    # what users call nlp() on: paragraphs without sentence starts, both systems as shipped
    shipped = out["summary"][1]
    assert "shipped path" in shipped["claim"] and shipped["figure"] == "53.00 vs 54.00 (-1.00)"
    assert shipped["caveat"] == (
        "per seed (context - sentences): seed 0 -1.00, seed 1 -1.00, seed 2 -1.00; dev, the "
        "same: seed 0 -1.00, seed 1 -1.00, seed 2 -1.00"
    )


def test_a_longer_pretraining_continues_the_protocol_checkpoint_into_its_own(tmp_path, monkeypatch):
    """ensure_pretrained_longer resumes the protocol's checkpoint (never writes into it), resumes
    its own directory after an interruption, and is made once."""
    import json

    from benchmarks import ner_protocol as proto
    from spacy_modernbert.pretrain import loop

    first = tmp_path / "modernbert-small-pretrained-33"
    first.mkdir()
    record = {"base": "modernbert-small-random", "steps": 400, "held_out_mlm_loss": []}
    monkeypatch.setattr(proto, "ensure_pretrained", lambda cache, data, log=print: (first, record))
    monkeypatch.setattr(proto, "pretrain_texts", lambda data_dir: ["a b c ."])
    calls = []

    def fake_pretrain(base, texts, out, *, steps, resume, force, **kw):
        calls.append((resume, steps, force))
        out.mkdir(exist_ok=True)
        return {"held_out": [{"step": 400, "loss": 7.0}, {"step": steps, "loss": 6.0}]}

    monkeypatch.setattr(loop, "pretrain", fake_pretrain)
    out, longer = proto.ensure_pretrained_longer(tmp_path, tmp_path, 1200, log=lambda m: None)
    assert out == tmp_path / "modernbert-small-pretrained-33-1200" != first
    assert calls == [(first, 1200, True)]
    assert longer["steps"] == 1200 and "step 400" in longer["continued_from"]
    assert json.loads((out / "protocol_pretrain.json").read_text())["steps"] == 1200
    # made once
    proto.ensure_pretrained_longer(tmp_path, tmp_path, 1200, log=lambda m: None)
    assert len(calls) == 1
    # an interrupted run (its state saved, no marker) resumes from its own directory
    other = tmp_path / "modernbert-small-pretrained-33-2000"
    other.mkdir()
    (other / "pretrain_state.json").write_text("{}")
    proto.ensure_pretrained_longer(tmp_path, tmp_path, 2000, log=lambda m: None)
    assert calls[-1] == (other, 2000, False)


def test_a_rerun_under_another_tag_records_it_in_its_command():
    study = ctx.STUDIES["dropout"]
    assert ctx.retagged(study, None) is study and ctx.retagged(study, study.tag) is study
    rerun = ctx.retagged(study, "protocol33-context-dropout-r2")
    assert rerun.tag == "protocol33-context-dropout-r2" and rerun.grid == study.grid
    parts = rerun.command.split(" && ")
    assert len(parts) == 3 and all(
        p.endswith(" --tag protocol33-context-dropout-r2") for p in parts
    )


def test_the_dropout_rerun_runs_round_fives_choice_and_the_sentences_only():
    study = ctx.STUDIES["dropout-r2"]
    assert [settings for _, _, settings in study.grid] == [
        {**ctx.FLERT, "sentence_context": 32, "sentence_context_dropout": 0.5}
    ]
    assert study.tag != ctx.STUDIES["dropout"].tag and study.choose_seeds == (0, 1, 2)
    runs = ctx.grid_runs(study)
    assert len(runs) == 6 and {r[3] for r in runs} == {"dev"}


def test_the_clip_study_gives_both_systems_the_protocols_global_clip():
    study = ctx.STUDIES["dropout-clip"]
    ((_, _, settings),) = study.grid
    assert settings["grad_clip_norm"] == study.sentences[2]["grad_clip_norm"] == 1.0
    assert settings["sentence_context"] == 32 and settings["sentence_context_dropout"] == 0.5
    runs = ctx.grid_runs(study)
    assert {r[2].get("grad_clip_norm") for r in runs} == {1.0} and len(runs) == 6


def test_a_reruns_dev_table_pairs_each_seed_with_the_sentence_system():
    study = ctx.STUDIES["dropout-r2"]
    ((system, lr, settings),) = study.grid
    runs = [_run(lr, settings, 50.0, 49.0 + s, seed=s) for s in (0, 1, 2)]
    runs += [_run(ctx.SENTENCES[1], ctx.SENTENCES[2], 48.0, 47.0, seed=s) for s in (0, 1, 2)]
    table = ctx.summarize(runs, study)["dev_grid"]
    assert [(r["seed"], r["sentence_context"]) for r in table] == [
        (s, c) for s in (0, 1, 2) for c in (0, 32)
    ]
    assert [r["dev F1, shipped"] for r in table] == [46.0, 48.0, 46.0, 49.0, 46.0, 50.0]


def test_a_reruns_claims_name_it_and_its_recipe(tmp_path):
    import json

    study = ctx.STUDIES["dropout-clip"]
    ((system, lr, settings),) = study.grid
    runs = []
    for split in ("dev", "test"):
        for s in (0, 1, 2):
            runs.append(_run(lr, settings, 50.0, 49.0, split, s))
            runs.append(_run(study.sentences[1], study.sentences[2], 52.0, 51.0, split, s))
    results = tmp_path / "runs.jsonl"
    results.write_text(
        "".join(json.dumps(dict(r, tag=study.tag, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs)
    )
    out = ctx.write(results, tmp_path / "x.json", None, study)
    assert [
        c["claim"].startswith("pretrained checkpoint, rerun on newer code (dropout-clip)")
        for c in out["summary"]
    ] == [True, True]
    assert "global clip 1" in out["summary"][0]["baseline"]
    assert out["protocol"]["chooses"].startswith("nothing: a rerun")


def _clip_warmup_runs(ctx_shipped, sent_shipped, results=None, name="clip-warmup"):
    """A rule study's dev runs: its grid at seed 0 (the 64-piece, highest-rate, no-dropout
    point best on the shipped view, the others best on gold starts), the choice's seeds 1-2,
    and the sentence system's seeds 0-2 under the protocol's tag with another of its points."""
    study = ctx.STUDIES[name]
    best = max(
        study.grid,
        key=lambda p: (p[2]["sentence_context"], p[1], -p[2]["sentence_context_dropout"]),
    )
    runs = []
    for system, lr, settings in study.grid:
        if (system, lr, settings) == best:
            continue
        run = _run(lr, settings, 50.0, 45.0)  # gold starts 45 (> 40), shipped 44
        runs.append(dict(run, tag=study.tag))
    for seed, f1 in enumerate(ctx_shipped):
        run = _run(best[1], best[2], 50.0, 40.0, seed=seed)
        run["f1_by_doc_size"]["10sz"] = f1
        runs.append(dict(run, tag=study.tag))
    for seed, f1 in enumerate(sent_shipped):
        run = _run(study.sentences[1], study.sentences[2], 52.0, 51.0, seed=seed)
        run["f1_by_doc_size"]["10sz"] = f1
        runs.append(dict(run, tag=study.sentences_tag))
        # another point of the protocol run (warmup 0.1) is not the sentence system
        other = _run(
            2e-3, {"docs_of": 1, "epochs": 2, "grad_clip_norm": 1.0}, 70.0, 70.0, seed=seed
        )
        runs.append(dict(other, tag=study.sentences_tag))
        # the protocol's test run of the sentence system
        test = _run(study.sentences[1], study.sentences[2], 57.0, 56.0, "test", seed)
        runs.append(dict(test, tag=study.sentences_tag))
    if results is not None:
        results.write_text(
            "".join(json.dumps(dict(r, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs)
        )
    return study, best, runs


def test_the_clip_warmup_study_tunes_context_at_the_sentence_systems_settings():
    study = ctx.STUDIES["clip-warmup"]
    assert study.sentences[2] == {"docs_of": 1, "epochs": 2, "warmup": 0.3, "grad_clip_norm": 1.0}
    assert study.sentences[1] == 2e-3 and study.sentences_tag == "protocol33-pretrained-r5"
    assert {
        (lr, s["sentence_context"], s["sentence_context_dropout"]) for _, lr, s in study.grid
    } == {(lr, c, p) for lr in (2e-3, 4e-3) for c in (32, 64) for p in (0.0, 0.5)}
    for _, _, settings in study.grid:
        assert settings["warmup"] == 0.3 and settings["grad_clip_norm"] == 1.0
        assert settings["context_block"] == 10 and settings["docs_of"] == 1
    # the grid runs on dev seed 0 only, and the sentence system is never rerun
    runs = ctx.grid_runs(study)
    assert len(runs) == 8 and {(r[3], r[4]) for r in runs} == {("dev", 0)}
    assert study.sentences not in [r[:3] for r in runs]


def test_the_clip_warmup_study_chooses_on_the_shipped_view_and_reads_r5s_sentence_runs(tmp_path):
    results = tmp_path / "runs.jsonl"
    study, best, _ = _clip_warmup_runs((56.0, 56.0, 50.0), (52.0, 53.0, 54.0), results)
    runs = ctx.study_runs(results, study)
    assert ctx.choose(runs, study)["settings"] == best[2]  # 56 shipped beats 44, not 45 gold
    sentences = [r for r in runs if r["tag"] == ctx.SENTENCES_TAG]
    assert sorted(r["split"] for r in sentences) == ["dev"] * 3 + ["test"] * 3
    assert all(r["settings"] == study.sentences[2] for r in sentences)
    # dev: the choice's seeds 1-2 only; test: the choice only (the sentence system's test runs
    # are the protocol's)
    assert [(r[1], r[4]) for r in ctx.seed_runs(runs, "dev", study)] == [(4e-3, 1), (4e-3, 2)]
    assert {(r[2]["sentence_context"], r[3]) for r in ctx.seed_runs(runs, "test", study)} == {
        (64, "test")
    }


@pytest.mark.parametrize(
    "ctx_shipped, sent_shipped, met",
    [
        ((54.0, 54.0, 54.0), (53.0, 53.0, 53.0), True),  # +1.0, 3 wins
        ((53.5, 53.5, 53.5), (53.0, 53.0, 53.0), True),  # +0.5 exactly, 3 wins
        ((53.4, 53.4, 53.4), (53.0, 53.0, 53.0), False),  # +0.4: under the margin
        ((60.0, 52.0, 52.0), (53.0, 53.0, 53.0), False),  # +1.67 on the mean, 1 win
        ((53.0, 53.0, 53.0), (53.0, 53.0, 53.0), False),  # level: no win
    ],
)
def test_the_adoption_rule_needs_the_margin_and_two_of_three_seeds(ctx_shipped, sent_shipped, met):
    study, _, runs = _clip_warmup_runs(ctx_shipped, sent_shipped)
    rule = ctx.adoption_rule(runs, study)
    assert rule["met"] is met
    assert rule["sentences mean"] == round(sum(sent_shipped) / 3, 2)
    assert rule["wins"] == sum(c > s for c, s in zip(ctx_shipped, sent_shipped))


RULE_STUDIES = pytest.mark.parametrize("name", ["clip-warmup", "batch16"])


@RULE_STUDIES
def test_the_adoption_rule_waits_for_every_dev_seed_and_gates_the_test_phase(
    tmp_path, monkeypatch, name
):
    results = tmp_path / "runs.jsonl"
    study, _, runs = _clip_warmup_runs((50.0, 51.0, 52.0), (52.0, 53.0, 54.0), results, name)
    with pytest.raises(KeyError, match="dev seeds"):
        ctx.adoption_rule(
            [r for r in runs if not (r["seed"] == 2 and r["tag"] == study.tag)], study
        )
    calls = []
    monkeypatch.setattr(ctx.proto, "ensure_pretrained", lambda cache, data: (tmp_path, None))
    monkeypatch.setattr(ctx.proto, "execute", lambda todo, *a, **k: calls.append(list(todo)))
    with pytest.raises(SystemExit, match="not met .-2.00 on dev.; no test run"):
        ctx.main(["test", "--study", name, "--results", str(results)])
    assert calls == []
    # when it holds, the test phase runs the choice's 3 seeds
    _clip_warmup_runs((55.0, 56.0, 57.0), (52.0, 53.0, 54.0), results, name)
    ctx.main(["test", "--study", name, "--results", str(results)])
    assert [(r[3], r[4]) for r in calls[0]] == [("test", 0), ("test", 1), ("test", 2)]
    assert all(r[2] in [p[2] for p in study.grid] for r in calls[0])


@RULE_STUDIES
def test_the_clip_warmup_dev_table_lists_every_seed_and_the_rule(tmp_path, name):
    results = tmp_path / "runs.jsonl"
    study, best, _ = _clip_warmup_runs((50.0, 51.0, 52.0), (52.0, 53.0, 54.0), results, name)
    out = ctx.write(results, tmp_path / "ner_context_clip_warmup.json", None, study)
    dev = json.loads((tmp_path / "ner_context_clip_warmup_dev.json").read_text())
    # 7 other grid points at seed 0, the choice at 3 seeds, the sentence system at 3 seeds
    assert len(dev["rows"]) == 7 + 3 + 3 and dev["protocol"]["seeds"] == 3
    assert [r["dev F1, shipped"] for r in dev["rows"] if r["sentence_context"] == 0] == [
        52.0,
        53.0,
        54.0,
    ]
    assert dev["adoption_rule"]["met"] is False and dev["adoption_rule"]["difference"] == -2.0
    assert out["adoption_rule"]["per seed"] == {0: -2.0, 1: -2.0, 2: -2.0}
    # no test run of the study: the protocol's test runs of the sentence system stay out
    assert out["summary"] == [] and out["protocol"]["reports"] == "dev only (no test run)"
    assert not any(k.startswith("test") for row in out["rows"] for k in row)
    assert "without sentence starts" in out["protocol"]["chooses"]
    assert " test " not in out["command"]


def test_the_batch16_study_is_the_clip_warmup_grid_at_sixteen_sentences_per_step():
    study, r5 = ctx.STUDIES["batch16"], ctx.STUDIES["clip-warmup"]
    # the sentence system is round 6's batch-16 choice, read from its tag
    assert study.sentences == ("ours", 2e-3, {**r5.sentences[2], "batch_size": 16})
    assert study.sentences_tag == "protocol33-pretrained-r6" and study.rule
    assert study.choose_view == "10sz" and study.choose_seeds == (0,)
    assert {
        (lr, s["sentence_context"], s["sentence_context_dropout"]) for _, lr, s in study.grid
    } == {(lr, c, p) for lr in (1e-3, 2e-3) for c in (32, 64) for p in (0.0, 0.5)}
    # every point is a clip-warmup point but for the rate grid and the batch
    r5_points = [s for _, _, s in r5.grid]
    for _, _, settings in study.grid:
        assert settings["batch_size"] == 16
        assert {k: v for k, v in settings.items() if k != "batch_size"} in r5_points
    runs = ctx.grid_runs(study)
    assert len(runs) == 8 and study.sentences not in [r[:3] for r in runs]
    assert study.tag not in (r5.tag, study.sentences_tag)


def test_the_batch16_sentence_runs_are_round_sixs_recorded_runs():
    """The committed runs file holds round 6's batch-16 sentence system on dev and test seeds
    0-2: the study reads them (its batch-32 points and HF's are not the sentence system)."""
    results = ctx.proto.RESULTS
    if not results.exists():
        pytest.skip("no recorded runs")
    study = ctx.STUDIES["batch16"]
    runs = [r for r in ctx.study_runs(results, study) if r["tag"] == study.sentences_tag]
    assert sorted((r["split"], r["seed"]) for r in runs) == [
        (split, seed) for split in ("dev", "test") for seed in (0, 1, 2)
    ]
    assert all(r["settings"]["batch_size"] == 16 and r["lr"] == 2e-3 for r in runs)
    dev = {r["seed"]: r["f1_by_doc_size"]["10sz"] for r in runs if r["split"] == "dev"}
    assert dev == {0: 53.55, 1: 55.88, 2: 53.72}


def test_the_batch16_test_claim_names_the_sentence_systems_batch(tmp_path):
    results = tmp_path / "runs.jsonl"
    study, best, runs = _clip_warmup_runs((55.0, 56.0, 57.0), (52.0, 53.0, 54.0), None, "batch16")
    assert ctx.adoption_rule(runs, study)["met"]
    runs += [
        dict(_run(best[1], best[2], 56.0, 58.0 + seed, "test", seed), tag=study.tag)
        for seed in (0, 1, 2)
    ]
    results.write_text("".join(json.dumps(dict(r, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs))
    out = ctx.write(results, tmp_path / "ner_context_batch16.json", None, study)
    # context on 10-sentence docs (58-60) vs the protocol's sentence runs on sentences (57)
    assert out["summary"][0]["figure"] == "59.00 vs 57.00 (+2.00)"
    assert (
        "rate 0.002, warmup 0.3, global clip 1, 16 sentences per step"
        in (out["summary"][0]["baseline"])
    )
    assert "about 16 sentences per step" in out["protocol"]["budget"]
    assert out["protocol"]["reports"].startswith("test")


def test_the_seeds_diagnostic_runs_the_choice_and_sentences_on_more_dev_seeds_only(
    tmp_path, monkeypatch
):
    results = tmp_path / "runs.jsonl"
    study, best, runs = _clip_warmup_runs((55.0, 56.0, 57.0), (52.0, 53.0, 54.0), None, "batch16")
    todo = ctx.more_seed_runs(runs, study)
    assert {r[3] for r in todo} == {"dev"} and sorted({r[4] for r in todo}) == [3, 4, 5]
    assert [r[:3] for r in todo] == [best] * 3 + [study.sentences] * 3
    # the more seeds' runs (tag + SEEDS_SUFFIX): context behind by 1 on each
    seeds_tag = study.tag + ctx.SEEDS_SUFFIX
    more = []
    for _, lr, settings, _, seed in todo:
        shipped = 52.0 if settings == best[2] else 53.0
        run = _run(lr, settings, 60.0, 40.0, seed=seed)
        run["f1_by_doc_size"]["10sz"] = shipped
        more.append(dict(run, tag=seeds_tag))
    results.write_text(
        "".join(json.dumps(dict(r, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs + more)
    )
    calls = []
    monkeypatch.setattr(ctx.proto, "ensure_pretrained", lambda cache, data: (tmp_path, None))
    monkeypatch.setattr(ctx.proto, "execute", lambda todo, *a, **k: calls.append((todo, a)))
    out = tmp_path / "seeds.json"
    monkeypatch.setattr(ctx, "write_seeds", lambda *a: calls.append(("write", a)))
    ctx.main(["seeds", "--study", "batch16", "--results", str(results)])
    assert calls[0][1][-1] == seeds_tag and calls[0][0] == todo and calls[1][0] == "write"
    monkeypatch.undo()
    result = ctx.write_seeds(results, study, None, out)
    rows = {row["seed"]: row for row in result["rows"]}
    assert [k for k in rows if isinstance(k, int)] == [0, 1, 2, 3, 4, 5]
    assert rows["mean of the rule's seeds (3)"]["context - sentences, shipped"] == 3.0
    # (3 + 3 + 3 - 1 - 1 - 1) / 6
    assert rows["mean of all seeds (6)"]["context - sentences, shipped"] == 1.0
    assert rows["mean of all seeds (6)"]["wins"] == 3
    assert "test" not in json.dumps(result["rows"]) and json.loads(out.read_text())["rows"]


def _memory_runs(m10, s1, results=None, tested=False):
    """The memory study's dev runs: S at seeds 0-2 (sentences `s1`), W at every rate (50 on
    10-sentence docs), M at 2e-3 with `m10` on 10-sentence docs, M's other rates 60 on seed 0
    but 40 on seeds 1-2 (the choice is the 3-seed mean, not seed 0)."""
    study = ctx.STUDIES["memory"]
    runs = []
    for seed in proto_seeds():
        runs.append(_run(study.sentences[1], study.sentences[2], s1[seed], 70.0, seed=seed))
        for _, lr, settings in study.grid:
            if not settings.get("doc_memory"):
                f1 = 50.0 + (lr == 4e-3)  # W's best: 4e-3
            elif lr == 2e-3:
                f1 = m10[seed]
            else:
                f1 = 60.0 if seed == 0 else 40.0
            runs.append(_run(lr, settings, 45.0, f1, seed=seed))
    if tested:
        best = [p for p in study.grid if p[2].get("doc_memory") and p[1] == 2e-3][0]
        for seed in proto_seeds():
            runs.append(_run(best[1], best[2], 50.0, 58.0 + seed, "test", seed))
            runs.append(_run(study.sentences[1], study.sentences[2], 56.0, 70.0, "test", seed))
    return _tagged(study, runs, results)


def _tagged(study, runs, results=None):
    """`runs` under the study's tag, written to `results` when given."""
    runs = [dict(r, tag=study.tag) for r in runs]
    if results is not None:
        results.write_text(
            "".join(json.dumps(dict(r, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs)
        )
    return study, runs


def _refused_test_phase(monkeypatch, tmp_path, results, study, difference):
    """`main test` for `study` with its dev rule unmet: it exits naming the dev difference and
    runs nothing; returns the list that records what later `execute` calls are given."""
    calls = []
    monkeypatch.setattr(ctx.proto, "ensure_pretrained", lambda cache, data: (tmp_path, None))
    monkeypatch.setattr(ctx.proto, "execute", lambda todo, *a, **k: calls.append(list(todo)))
    with pytest.raises(SystemExit, match=f"not met {difference} on dev.; no test run"):
        ctx.main(["test", "--study", study, "--results", str(results)])
    assert calls == []
    return calls


def proto_seeds():
    return ctx.proto.SEEDS


def test_the_memory_study_is_windows_with_and_without_memory_at_the_batch16_settings():
    study = ctx.STUDIES["memory"]
    assert study.sentences == ctx.SENTENCES_R6 and study.sentences_tag is None
    assert study.rule_views == ("10", "1") and study.choose_view == "10"
    windows = [p for p in study.grid if not p[2].get("doc_memory")]
    memory = [p for p in study.grid if p[2].get("doc_memory")]
    assert [p[1] for p in windows] == [p[1] for p in memory] == [1e-3, 2e-3, 4e-3]
    for (_, _, w), (_, _, m) in zip(windows, memory):
        assert m == {**w, "doc_memory": True}
        assert w == {
            "docs_of": 10,
            "epochs": 2,
            "sentence_windows": True,
            "warmup": 0.3,
            "grad_clip_norm": 1.0,
            "batch_size": 16,
        }
    # every arm at dev seeds 0-2, the sentence system rerun beside them; nothing more on dev
    runs = ctx.grid_runs(study)
    assert len(runs) == 3 * 7 and {r[3] for r in runs} == {"dev"}
    assert sum(r[:3] == study.sentences for r in runs) == 3


def test_the_memory_study_chooses_each_arms_rate_by_the_three_seed_mean():
    study, runs = _memory_runs((55.0, 55.0, 55.0), (50.0, 50.0, 50.0))
    best = ctx.choose(runs, study)
    assert best["settings"].get("doc_memory") and best["lr"] == 2e-3  # 55 > (60+40+40)/3
    control = ctx.choose(runs, study, control=True)
    assert not control["settings"].get("doc_memory") and control["lr"] == 4e-3
    assert ctx.seed_runs(runs, "dev", study) == []
    test = ctx.seed_runs(runs, "test", study)
    assert {(r[1], bool(r[2].get("doc_memory")), r[3]) for r in test} == {
        (2e-3, True, "test"),
        (2e-3, False, "test"),
    }
    assert sorted(r[4] for r in test) == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    "m10, s1, met",
    [
        ((51.0, 51.0, 51.0), (50.0, 50.0, 50.0), True),
        ((50.5, 50.5, 50.5), (50.0, 50.0, 50.0), True),  # +0.5 exactly
        ((50.4, 50.4, 50.4), (50.0, 50.0, 50.0), False),  # under the margin
        ((56.0, 49.0, 49.0), (50.0, 50.0, 50.0), False),  # +1.33, 1 win
    ],
)
def test_the_memory_rule_reads_memory_on_documents_against_sentences_on_sentences(m10, s1, met):
    study, runs = _memory_runs(m10, s1)
    rule = ctx.adoption_rule(runs, study)
    assert rule["met"] is met
    # S's 10-sentence view (70) and M's sentence view (45) are not the rule's
    assert rule["sentences mean"] == round(sum(s1) / 3, 2)
    assert rule["context mean"] == round(sum(m10) / 3, 2)
    assert "(10)" in rule["rule"] and "(1)" in rule["rule"]


def test_the_memory_test_phase_is_gated_and_its_files_list_every_arm(tmp_path, monkeypatch):
    results = tmp_path / "runs.jsonl"
    study, _ = _memory_runs((50.0, 51.0, 49.0), (50.0, 50.0, 50.0), results)
    _refused_test_phase(monkeypatch, tmp_path, results, "memory", ".\\+0.00")
    out = ctx.write(results, tmp_path / "ner_context_memory.json", None, study)
    dev = json.loads((tmp_path / "ner_context_memory_dev.json").read_text())
    # 7 points x 3 seeds, plus each point's mean row
    assert len(dev["rows"]) == 7 * 4 and dev["adoption_rule"]["met"] is False
    assert dev["columns"][:4] == ["arm", "sentences per training doc", "lr", "seed"]
    means = {
        (r["arm"][0], r["lr"]): r["dev F1, 10-sentence docs"]
        for r in dev["rows"]
        if str(r["seed"]).startswith("mean")
    }
    assert means[("M", 2e-3)] == 50.0 and means[("W", 4e-3)] == 51.0
    assert means[("S", 2e-3)] is None  # S's runs here carry no "10sw" view
    assert out["summary"] == [] and [r["system"][0] for r in out["rows"]] == ["M", "S", "W"]
    assert not (tmp_path / "ner_context_memory.json").exists()  # dev file only
    # when the rule holds: the test phase runs M at its rate and S, and the claim is M on
    # 10-sentence docs vs S on sentences
    study, _ = _memory_runs((52.0, 51.0, 53.0), (50.0, 50.0, 50.0), results, tested=True)
    out = ctx.write(results, tmp_path / "ner_context_memory.json", None, study)
    assert out["summary"][0]["figure"] == "59.00 vs 56.00 (+3.00)"
    assert (tmp_path / "ner_context_memory.json").exists()
    assert "document memory" in out["summary"][0]["claim"]
    assert "20 sentences" in out["protocol"]["budget"]


def test_the_memory_seeds_diagnostic_runs_every_arm_and_reads_memory_against_its_control(
    tmp_path,
):
    results = tmp_path / "runs.jsonl"
    study, runs = _memory_runs((52.0, 51.0, 53.0), (50.0, 50.0, 50.0))
    todo = ctx.more_seed_runs(runs, study)
    assert {r[3] for r in todo} == {"dev"} and sorted({r[4] for r in todo}) == [3, 4, 5]
    windows = [p for p in study.grid if not p[2].get("doc_memory") and p[1] == 4e-3][0]
    memory = [p for p in study.grid if p[2].get("doc_memory") and p[1] == 2e-3][0]
    assert [r[:3] for r in todo] == [memory] * 3 + [study.sentences] * 3 + [windows] * 3
    # seeds 3-5: M 50 on 10-sentence docs, W 51, S 50 on sentences
    more = [
        dict(
            _run(lr, settings, 50.0, 50.0 + (settings == windows[2]), seed=seed),
            tag=study.tag + ctx.SEEDS_SUFFIX,
        )
        for _, lr, settings, _, seed in todo
    ]
    results.write_text(
        "".join(json.dumps(dict(r, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs + more)
    )
    result = ctx.write_seeds(results, study, None, tmp_path / "seeds.json")
    assert result["columns"] == [
        "seed",
        "M, 10-sentence docs",
        "W, 10-sentence docs",
        "M - W, 10-sentence docs",
        "S, sentences",
        "M - S, the rule's views",
        "M, sentences",
        "wins",
    ]
    rows = {row["seed"]: row for row in result["rows"]}
    # M - W: +1, 0, +2 on the rule's seeds (W at 4e-3 scores 51), -1 on seeds 3-5
    assert rows["mean of the rule's seeds (3)"]["M - W, 10-sentence docs"] == 1.0
    assert rows["mean of all seeds (6)"]["M - W, 10-sentence docs"] == 0.0
    assert rows["mean of all seeds (6)"]["wins"] == 2
    assert rows["mean of all seeds (6)"]["M - S, the rule's views"] == 1.0
    assert "its control" in result["protocol"]["chooses"]


def test_the_memory_r2_study_trains_the_memory_on_sentences_or_five_sentence_docs(tmp_path):
    study = ctx.STUDIES["memory-r2"]
    assert study.sentences == ctx.SENTENCES_R6 and study.sentences_tag is None
    assert study.rule_views == ("10", "1") and not study.arm_names[1]
    one, five = study.grid
    # M1 is the sentence system's recipe with the memory (windows change nothing for 1-sentence
    # training docs); M5 the same on 5-sentence docs
    assert one[:2] == five[:2] == ("ours", 2e-3)
    assert one[2] == {**study.sentences[2], "sentence_windows": True, "doc_memory": True}
    assert five[2] == {**one[2], "docs_of": 5}
    runs = ctx.grid_runs(study)
    assert len(runs) == 9 and sum(r[:3] == study.sentences for r in runs) == 3
    # M5 better on 10-sentence docs over 3 seeds (M1 wins seed 0 only): the choice
    dev = []
    for seed in ctx.proto.SEEDS:
        dev.append(_run(2e-3, study.sentences[2], 54.0, 60.0, seed=seed))
        dev.append(_run(2e-3, one[2], 50.0, 56.0 if seed == 0 else 50.0, seed=seed))
        dev.append(_run(2e-3, five[2], 50.0, 55.0, seed=seed))
    results = tmp_path / "runs.jsonl"
    results.write_text(
        "".join(json.dumps(dict(r, tag=study.tag, n_train=ctx.proto.N_TRAIN)) + "\n" for r in dev)
    )
    assert ctx.choose(dev, study)["settings"]["docs_of"] == 5
    rule = ctx.adoption_rule(dev, study)
    assert rule["difference"] == 1.0 and rule["wins"] == 3 and rule["met"] is True
    out = ctx.write(results, tmp_path / "ner_context_memory_r2.json", None, study)
    table = json.loads((tmp_path / "ner_context_memory_r2_dev.json").read_text())["rows"]
    assert {(r["arm"][0], r["sentences per training doc"]) for r in table} == {
        ("S", 1),
        ("M", 1),
        ("M", 5),
    }
    assert [r["system"][0] for r in out["rows"]] == ["M", "S"]  # no control arm
    assert "5-sentence training docs: 3 docs, 15 sentences" in out["protocol"]["budget"]
    # its seeds diagnostic: the choice and S only, on the rule's views and the shipped path
    todo = ctx.more_seed_runs(dev, study)
    assert [r[:3] for r in todo] == [five] * 3 + [study.sentences] * 3
    more = [dict(_run(lr, st, 50.0, 50.0, seed=k), tag=study.tag) for _, lr, st, _, k in todo]
    diagnostic = ctx.seeds_diagnostic(dev + more, study)
    assert diagnostic["columns"] == [
        "seed",
        "M, 10-sentence docs",
        "S, sentences",
        "M - S, the rule's views",
        "M, sentences",
        "M, shipped",
        "S, shipped",
        "M - S, shipped",
        "wins",
    ]
    rows = {row["seed"]: row for row in diagnostic["rows"]}
    assert rows["mean of all seeds (6)"]["M - S, the rule's views"] == 0.5  # (1+1+1+0+0+0)/6
    assert rows["mean of all seeds (6)"]["wins"] == 3
    results.write_text(
        "".join(json.dumps(dict(r, tag=study.tag, n_train=ctx.proto.N_TRAIN)) + "\n" for r in dev)
        + "".join(
            json.dumps(dict(r, tag=study.tag + ctx.SEEDS_SUFFIX, n_train=ctx.proto.N_TRAIN)) + "\n"
            for r in more
        )
    )
    result = ctx.write_seeds(results, study, None, tmp_path / "seeds.json")
    assert "its control" not in result["protocol"]["chooses"]  # memory-r2 has none
    assert result["rows"][-1]["wins"] == 3


def _memory_r3_runs(m10, s1, results=None, tested=False):
    """memory-r3's dev runs: S at seeds 0-5 (sentences `s1`), the W recipes at seeds 0-2 (W-b1
    best by its 3-seed mean on 10-sentence docs, W-nocut best on seed 0 alone), M = W-b1 + the
    memory at seeds 0-5 (`m10` on 10-sentence docs)."""
    study = ctx.STUDIES["memory-r3"]
    plain, one_doc, no_cut, both = study.grid
    runs = []
    for seed in study.rule_seeds:
        runs.append(_run(2e-3, study.sentences[2], s1[seed], 70.0, seed=seed))
        runs.append(_run(2e-3, {**one_doc[2], "doc_memory": True}, 45.0, m10[seed], seed=seed))
    for seed in study.choose_seeds:
        runs.append(_run(2e-3, plain[2], 45.0, 50.0, seed=seed))
        runs.append(_run(2e-3, one_doc[2], 45.0, 53.0, seed=seed))
        runs.append(_run(2e-3, no_cut[2], 45.0, 60.0 if seed == 0 else 45.0, seed=seed))
        runs.append(_run(2e-3, both[2], 45.0, 52.0, seed=seed))
    if tested:
        for seed in ctx.proto.SEEDS:
            runs.append(_run(2e-3, {**one_doc[2], "doc_memory": True}, 50.0, 58.0, "test", seed))
            runs.append(_run(2e-3, study.sentences[2], 56.0, 70.0, "test", seed))
    return _tagged(study, runs, results)


def test_the_memory_r3_grid_is_w_at_one_or_two_docs_per_step_with_and_without_the_oracle_cut():
    study = ctx.STUDIES["memory-r3"]
    assert study.sentences == ctx.SENTENCES_R6 and study.rule_views == ("10", "1")
    assert study.rule_seeds == (0, 1, 2, 3, 4, 5) and study.rule_wins == 4
    assert dict(study.adds) == {"doc_memory": True}
    plain, one_doc, no_cut, both = study.grid
    w = [p for p in ctx.MEMORY_GRID if p[1] == 2e-3 and not p[2].get("doc_memory")][0]
    assert plain == w  # the memory study's W at its chosen rate
    assert one_doc[2] == {**w[2], "batch_size": 10} and no_cut[2] == {**w[2], "oracle_cut": 1000}
    assert both[2] == {**w[2], "batch_size": 10, "oracle_cut": 1000}
    assert not any(p[2].get("doc_memory") for p in study.grid)
    # ours_ner: round(batch_size / docs_of) docs per step -> 2 for W, 1 for W-b1
    assert [ctx._docs_per_step(p[2]) for p in study.grid] == [2, 1, 2, 1]
    # step 1: S and the 4 W recipes at dev seeds 0-2, nothing else
    runs = ctx.grid_runs(study)
    assert len(runs) == 3 * 5 and {r[3] for r in runs} == {"dev"}
    assert sorted(r[4] for r in runs if r[:3] == study.sentences) == [0, 1, 2]


def test_the_memory_r3_choice_reads_every_w_recipe_and_m_is_the_choice_plus_the_memory():
    study, runs = _memory_r3_runs((56.0,) * 6, (54.0,) * 6)
    best = ctx.choose(runs, study)
    # W-b1's 3-seed mean (53) beats W-nocut's (50, though 60 on seed 0) and the others
    assert best["settings"] == study.grid[1][2] and best["choice_f1"] == 53.0
    m = ctx.tested_point(runs, study)
    assert m == ("ours", 2e-3, {**study.grid[1][2], "doc_memory": True})
    # step 2 before M ran: M at dev seeds 0-5, S at 3-5 (its seeds 0-2 ran in step 1)
    fresh = [r for r in runs if not r["settings"].get("doc_memory") and r["seed"] in (0, 1, 2)]
    todo = ctx.seed_runs(fresh, "dev", study)
    assert [(r[:3] == m, r[4]) for r in todo] == [(True, k) for k in range(6)] + [
        (False, k) for k in (3, 4, 5)
    ]
    assert all(r[:3] in (m, study.sentences) and r[3] == "dev" for r in todo)
    test = ctx.seed_runs(runs, "test", study)
    assert [(r[:3] == m, r[3], r[4]) for r in test] == [
        (True, "test", 0),
        (True, "test", 1),
        (True, "test", 2),
        (False, "test", 0),
        (False, "test", 1),
        (False, "test", 2),
    ]


@pytest.mark.parametrize(
    "m10, met",
    [
        ((55.0, 55.0, 55.0, 55.0, 50.0, 50.0), False),  # mean 53.33 < 54 + 0.5
        ((56.0, 56.0, 56.0, 56.0, 49.0, 49.0), False),  # 53.67: 4 wins, under the margin
        ((60.0, 60.0, 60.0, 50.0, 50.0, 50.0), False),  # +1.0, but 3 wins of 6
        ((57.0, 57.0, 57.0, 57.0, 51.0, 51.0), True),  # 55.0: +1.0, 4 wins
        ((54.5,) * 6, True),  # +0.5 exactly, 6 wins
    ],
)
def test_the_memory_r3_rule_reads_six_seeds_and_four_wins(m10, met):
    study, runs = _memory_r3_runs(m10, (54.0,) * 6)
    rule = ctx.adoption_rule(runs, study)
    assert rule["met"] is met
    assert set(rule["per seed"]) == {0, 1, 2, 3, 4, 5}
    assert rule["sentences mean"] == 54.0 and rule["context mean"] == round(sum(m10) / 6, 2)
    assert "seeds 0, 1, 2, 3, 4, 5" in rule["rule"] and ">= 4 of 6 seeds" in rule["rule"]
    # seed 5 of S missing: no verdict
    partial = [r for r in runs if not (r["seed"] == 5 and r["settings"] == study.sentences[2])]
    with pytest.raises(KeyError, match="dev seeds \\[5\\] missing"):
        ctx.adoption_rule(partial, study)


def test_the_memory_r3_files_list_every_recipe_and_test_only_after_the_rule(tmp_path, monkeypatch):
    results = tmp_path / "runs.jsonl"
    study, _ = _memory_r3_runs((55.0,) * 3 + (50.0,) * 3, (54.0,) * 6, results)
    calls = _refused_test_phase(monkeypatch, tmp_path, results, "memory-r3", ".-1.50")
    out = ctx.write(results, tmp_path / "ner_context_memory_r3.json", None, study)
    assert not (tmp_path / "ner_context_memory_r3.json").exists()  # the dev file only
    dev = json.loads((tmp_path / "ner_context_memory_r3_dev.json").read_text())
    assert dev["adoption_rule"]["met"] is False and dev["protocol"]["seeds"] == 6
    assert dev["columns"][:6] == [
        "arm",
        "sentences per training doc",
        "training docs per step",
        "oracle cut",
        "lr",
        "seed",
    ]
    means = {
        (r["arm"][0], r["training docs per step"], r["oracle cut"]): r["dev F1, 10-sentence docs"]
        for r in dev["rows"]
        if str(r["seed"]).startswith("mean")
    }
    # S (6 seeds), the 4 W recipes (3 seeds each), M (6 seeds): each with its mean row
    assert len(dev["rows"]) == 6 + 4 * 3 + 6 + 6
    assert means[("W", 1, 100)] == 53.0 and means[("W", 2, 1000)] == 50.0
    assert means[("M", 1, 100)] == 52.5
    assert [r["system"][0] for r in out["rows"]] == ["M", "S", "W"]
    assert out["tested"] == {**study.grid[1][2], "lr": 2e-3, "doc_memory": True}
    assert "10-sentence training docs: 2 docs, 20 sentences, per step" in out["protocol"]["budget"]
    assert "1 doc, 10 sentences, per step" in out["protocol"]["budget"]
    assert "doc_memory=True" in out["protocol"]["chooses"] and out["summary"] == []
    # when the rule holds: test runs M and S at seeds 0-2, the claim M on docs vs S on sentences
    study, _ = _memory_r3_runs((56.0,) * 6, (54.0,) * 6, results, tested=True)
    calls.clear()
    ctx.main(["test", "--study", "memory-r3", "--results", str(results)])
    m = ("ours", 2e-3, {**study.grid[1][2], "doc_memory": True})
    assert [(r[:3] == m, r[3], r[4]) for r in calls[0]] == [
        (m_or_s, "test", k) for m_or_s in (True, False) for k in (0, 1, 2)
    ]
    out = ctx.write(results, tmp_path / "ner_context_memory_r3.json", None, study)
    assert out["summary"][0]["figure"] == "58.00 vs 56.00 (+2.00)"
    assert "dev seeds 0-5" in out["summary"][0]["split"]
    assert (tmp_path / "ner_context_memory_r3.json").exists()


def test_the_memory_r3_seeds_diagnostic_adds_only_the_chosen_w_recipe(tmp_path):
    study, runs = _memory_r3_runs((56.0,) * 6, (54.0,) * 6)
    todo = ctx.more_seed_runs(runs, study)
    # M and S already ran dev seeds 3-5 for the rule: only W-b1 runs there
    assert [r[:3] for r in todo] == [study.grid[1]] * 3 and [r[4] for r in todo] == [3, 4, 5]
    assert {r[3] for r in todo} == {"dev"}
    more = [dict(_run(lr, st, 45.0, 55.0, seed=k), tag=study.tag) for _, lr, st, _, k in todo]
    diagnostic = ctx.seeds_diagnostic(runs + more, study)
    # the memory study's columns, with W - S after S's column
    assert len(diagnostic["columns"]) == 9 and diagnostic["columns"][4:7] == [
        "S, sentences",
        "W - S, the rule's views",
        "M - S, the rule's views",
    ]
    rows = {row["seed"]: row for row in diagnostic["rows"]}
    # W-b1: 53 on seeds 0-2, 55 on 3-5 -> 54 over 6; M 56; S 54
    assert rows["mean of all seeds (6)"]["W - S, the rule's views"] == 0.0
    assert rows["mean of all seeds (6)"]["M - W, 10-sentence docs"] == 2.0
    assert rows["mean of all seeds (6)"]["wins"] == 6
    assert rows["mean of all seeds (6)"]["M - S, the rule's views"] == 2.0


def test_the_blocks_diagnostic_runs_s_w_and_s_batched_as_w_on_six_seeds_and_chooses_nothing(
    tmp_path,
):
    study = ctx.STUDIES["blocks"]
    w, b = study.grid
    assert w == ctx.MEMORY_R3_GRID[0] and b[2] == {**study.sentences[2], "block_shuffle": 10}
    assert not study.rule and study.choose_seeds == (0, 1, 2, 3, 4, 5)
    runs = ctx.grid_runs(study)
    assert len(runs) == 3 * 6 and {r[3] for r in runs} == {"dev"}
    dev = []
    for _, lr, settings, _, seed in runs:
        f1 = {0: 54.0, 10: 50.0}[settings.get("block_shuffle", 0) * (1 - seed % 2)]
        dev.append(_run(lr, settings, f1, f1 + 1, seed=seed))
    assert ctx.seed_runs(dev, "dev", study) == []  # every run is in the grid
    results = tmp_path / "runs.jsonl"
    _tagged(study, dev, results)
    ctx.write(results, tmp_path / "ner_context_blocks.json", None, study)
    assert not (tmp_path / "ner_context_blocks.json").exists()
    out = json.loads((tmp_path / "ner_context_blocks_dev.json").read_text())
    assert "adoption_rule" not in out and out["protocol"]["chooses"].startswith("nothing")
    assert "D / 2" in out["protocol"]["readings"] and out["protocol"]["seeds"] == 6
    means = {
        r["arm"][0]: r["dev F1, sentences"] for r in out["rows"] if str(r["seed"]) == "mean of 6"
    }
    assert means == {"S": 54.0, "W": 54.0, "B": 52.0}  # B: 50 on even seeds, 54 on odd


def _memory_block_runs(x10, s1, results=None, tested=False):
    """memory-block's runs: X at dev seeds 0-5 (`x10` on 10-sentence docs) under its tag; S's
    dev seeds 0-5 (`s1` on sentences) under memory-r3's tag, its test seeds 0-2 and a
    different dev seed 0 under round 6's (the earlier tag wins)."""
    study = ctx.STUDIES["memory-block"]
    (x,) = study.grid
    mine = [_run(2e-3, x[2], 45.0, x10[seed], seed=seed) for seed in study.rule_seeds]
    if tested:
        mine += [_run(2e-3, x[2], 50.0, 58.0, "test", seed) for seed in ctx.proto.SEEDS]
    r3 = [_run(2e-3, study.sentences[2], s1[k], 70.0, seed=k) for k in study.rule_seeds]
    r6 = [_run(2e-3, study.sentences[2], 99.0, 70.0, seed=0)]
    r6 += [_run(2e-3, study.sentences[2], 56.0, 70.0, "test", k) for k in ctx.proto.SEEDS]
    tags = study.sentences_tag
    runs = [dict(r, tag=study.tag) for r in mine]
    runs += [dict(r, tag=tags[0]) for r in r3] + [dict(r, tag=tags[1]) for r in r6]
    if results is not None:
        results.write_text(
            "".join(json.dumps(dict(r, n_train=ctx.proto.N_TRAIN)) + "\n" for r in runs)
        )
    return study, runs


def test_the_memory_block_study_is_s_plus_the_block_memory_against_ss_recorded_runs(tmp_path):
    study = ctx.STUDIES["memory-block"]
    assert study.sentences == ctx.SENTENCES_R6 and study.rule_views == ("10", "1")
    assert study.rule_seeds == (0, 1, 2, 3, 4, 5) and study.rule_wins == 4
    assert study.rule_margin == 0.0 and study.rule and not study.adds
    (x,) = study.grid
    assert x == (
        "ours",
        2e-3,
        {**ctx.SENTENCES_R6[2], "sentence_windows": True, "doc_memory": True, "memory_block": 10},
    )
    assert study.sentences_tag == (ctx.TAG + "-memory-r3", ctx.SENTENCES_R6_TAG)
    # dev: X at seeds 0-5, S never rerun; test: X at seeds 0-2 only
    assert ctx.grid_runs(study) == [(*x, "dev", k) for k in range(6)]
    results = tmp_path / "runs.jsonl"
    study, runs = _memory_block_runs((55.0,) * 6, (54.0,) * 6, results)
    read = ctx.study_runs(results, study)
    s_runs = [(r["split"], r["seed"], r["f1"]) for r in read if ctx._same(r, *study.sentences)]
    # dev seeds 0-5 from memory-r3's tag (round 6's dev seed 0 is not read again), test 0-2
    assert s_runs == [("dev", k, 54.0) for k in range(6)] + [("test", k, 56.0) for k in range(3)]
    assert ctx.seed_runs(read, "dev", study) == []
    assert ctx.seed_runs(read, "test", study) == [(*x, "test", k) for k in range(3)]


def test_the_memory_block_reads_ss_real_recorded_runs():
    """The settings match S's committed runs exactly: 6 dev seeds (mean 54.86, memory-r3) and
    3 test seeds (round 6)."""
    study = ctx.STUDIES["memory-block"]
    runs = [r for r in ctx.study_runs(ctx.proto.RESULTS, study) if ctx._same(r, *study.sentences)]
    dev = {r["seed"]: r["f1_by_doc_size"]["1"] for r in runs if r["split"] == "dev"}
    assert sorted(dev) == [0, 1, 2, 3, 4, 5]
    assert round(sum(dev.values()) / 6, 2) == 54.86
    assert sorted(r["seed"] for r in runs if r["split"] == "test") == [0, 1, 2]


@pytest.mark.parametrize(
    "x10, met",
    [
        ((54.0,) * 6, False),  # level, but no seed ahead (ties are not wins)
        ((54.1, 54.1, 54.1, 54.1, 53.8, 53.8), True),  # mean 54.0 exactly, 4 wins
        ((54.1, 54.1, 54.1, 54.1, 53.6, 53.6), False),  # 4 wins, mean 53.93 < 54
        ((60.0, 60.0, 60.0, 50.0, 50.0, 50.0), False),  # +1.0, 3 wins of 6
        ((55.0, 55.0, 55.0, 55.0, 55.0, 50.0), True),  # +0.33: the aim's +0.5 is not needed
    ],
)
def test_the_memory_block_rule_is_level_with_sentences_on_four_of_six_seeds(x10, met, tmp_path):
    study, _ = _memory_block_runs(x10, (54.0,) * 6, tmp_path / "runs.jsonl")
    rule = ctx.adoption_rule(ctx.study_runs(tmp_path / "runs.jsonl", study), study)
    assert rule["met"] is met and rule["sentences mean"] == 54.0
    assert "+ 0 and ahead on >= 4 of 6 seeds" in rule["rule"]


def test_the_memory_block_test_phase_is_gated_and_files_follow_the_rule(tmp_path, monkeypatch):
    results = tmp_path / "runs.jsonl"
    study, _ = _memory_block_runs((53.0,) * 6, (54.0,) * 6, results)
    calls = _refused_test_phase(monkeypatch, tmp_path, results, "memory-block", ".-1.00")
    out = ctx.write(results, tmp_path / "ner_context_memory_block.json", None, study)
    assert not (tmp_path / "ner_context_memory_block.json").exists()  # the dev file only
    dev = json.loads((tmp_path / "ner_context_memory_block_dev.json").read_text())
    assert dev["adoption_rule"]["met"] is False and dev["protocol"]["seeds"] == 6
    assert [r["arm"][0] for r in dev["rows"]] == ["S"] * 7 + ["X"] * 7
    assert "160 sentences encoded per step" in out["protocol"]["budget"]
    assert dev["protocol"]["chooses"].startswith("nothing: one pre-registered arm")
    assert dev["protocol"]["reports"].startswith(
        "dev (the one arm's and the sentence system's seeds 0, 1, 2, 3, 4, 5"
    )
    study, _ = _memory_block_runs((55.0,) * 6, (54.0,) * 6, results, tested=True)
    calls.clear()
    ctx.main(["test", "--study", "memory-block", "--results", str(results)])
    assert calls == [[(*study.grid[0], "test", k) for k in range(3)]]
    out = ctx.write(results, tmp_path / "ner_context_memory_block.json", None, study)
    assert out["summary"][0]["figure"] == "58.00 vs 56.00 (+2.00)"
    assert out["summary"][0]["split"].startswith("one pre-registered arm (nothing chosen)")


def test_the_nograd_study_is_memory_block_with_the_neighbours_read_only():
    block, nograd = ctx.STUDIES["memory-block"], ctx.STUDIES["memory-block-nograd"]
    assert nograd.grid == [(*block.grid[0][:2], {**block.grid[0][2], "memory_block_grad": False})]
    assert nograd.tag == ctx.TAG + "-memory-block-nograd" != block.tag
    assert nograd.output.name == "ner_context_memory_block_nograd.json"
    assert (
        "--study memory-block-nograd " in nograd.command
        and "--study memory-block " not in nograd.command
    )
    same = ("sentences", "sentences_tag", "rule", "rule_views", "rule_seeds", "rule_wins")
    assert all(getattr(nograd, k) == getattr(block, k) for k in (*same, "rule_margin", "candidate"))
    assert ctx.grid_runs(nograd) == [(*nograd.grid[0], "dev", k) for k in range(6)]


def test_the_cost_phase_interleaves_s_x_and_xng_and_reports_seconds_per_update(tmp_path):
    study = ctx.STUDIES["memory-block"]
    todo = ctx.cost_runs(study)
    s, x, xng = (
        (*p[:2], {**p[2], "max_steps": ctx.COST_STEPS})
        for p in (ctx.SENTENCES_R6, ctx.MEMORY_BLOCK, ctx.MEMORY_BLOCK_NOGRAD)
    )
    assert todo == [
        (*p, "dev", k)
        for k, order in enumerate(((s, x, xng), (xng, x, s), (s, x, xng)))
        for p in order
    ]
    runs = [
        dict(_run(lr, settings, 1.0, 1.0, seed=seed), train_seconds=seconds)
        for (_, lr, settings, _, seed), seconds in zip(todo, (2, 14, 13, 12, 16, 3, 2.5, 15, 14))
    ]
    out = ctx.write_cost(runs, study, tmp_path / "cost.json")
    medians = {r["system"]: r for r in out["rows"] if str(r["repeat"]).startswith("median")}
    assert medians["S"]["train s per update"] == 0.1  # median 2.5 s / 25 updates
    assert medians["X"]["train s per update"] == 0.6 and medians["X"]["vs S"] == 6.0
    assert medians["Xng"]["range"] == "0.480-0.560"
    assert len(out["rows"]) == 9 + 3 and json.loads((tmp_path / "cost.json").read_text())["rows"]
    with pytest.raises(SystemExit, match="measures"):
        ctx.cost_runs(ctx.STUDIES["blocks"])
