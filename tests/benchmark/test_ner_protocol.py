"""The held-out NER protocol (issue 33): dev is carved from train and never trained on, the
test split is CoNLL valid, and choices read only the dev grid."""

import json
from pathlib import Path

import pytest

from benchmarks import ner_protocol as proto
from benchmarks.ner_study import load_split


def _write(path: Path, n: int, prefix: str) -> None:
    path.write_text(
        "".join(f"{prefix}{i} B-PER 0\nsaid O 0\n\n" for i in range(n)), encoding="utf8"
    )


@pytest.fixture()
def data_dir(tmp_path):
    (tmp_path / "conll2003").mkdir()
    _write(tmp_path / "conll2003" / "train.iob", 200, "tr")
    _write(tmp_path / "conll2003" / "valid.iob", 30, "va")
    return tmp_path


def test_dev_is_the_last_tenth_of_train_and_never_trained_on(data_dir):
    train, dev = load_split("dev", n_train=100, data_dir=data_dir)
    _, test = load_split("test", n_train=100, data_dir=data_dir)
    assert [w[0] for w, _ in dev] == [f"tr{i}" for i in range(180, 200)]
    assert [w[0] for w, _ in test] == [f"va{i}" for i in range(30)]
    assert len(train) == 100 and not {w[0] for w, _ in train} & {w[0] for w, _ in dev}
    # blocks of 10 consecutive sentences, in reading order inside each block
    firsts = [int(w[0][2:]) for w, _ in train]
    for k in range(0, 100, 10):
        assert firsts[k : k + 10] == list(range(firsts[k], firsts[k] + 10))
    assert (
        load_split("dev", n_train=100, data_dir=data_dir)[0] == train
    )  # the same data for every run


def _run(system, lr, settings, f1, split="dev", seed=0):
    return {
        "system": system,
        "lr": lr,
        "settings": settings,
        "split": split,
        "seed": seed,
        "f1": f1,
        "f1_by_doc_size": {"1": f1, "10": f1},
    }


def test_choices_read_only_the_complete_dev_grid():
    runs = [
        _run(s, lr, dict(r), 40 + 10 * lr)
        for s, recipes in proto.RECIPES.items()
        for r in recipes
        for lr in proto.RATES
    ]
    best_lr = max(proto.RATES)
    ten = {"docs_of": 10, "epochs": proto.EPOCHS, **proto.OURS_CLIP}
    # a science run and a test run with better scores must not steer the choice
    runs.append(_run("ours", proto.RATES[0], {**ten, "sentence_windows": True}, 99.0))
    runs.append(_run("ours", proto.RATES[0], ten, 99.0, split="test"))
    chosen = proto.select(runs)
    assert chosen["ours, 10-sentence docs"]["lr"] == best_lr
    assert chosen["ours, 10-sentence docs"]["settings"] == ten
    with pytest.raises(KeyError, match="grid"):
        proto.select(runs[1:])


def test_ours_tunes_the_warmup_as_the_hf_loop_does():
    """Both systems tune the same warmup fractions; ours' 1-sentence group chooses among both
    warmups, and a grid without the warmup-0.3 points is incomplete."""

    def warmups(system):
        one = [r for r in proto.RECIPES[system] if r.get("docs_of", 1) == 1]
        return sorted({r.get("warmup", 0.1) for r in one})

    assert warmups("ours") == warmups("hf") == list(proto.WARMUPS)
    runs = [
        _run(s, lr, dict(r), 40 + 10 * lr + (5 if r.get("warmup") == 0.3 else 0))
        for s, recipes in proto.RECIPES.items()
        for r in recipes
        for lr in proto.RATES
    ]
    chosen = proto.select(runs)
    assert chosen["ours, 1-sentence docs"]["settings"].get("warmup") == 0.3
    assert chosen["hf loop"]["settings"]["warmup"] == 0.3
    incomplete = [r for r in runs if not (r["system"] == "ours" and r["settings"].get("warmup"))]
    with pytest.raises(KeyError, match="1-sentence docs: 4 of 8"):
        proto.select(incomplete)


def test_pretraining_text_is_the_training_pool_and_wiki_never_dev_or_test(data_dir):
    (data_dir / "clinc150").mkdir()
    (data_dir / "clinc150" / "wiki_sents.txt").write_text("a wiki line\n\nanother one\n")
    texts = proto.pretrain_texts(data_dir)
    words = {w for t in texts for w in t.split()}
    assert {f"tr{i}" for i in range(180)} <= words  # the pool (train minus dev)
    assert not {f"tr{i}" for i in range(180, 200)} & words  # dev
    assert not any(w.startswith("va") for w in words)  # test
    # the pool in documents of PRETRAIN_DOC consecutive sentences, then the wiki sentences
    assert texts[0].split()[::2] == [f"tr{i}" for i in range(proto.PRETRAIN_DOC)]
    assert texts[-2:] == ["a wiki line", "another one"]


