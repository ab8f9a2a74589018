"""`python -m benchmarks vocab`: what `extend-vocab` buys on domain text (issue 31).

pieces: pieces per word (whitespace words) on held-out domain text before/after up to
  `--max-new` tokens mined from the domain's training text only, for the base tokenizers
  of two cached random checkpoints (BPE 8k and 16k trained on CoNLL-2003 train, the
  general text the benchmarks' checkpoints use). Domains: the demo reports (the project's
  generator, `--demo-docs` reports, seed 0: mined on train, reported on dev; test unused)
  and CLINC150 (mined on train utterances, reported on val). Each `--max-words-per-term`
  variant is one extension: 1 (single words, the default of extend-vocab) and e.g. 3
  (multi-word tokens as well: "credit score", "what is my"; no pre-token floor).
speed: `nlp.pipe` words/s of a transformer-only pipeline on held-out text, base vs each
  bpe8k extension (same weights but the new rows): the demo dev reports and CLINC150 val,
  interleaved ABAB rounds, median and range, with the load average.
mlm: the small checkpoint is first pretrained on the general text (`--general-steps`, the
  stand-in for "what the model knows"); then for each seed, four systems get the same
  `pretrain` budget on the demo train reports: no extension, and the extension with each
  init (mean, contextual, random). Reported: held-out MLM loss on the demo dev reports per
  masked piece and per word (loss per piece x pieces per word: the expected loss of
  predicting every piece once; it favours finer tokenizations, whose pieces see their own
  word's other pieces, so it is conservative for the extension).
No pretrained weights exist offline: every system starts from the same random checkpoint.
"""

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import typer

from . import data as bdata
from ._app import CacheDir, DataDir, Output, Threads, app, defaults
from .report import log, machine_info, table, write_json
from .results import header

ROOT = Path(__file__).resolve().parents[1]


def domains(data_dir: Path, demo_docs: int) -> Dict[str, Tuple[List[str], List[str]]]:
    """name -> (training text, held-out text)."""
    from spacy_modernbert.data.demo import generate_demo_splits

    splits = generate_demo_splits(n_docs=demo_docs, seed=0)
    out = {
        "demo-reports": ([r["text"] for r in splits["train"]], [r["text"] for r in splits["dev"]])
    }
    clinc = Path(data_dir) / "clinc150" / "clinc150_train_val.json"
    if clinc.exists():
        data = json.loads(clinc.read_text(encoding="utf8"))
        out["clinc150"] = ([t for t, _ in data["train"]], [t for t, _ in data["val"]])
    return out