def _with_test_runs(tmp_path, runs, planned):
    """`runs` plus a test run (F1 50 + seed) for each planned (system, lr, settings, split,
    seed), written as a results file under tag "t"; its path."""
    for system, lr, settings, split, seed in planned:
        runs.append(
            dict(
                _run(system, lr, settings, 50.0 + seed, split=split, seed=seed),
                tag="t",
                n_train=proto.N_TRAIN,
                train_seconds=1.0,
                train_words_per_s=1.0,
                load_avg=[1.0, 1.0, 1.0],
            )
        )
    results = tmp_path / "runs.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in runs))
    return results


def _complete_runs(tag):
    """A dev grid and 3 test seeds of each group's choice, as ner_study writes them."""
    runs = []
    for s, recipes in proto.RECIPES.items():
        for r in recipes:
            for lr in proto.RATES:
                runs.append(_run(s, lr, dict(r), 40 + 1000 * lr))
    for run in proto.test_runs(runs):
        system, lr, settings, split, seed = run
        runs.append(_run(system, lr, settings, 50 + seed, split=split, seed=seed))
    for r in runs:
        r.update(
            tag=tag,
            n_train=proto.N_TRAIN,
            train_seconds=10.0,
            train_words_per_s=100.0,
            load_avg=[1.0, 1.0, 1.0],
        )
        r["f1_by_doc_size"]["10sw"] = r["f1"]
    return runs


def test_each_protocol_reads_only_its_own_runs(tmp_path):
    results = tmp_path / "runs.jsonl"
    pretrained = proto.PROTOCOLS["pretrained"]
    runs = _complete_runs(pretrained.tag) + [
        dict(r, f1=0.0) for r in _complete_runs(proto.PROTOCOLS["random"].tag)
    ]
    results.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert {r["tag"] for r in proto.read_runs(results, pretrained.tag)} == {pretrained.tag}
    out = tmp_path / "ner_pretrained.json"
    record = {"steps": 400, "batch_tokens": 4096, "window": 256, "lr": 1e-3, "documents": 10}
    result = proto.write(results, out, pretrained, record)
    assert json.loads(out.read_text())["benchmark"] == "ner_pretrained"
    assert "--protocol pretrained" in result["command"]
    assert (
        result["protocol"]["pretraining"] == record
        and "400 steps" in result["protocol"]["checkpoint"]
    )
    # the random protocol's runs (F1 0) did not reach the pretrained figures
    assert all(row["test_f1"]["min"] >= 50 for row in result["rows"])
    assert all(c["claim"].startswith("pretrained checkpoint: ") for c in result["summary"])


def test_a_rerun_names_its_claims_and_the_flag_that_named_them(tmp_path):
    results = tmp_path / "runs.jsonl"
    tag = proto.PROTOCOLS["pretrained"].tag + "-r9"
    results.write_text("".join(json.dumps(r) + "\n" for r in _complete_runs(tag)))
    record = {"steps": 400, "batch_tokens": 4096, "window": 256, "lr": 1e-3, "documents": 10}
    prefix = "pretrained checkpoint, round 9: "
    result = proto.write(
        results,
        tmp_path / "r9.json",
        proto.PROTOCOLS["pretrained"],
        record,
        tag=tag,
        claim_prefix=prefix,
    )
    assert all(c["claim"].startswith(prefix) for c in result["summary"])
    assert f'--claim-prefix "{prefix}"' in result["command"]
    assert result["chosen"]["ours"]["warmup"] in proto.WARMUPS


def test_a_test_rerun_on_newer_code_reads_the_earlier_grid_and_only_its_own_test_runs(tmp_path):
    """`test --tag NEW --grid-tag OLD`: the choice comes from OLD's dev grid, the figures from
    NEW's test runs alone (OLD's test runs, made on older code, do not count)."""
    results = tmp_path / "runs.jsonl"
    old = proto.PROTOCOLS["random"].tag
    new = old + "-rerun"
    earlier = _complete_runs(old)
    rerun = [dict(r, tag=new, f1=r["f1"] + 5) for r in earlier if r["split"] == "test"]
    for r in rerun:
        r["f1_by_doc_size"] = dict(r["f1_by_doc_size"], **{"10sz": r["f1"] - 1})
    # a stray dev run under the new tag must not steer the choice
    stray = dict(earlier[0], tag=new, f1=99.0)
    results.write_text("".join(json.dumps(r) + "\n" for r in earlier + rerun + [stray]))
    runs = proto.protocol_runs(results, new, old)
    assert proto.select(runs) == proto.select(earlier)
    assert proto.test_runs(runs) == proto.test_runs(earlier)
    result = proto.write(results, tmp_path / "ner.json", tag=new, grid_tag=old)
    assert all(row["test_f1"]["min"] >= 55 for row in result["rows"])  # the rerun's seeds only
    assert all("test_f1_10sent_docs_shipped" in row for row in result["rows"])
    assert result["protocol"]["tag"] == new and result["protocol"]["grid_tag"] == old
    assert f"--tag {new} --grid-tag {old}" in result["command"]
    assert result["command"].startswith("python benchmarks/ner_protocol.py test")