def _write_jsonl(texts: Sequence[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf8")
    return path


def _tok(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


Variant = Tuple[int, float]  # (--max-words-per-term, --multi-word-share)


def parse_variants(spec: str) -> List[Variant]:
    """'1,3,3/0.25' -> [(1, 1.0), (3, 1.0), (3, 0.25)]: each extension variant is
    --max-words-per-term W, optionally /S: --multi-word-share S."""
    out = []
    for part in spec.split(","):
        words, _, share = part.strip().partition("/")
        out.append((int(words), float(share) if share else 1.0))
    return out


def variant_label(words: int, share: float = 1.0) -> str:
    """', terms of up to 3 words on at most 25% of the new tokens' for (3, 0.25); '' for single words."""
    if words < 2:
        return ""
    cap = "" if share >= 1 else f" on at most {share:.0%} of the new tokens"
    return f", terms of up to {words} words{cap}"


def variant_tag(words: int, share: float = 1.0) -> str:
    """The cache name's suffix of a variant: '', '-w3', '-w3-mw0.25'."""
    if words < 2:
        return ""
    return f"-w{words}" + ("" if share >= 1 else f"-mw{share:g}")


def extension_name(base_name: str, max_words: int, share: float = 1.0) -> str:
    return f"{base_name} + extend-vocab{variant_label(max_words, share)}"


def pieces_rows(
    bases: Dict[str, Path],
    doms,
    cache: Path,
    max_new: int,
    min_freq: int,
    max_words: Sequence[Variant] = ((1, 1.0),),
) -> Tuple[List[dict], Dict[str, Path]]:
    from spacy_modernbert.encoder.leading_space import as_the_pipeline_reads
    from spacy_modernbert.vocab.bpe import pieces_per_word
    from spacy_modernbert.vocab.extend import extend_vocab

    doms = {d: (train, as_the_pipeline_reads(held)) for d, (train, held) in doms.items()}
    rows, extended = [], {}
    for (base_name, base), (dom, (train, held)), (words, share) in (
        (b, d, w) for b in bases.items() for d in doms.items() for w in max_words
    ):
        name = extension_name(base_name, words, share)
        out = cache / f"ext-{base_name}-{dom}{variant_tag(words, share)}"
        log(f"extend-vocab {name} on {dom} train ({len(train)} docs)")
        summary = extend_vocab(
            str(base),
            train,
            out,
            max_new=max_new,
            min_freq=min_freq,
            max_words=words,
            multi_word_share=share,
            overwrite=True,
        )
        extended[f"{name}/{dom}"] = out
        before, n_words = pieces_per_word(_tok(base), held)
        pre = _tok(base).backend_tokenizer.pre_tokenizer
        floor = sum(len(pre.pre_tokenize_str(t)) for t in held)  # no merge can span pre-tokens
        new_tok = _tok(out)
        ids = new_tok(list(held), add_special_tokens=False)["input_ids"]
        after = sum(len(x) for x in ids)
        rows.append(
            {
                "system": name,
                "domain": dom,
                "metric": "pieces per word (held out)",
                "before": round(before / n_words, 4),
                "after": round(after / n_words, 4),
                "drop_pct": round(100 * (1 - after / before), 1),
                "floor_pre_tokens_per_word": round(floor / n_words, 4),
                "max_drop_pct": round(100 * (1 - floor / before), 1),
                "new_tokens": summary["new_tokens"],
                "new_words": summary["new_words"],
                "multi_word_terms": summary["multi_word_terms"],
                "held_out_words": n_words,
                "held_out_new_token_share_pct": round(
                    100 * sum(i >= summary["embedding_rows"][0] for x in ids for i in x) / after,
                    1,
                ),
            }
        )
        log(
            f"  {dom}: {rows[-1]['before']} -> {rows[-1]['after']} pieces/word ({rows[-1]['drop_pct']}% fewer), {summary['new_tokens']} new tokens"
        )
    return rows, extended


def speed_rows(
    base: Path, exts: Dict[str, Path], texts: Sequence[str], domain: str, rounds: int
) -> List[dict]:
    """nlp.pipe words/s of the base checkpoint and each extension, in rotated rounds."""
    import spacy

    pipes = {}
    for name, ckpt in (("base", base), *exts.items()):
        nlp = spacy.blank("en")
        nlp.add_pipe(
            "transformer",
            config={
                "model": {
                    "@architectures": "spacy-modernbert.ModernBertTransformer.v1",
                    "name": str(ckpt),
                }
            },
        )
        nlp.initialize()
        list(nlp.pipe(texts[:20]))
        pipes[name] = nlp
    words = sum(len(t.split()) for t in texts)
    timings: Dict[str, List[float]] = {n: [] for n in pipes}
    loads = [os.getloadavg()[0]]
    names = list(pipes)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            for _ in pipes[name].pipe(texts, batch_size=32):
                pass
            timings[name].append(words / (time.perf_counter() - t0))
    loads.append(os.getloadavg()[0])
    rows = []
    for name, values in timings.items():
        rows.append(
            {
                "system": name,
                "domain": domain,
                "metric": "nlp.pipe words/s",
                "median": round(statistics.median(values), 1),
                "range": [round(min(values), 1), round(max(values), 1)],
                "rounds": rounds,
                "load_avg_1min": [round(x, 2) for x in loads],
            }
        )
        log(f"  {name}: {rows[-1]['median']} words/s (range {rows[-1]['range']}), load {loads}")
    return rows


def _held_out(ckpt: Path, texts: Sequence[str], window: int) -> Tuple[float, float]:
    """(MLM loss per masked piece, pieces per word) on `texts` (fixed masks)."""
    import torch

    from spacy_modernbert.encoder.leading_space import as_the_pipeline_reads
    from spacy_modernbert.pretrain.data import tokenize_windows
    from spacy_modernbert.pretrain.loop import held_out_loss
    from spacy_modernbert.pretrain.masking import make_collator
    from spacy_modernbert.pretrain.model import load_masked_lm
    from spacy_modernbert.vocab.bpe import pieces_per_word

    model, tok, _, _ = load_masked_lm(str(ckpt))
    windows = tokenize_windows(list(texts), tok, window)
    special = torch.tensor(sorted(set(tok.all_special_ids)))
    loss = held_out_loss(
        model, make_collator(tok, 0.3), windows, special, 4096, torch.device("cpu")
    )
    pieces, words = pieces_per_word(tok, as_the_pipeline_reads(texts))  # as windows read them
    return loss, pieces / words


INITS = ("mean", "contextual", "random")  # every --init of extend-vocab, compared


def _settings(lr: float, batch_tokens: int, window: int) -> Dict[str, Any]:
    return dict(lr=lr, batch_tokens=batch_tokens, window=window, eval_fraction=0.0, log_every=50)


def general_checkpoint(
    small: Path, general: List[str], cache: Path, steps: int, settings: Dict[str, Any]
) -> Path:
    """The small random checkpoint pretrained `steps` on general text (cached): the stand-in
    for "what the model knows" that every system of the comparisons starts from."""
    from spacy_modernbert.pretrain.checkpoint import read_state
    from spacy_modernbert.pretrain.loop import pretrain

    gen = cache / f"general-{steps}"
    if (read_state(gen) or {}).get("step") != steps:
        log(f"pretraining the small checkpoint on general text ({steps} steps)")
        pretrain(
            str(small),
            [_write_jsonl(general, cache / "general.jsonl")],
            gen,
            steps=steps,
            save_every=steps,
            seed=0,
            force=True,
            **settings,
        )
    return gen


def domain_runs(
    gen: Path,
    train: List[str],
    domain: str,
    cache: Path,
    seed: int,
    steps: int,
    max_new: int,
    min_freq: int,
    settings: Dict[str, Any],
    max_words: Sequence[Variant] = ((1, 1.0),),
    inits: Sequence[str] = INITS,
) -> Dict[str, Tuple[Path, Path]]:
    """system -> (start checkpoint, after `steps` of domain pretraining): no extension and
    extend-vocab (mined on `train`) with each init and each --max-words-per-term, all given
    the same budget on `train`. A run already at `steps` (same seed and settings: the cache
    directory names them) is reused."""
    from spacy_modernbert.pretrain.checkpoint import read_state
    from spacy_modernbert.pretrain.loop import pretrain
    from spacy_modernbert.vocab.extend import extend_vocab

    tag = f"{domain}-s{seed}-{steps}x{settings['batch_tokens']}-lr{settings['lr']:g}"
    starts = {"no extension": (gen, "no-extension")}
    for (words, share), init in ((w, i) for w in max_words for i in inits):
        variant = f"{init}{variant_tag(words, share)}"
        out = cache / f"ext-{domain}-{variant}-s{seed}-{max_new}-{min_freq}"
        if not (out / "vocab_extension.json").is_file():
            extend_vocab(
                str(gen),
                train,
                out,
                max_new=max_new,
                min_freq=min_freq,
                init=init,
                seed=seed,
                overwrite=True,
                max_words=words,
                multi_word_share=share,
            )
        terms = "" if words < 2 else f" ({variant_label(words, share)[2:]})"
        # the run's name carries the extension's settings: a run of another extension is never reused
        starts[f"extend-vocab{terms}, {init} init"] = (out, f"{variant}-init-{max_new}-{min_freq}")
    train_file = _write_jsonl(train, cache / f"{domain}-train.jsonl")
    runs = {}
    for system, (start, variant) in starts.items():
        run = cache / f"run-{variant}-{tag}"
        if (read_state(run) or {}).get("step") != steps:
            log(f"  {domain} seed {seed}: {steps} pretrain steps for {system}")
            pretrain(
                str(start),
                [train_file],
                run,
                steps=steps,
                save_every=steps,
                seed=seed,
                force=True,
                **settings,
            )
        runs[system] = (start, run)
    return runs


def mlm_row(
    system: str, domain: str, seed: int, start: Path, run: Path, held: List[str], window: int
) -> dict:
    """Held-out MLM loss of one system before and after its domain pretraining."""
    loss0, ppw = _held_out(start, held, window)
    loss, _ = _held_out(run, held, window)
    log(
        f"  seed {seed} {system}: loss/piece {loss0:.3f} -> {loss:.3f}, loss/word {loss0 * ppw:.3f} -> {loss * ppw:.3f}"
    )
    return {
        "system": system,
        "domain": domain,
        "metric": "held-out MLM loss",
        "seed": seed,
        "pieces_per_word": round(ppw, 4),
        "loss_per_piece_before": round(loss0, 4),
        "loss_per_piece": round(loss, 4),
        "loss_per_word_before": round(loss0 * ppw, 4),
        "loss_per_word": round(loss * ppw, 4),
    }


def mlm_rows(
    small: Path,
    general: List[str],
    train: List[str],
    held: List[str],
    cache: Path,
    seeds: int,
    general_steps: int,
    domain_steps: int,
    max_new: int,
    min_freq: int,
    lr: float,
    batch_tokens: int,
    window: int,
) -> List[dict]:
    settings = _settings(lr, batch_tokens, window)
    gen = general_checkpoint(small, general, cache, general_steps, settings)
    rows = []
    for seed in range(seeds):
        runs = domain_runs(
            gen, train, "demo-reports", cache, seed, domain_steps, max_new, min_freq, settings
        )
        for system, (start, run) in runs.items():
            rows.append(mlm_row(system, "demo-reports", seed, start, run, held, window))
    return rows


def _mean_range(values: Sequence[float]) -> str:
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


PART_OF = {
    "pieces per word (held out)": "pieces",
    "nlp.pipe words/s": "speed",
    "held-out MLM loss": "mlm",
}


def summarize(
    rows: Sequence[dict], general_steps: int, domain_steps: int, min_freq: int = 5
) -> List[dict]:
    summary = []
    for r in rows:
        if PART_OF[r["metric"]] == "pieces":
            summary.append(
                {
                    "claim": f"{r['system'].split(' + ', 1)[1]} ({r['new_tokens']} tokens mined from {r['domain']} train, min-freq {min_freq}) cuts pieces per held-out word (each document read as the pipeline reads it: a leading space)",
                    "figure": f"{r['drop_pct']}% ({r['before']} -> {r['after']})",
                    "range": "deterministic (one mining)",
                    "baseline": f"{r['system'].split()[0]} base tokenizer",
                    "split": f"{r['domain']} held out",
                    "caveat": f"base tokenizer trained on CoNLL-2003 train, not ModernBERT-base's 50k one; single-word merges cannot go below "
                    f"{r['floor_pre_tokens_per_word']} (pre-tokens per word, a {r['max_drop_pct']}% drop)"
                    + (
                        ""
                        if not r.get("multi_word_terms")
                        else f"; {r['multi_word_terms']} multi-word tokens cross it"
                    ),
                }
            )
    speed = {(r["domain"], r["system"]): r for r in rows if PART_OF[r["metric"]] == "speed"}
    for (domain, system), e in speed.items():
        b = speed.get((domain, "base"))
        if system == "base" or b is None:
            continue
        summary.append(
            {
                "claim": f"nlp.pipe words/s, {system} vs base checkpoint ({domain} held out)",
                "figure": f"{e['median'] / b['median']:.2f}x ({e['median']} vs {b['median']} words/s)",
                "range": f"extended {e['range']}, base {b['range']} ({b['rounds']} rotated rounds)",
                "baseline": "base checkpoint",
                "split": f"{domain} held out",
                "caveat": f"small 128x4 random checkpoint, 1 thread, load average {b['load_avg_1min']} on a shared 2-core machine",
            }
        )
    by: Dict[str, List[dict]] = {}
    for r in rows:
        if PART_OF[r["metric"]] == "mlm":
            by.setdefault(r["system"], []).append(r)
    for system, rs in by.items():
        summary.append(
            {
                "claim": f"held-out MLM loss per word after {domain_steps} domain pretrain steps: {system}",
                "figure": _mean_range([r["loss_per_word"] for r in rs]),
                "range": f"mean (min-max) over {len(rs)} seeds; per piece {_mean_range([r['loss_per_piece'] for r in rs])}",
                "baseline": "no extension",
                "split": "demo-reports dev",
                "caveat": f"small random checkpoint pretrained {general_steps} steps on CoNLL-2003 train (general text) first; loss per word = loss per masked piece x pieces per word",
            }
        )
    return summary


def run_vocab(
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/vocab.json"),
    threads: int = 1,
    max_new: int = 2000,
    min_freq: int = 5,
    demo_docs: int = 3000,
    speed_rounds: int = 6,
    seeds: int = 3,
    general_steps: int = 300,
    domain_steps: int = 120,
    lr: float = 1e-3,
    batch_tokens: int = 2048,
    window: int = 128,
    parts: str = "pieces,speed,mlm",
    max_words: str = "1,3",
    domains_run: str = "demo-reports,clinc150",
) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    cache = Path(cache_dir) / "vocab"
    wanted = set(parts.split(","))
    bases = {
        "bpe8k": bdata.ensure_checkpoint(
            Path(cache_dir) / "random-small", "small", data_dir, log=log
        ),
        "bpe16k": bdata.ensure_checkpoint(
            Path(cache_dir) / "random-7m", "pretrain", data_dir, log=log
        ),
    }
    doms = {
        d: texts for d, texts in domains(data_dir, demo_docs).items() if d in domains_run.split(",")
    }
    # A run of some parts keeps the other parts' rows of an earlier run in `output`.
    rows: List[dict] = []
    if output is not None and Path(output).exists():
        rows = [
            r
            for r in json.loads(Path(output).read_text())["rows"]
            if PART_OF[r["metric"]] not in wanted
        ]
    extended: Dict[str, Path] = {}
    variants = parse_variants(max_words)
    if "pieces" in wanted or "speed" in wanted:
        piece_rows, extended = pieces_rows(bases, doms, cache, max_new, min_freq, variants)
        rows += piece_rows
    if "speed" in wanted:
        for dom, (_, held) in doms.items():
            log(f"nlp.pipe speed, base vs extended (bpe8k, {dom})")
            exts = {
                extension_name("bpe8k", *w): extended[f"{extension_name('bpe8k', *w)}/{dom}"]
                for w in variants
            }
            rows += speed_rows(bases["bpe8k"], exts, held, dom, speed_rounds)
    if "mlm" in wanted:
        train, held = doms["demo-reports"]
        rows += mlm_rows(
            bases["bpe8k"],
            bdata.tokenizer_texts(data_dir),
            train,
            held,
            cache,
            seeds,
            general_steps,
            domain_steps,
            max_new,
            min_freq,
            lr,
            batch_tokens,
            window,
        )
    summary = summarize(rows, general_steps, domain_steps, min_freq)
    result = {
        **header(
            "vocab",
            f"python -m benchmarks vocab --parts {parts} --max-new {max_new} --min-freq {min_freq}"
            f" --max-words-per-term {max_words} --speed-rounds {speed_rounds} --domains {domains_run}"
            f" --output {output}",
            machine=machine_info(),
        ),
        "protocol": {
            "chooses": "nothing is tuned: --max-new, --min-freq and the pretrain budget are fixed in advance",
            "reports": "demo reports dev split (generator seed 0), CLINC150 val; mined on the train splits only",
            "checkpoint": "random-init small (128x4, BPE 8k) and 7M (256x6, BPE 16k); tokenizers trained on CoNLL-2003 train (general text)",
            "seeds": seeds,
        },
        "settings": {
            "max_new": max_new,
            "min_freq": min_freq,
            "max_words_per_term": variants,
            "demo_docs": demo_docs,
            "general_steps": general_steps,
            "domain_steps": domain_steps,
            "lr": lr,
            "batch_tokens": batch_tokens,
            "window": window,
            "threads": threads,
        },
        "columns": ["system", "domain", "metric"],
        "rows": rows,
        "summary": summary,
    }
    headers = ["system", "domain", "metric", "figures"]
    print(
        table(
            headers,
            [
                [
                    r["system"],
                    r["domain"],
                    r["metric"],
                    ", ".join(
                        f"{k} {v}" for k, v in r.items() if k not in ("system", "domain", "metric")
                    ),
                ]
                for r in rows
            ],
        )
    )
    write_json(output, result)
    return result


_D = defaults(run_vocab)


@app.command("vocab")
def vocab_cli(
    # fmt: off
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    output: Output = _D["output"],
    threads: Threads = _D["threads"],
    max_new: int = typer.Option(_D["max_new"], "--max-new", help="extend-vocab --max-new"),
    min_freq: int = typer.Option(_D["min_freq"], "--min-freq", help="extend-vocab --min-freq"),
    demo_docs: int = typer.Option(
        _D["demo_docs"], "--demo-docs", help="Demo reports generated (70/15/15 train/dev/test)"
    ),
    speed_rounds: int = typer.Option(
        _D["speed_rounds"], "--speed-rounds", help="Interleaved nlp.pipe rounds per system"
    ),
    seeds: int = typer.Option(_D["seeds"], "--seeds", help="Seeds of the MLM comparison"),
    general_steps: int = typer.Option(
        _D["general_steps"],
        "--general-steps",
        help="Pretrain steps on general text before the comparison",
    ),
    domain_steps: int = typer.Option(
        _D["domain_steps"],
        "--domain-steps",
        help="Pretrain steps on the demo train reports per system",
    ),
    lr: float = typer.Option(_D["lr"], "--lr"),
    batch_tokens: int = typer.Option(_D["batch_tokens"], "--batch-tokens"),
    window: int = typer.Option(_D["window"], "--window"),
    parts: str = typer.Option(_D["parts"], "--parts", help="Comma-separated: pieces, speed, mlm"),
    max_words: str = typer.Option(
        _D["max_words"],
        "--max-words-per-term",
        help="Comma-separated extend-vocab --max-words-per-term variants (pieces and speed); W/S: with --multi-word-share S",
    ),
    domains_run: str = typer.Option(
        _D["domains_run"], "--domains", help="Comma-separated: demo-reports, clinc150"
    ),
    # fmt: on
) -> None:
    """Pieces per word, nlp.pipe speed and held-out MLM loss with and without extend-vocab."""
    run_vocab(
        cache_dir=cache_dir,
        data_dir=data_dir,
        output=output,
        threads=threads,
        max_new=max_new,
        min_freq=min_freq,
        demo_docs=demo_docs,
        speed_rounds=speed_rounds,
        seeds=seeds,
        general_steps=general_steps,
        domain_steps=domain_steps,
        lr=lr,
        batch_tokens=batch_tokens,
        window=window,
        parts=parts,
        max_words=max_words,
        domains_run=domains_run,
    )