def test_the_config_rate_is_the_best_dev_run_of_a_complete_config_sweep():
    runs = [
        _run("ours", lr, dict(proto.CONFIG_SETTINGS), 60 - abs(lr - proto.RATES[1]) * 1000)
        for lr in proto.RATES
    ]
    # a better test run or a run of other settings does not count
    runs.append(_run("ours", proto.RATES[0], dict(proto.CONFIG_SETTINGS), 99.0, split="test"))
    runs.append(_run("ours", proto.RATES[0], {"docs_of": 1}, 99.0))
    assert proto.config_choice(runs)["lr"] == proto.RATES[1]
    with pytest.raises(KeyError, match="config"):
        proto.config_choice(runs[1:])


@pytest.mark.parametrize("docs_of, mix", [(1, 0), (10, 0), (1, 10), (1, 3)])
def test_training_docs_join_consecutive_sentences_in_order(docs_of, mix):
    from benchmarks.ner_study import group_sentences

    sents = list(range(95))
    groups = group_sentences(sents, docs_of, mix, seed=0)
    assert [s for g in groups for s in g] == sents
    sizes = [len(g) for g in groups]
    if mix:
        assert max(sizes[:-1]) <= mix and min(sizes) >= 1 and len(set(sizes)) > 1
        assert groups == group_sentences(sents, docs_of, mix, seed=0)  # the seed fixes the mix
        assert groups != group_sentences(sents, docs_of, mix, seed=1)
    else:
        assert set(sizes[:-1]) == {docs_of}


def test_the_readme_path_runs_at_the_shipped_configs_budget():
    from spacy.util import load_config

    from benchmarks.ner_readme_path import CONFIG, config_budget

    training = load_config(CONFIG, interpolate=True)["training"]
    budget = config_budget(None)
    assert budget["lr"] == training["optimizer"]["learn_rate"]["initial_rate"]
    assert budget["max_steps"] == training["max_steps"]
    assert budget["batch_words"] == training["batcher"]["size"]
    reduced = config_budget(100)
    assert reduced["max_steps"] == 100 and reduced["warmup_steps"] == 10


def test_readme_path_paragraphs_keep_the_gold_entities_and_break_lines_after_headlines():
    import spacy
    from spacy.tokens import Doc

    from benchmarks.ner_readme_path import paragraphs

    vocab = spacy.blank("en").vocab

    def sentence(words, ents):
        return Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False], ents=ents)

    sents = [
        sentence(["LONDON", "1996-08-30"], ["B-LOC", "O"]),
        sentence(["Phil", "Simmons", "took", "four", "."], ["B-PER", "I-PER"] + ["O"] * 3),
        sentence(["Leicestershire", "won"], ["B-ORG", "O"]),
    ]
    spaced, lined = paragraphs(sents)[0], paragraphs(sents, with_lines=True)[0]
    assert spaced.text == "LONDON 1996-08-30 Phil Simmons took four . Leicestershire won"
    assert lined.text == "LONDON 1996-08-30\nPhil Simmons took four . Leicestershire won"
    for doc in (spaced, lined):
        assert [(e.text, e.label_) for e in doc.ents] == [
            ("LONDON", "LOC"),
            ("Phil Simmons", "PER"),
            ("Leicestershire", "ORG"),
        ]


def test_a_multi_seed_dev_choice_reads_each_points_mean_over_the_dev_seeds(tmp_path):
    """`--dev-seeds 0,1,2`: every grid point runs on each seed and the choice is its mean dev
    F1, the same rule for both systems: a point best on seed 0 alone but worse on average is
    not chosen, and a point missing a dev seed makes the grid incomplete."""
    seeds = (0, 1, 2)
    assert {run[4] for run in proto.grid_runs(seeds)} == set(seeds)
    assert len(proto.grid_runs(seeds)) == 3 * len(proto.grid_runs())

    def f1(system, lr, seed):
        # seed 0 favours the highest rate, the mean over seeds 0-2 the second rate
        if seed == 0:
            return 60.0 if lr == proto.RATES[-1] else 50.0
        return 20.0 if lr == proto.RATES[-1] else (55.0 if lr == proto.RATES[1] else 45.0)

    runs = [
        _run(s, lr, dict(r), f1(s, lr, seed), seed=seed)
        for seed in seeds
        for s, recipes in proto.RECIPES.items()
        for r in recipes
        for lr in proto.RATES
    ]
    for r in runs:
        r.update(tag="t", n_train=proto.N_TRAIN, train_seconds=1.0, train_words_per_s=1.0)
    assert all(c["lr"] == proto.RATES[-1] for c in proto.select(runs).values())  # seed 0 alone
    chosen = proto.select(runs, seeds)
    assert all(c["lr"] == proto.RATES[1] for c in chosen.values())
    assert chosen["hf loop"]["f1"] == 53.33 and chosen["hf loop"]["f1_by_seed"] == {
        0: 50.0,
        1: 55.0,
        2: 55.0,
    }
    # points without their seed-2 run do not count: the grid is incomplete
    missing = [
        r
        for r in runs
        if not (r["seed"] == 2 and r["system"] == "hf" and r["settings"]["warmup"] == 0.3)
    ]
    with pytest.raises(KeyError, match="hf loop: 4 of 8 dev grid points on seeds 0-2"):
        proto.select(missing, seeds)
    # test runs at the mean's choice, and the result file records the rule
    planned = proto.test_runs(runs, dev_seeds=seeds)
    assert all(lr == proto.RATES[1] for _, lr, *_ in planned)
    results = _with_test_runs(tmp_path, runs, planned)
    result = proto.write(results, tmp_path / "r.json", tag="t", dev_seeds=seeds)
    assert result["protocol"]["dev_seeds"] == [0, 1, 2]
    assert "mean F1 over seeds 0-2" in result["protocol"]["chooses"]
    assert all(row["dev_f1_mean"] == 53.33 for row in result["rows"])
    assert all("chosen on the mean of dev seeds 0-2" in c["split"] for c in result["summary"][:2])
    assert "--dev-seeds 0,1,2" in result["command"]
    assert {p["dev_f1"] for p in result["dev_grid"] if p["lr"] == proto.RATES[-1]} == {33.33}


def test_a_second_batch_size_adds_as_many_tuned_points_to_each_system(tmp_path):
    """`--batch-sizes 32,16`: one more recipe per system at 16 sentences per step (30% warmup;
    ours on 1-sentence docs), at every rate; the default grid is the earlier rounds'; the
    choice needs the new points and may pick them; the result file records the knob."""
    assert proto.recipes() == proto.RECIPES
    both = proto.recipes((32, 16))
    for system in ("ours", "hf"):
        added = [r for r in both[system] if r not in proto.RECIPES[system]]
        assert [r["batch_size"] for r in added] == [16] and added[0]["warmup"] == 0.3
    assert both["ours"][-1]["docs_of"] == 1
    assert len(proto.grid_runs((0,), (32, 16))) == len(proto.grid_runs()) + 2 * len(proto.RATES)

    def f1(system, lr, settings):
        # batch 16 at the second rate is each system's best point
        return 60.0 if settings.get("batch_size") == 16 and lr == proto.RATES[1] else 40.0 + lr

    runs = [
        dict(
            _run(s, lr, dict(r), f1(s, lr, r)),
            tag="t",
            n_train=proto.N_TRAIN,
            train_seconds=1.0,
            train_words_per_s=1.0,
        )
        for s, recipes in both.items()
        for r in recipes
        for lr in proto.RATES
    ]
    # the default grid ignores the batch-16 runs (rounds 1-6 reproduce)
    assert all("batch_size" not in c["settings"] for c in proto.select(runs).values())
    chosen = proto.select(runs, batch_sizes=(32, 16))
    assert chosen["hf loop"]["settings"]["batch_size"] == 16
    assert chosen["ours, 1-sentence docs"]["settings"]["batch_size"] == 16
    assert chosen["ours, 10-sentence docs"]["settings"] == dict(proto.RECIPES["ours"][1])
    without = [r for r in runs if not (r["system"] == "hf" and r["settings"].get("batch_size"))]
    with pytest.raises(KeyError, match="hf loop: 8 of 12 dev grid points"):
        proto.select(without, batch_sizes=(32, 16))
    results = _with_test_runs(tmp_path, runs, proto.test_runs(runs, batch_sizes=(32, 16)))
    result = proto.write(results, tmp_path / "r.json", tag="t", batch_sizes=(32, 16))
    assert result["chosen"]["ours"]["batch_size"] == 16
    assert result["chosen"]["hf"]["batch_size"] == 16
    assert "--batch-sizes 32,16" in result["command"]
    assert "batch_size 16, 16 (250 updates)" in result["protocol"]["budget"]
    assert result["protocol"]["grid"]["hf"][-1]["batch_size"] == 16
