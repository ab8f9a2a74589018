"""`python -m benchmarks speed`: inference and training throughput, ours vs the baselines, vs the FLOP limit.

Everything runs in one process on one checkpoint and the same documents:

* inference: `nlp.pipe` words/s and tokens/s of a transformer + ner + anomaly_scorer
  pipeline with our architecture and with the spacy-transformers baseline (`TransformerModel.v3`), and raw
  Hugging Face `ModernBertModel` forward (the HF baseline), on (a) single sentences, (b) ~300-word
  paragraphs, (c) one ~8,000-token document; with the peak memory of each run and the
  fraction of the hardware limit (measured matmul rate / forward FLOPs per token);
* training: words/s of one `spacy train` update (forward, backward, every pipe's optimizer step:
  `systems.spacy_train_update`)
  for ner + anomaly_scorer on CoNLL-2003 sentences, ours vs the spacy-transformers baseline.

Tokens are counted the same way for every system (the checkpoint tokenizer's pieces of each
doc, with the leading space, plus [CLS] and [SEP]) -- the work one window per doc needs --
so tokens/s ratios equal words/s ratios. The spacy-transformers baseline's strided spans recompute overlaps; that
extra work is its cost, not counted as tokens.
"""

import random
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import typer

from . import data as bdata
from ._app import CacheDir, Checkpoint, DataDir, Output, Repeats, Seed, Threads, app, defaults
from .report import PeakMemory, log, machine_info, ratio, speed_tables, write_json
from .results import command_line, git_commit, ratio_verdict, record, round_order

SYSTEMS = ("ours", "spacy_transformers_baseline", "hf_baseline", "ours_int8", "ours_bf16")
# ours with `quantize` set (CPU only; bf16 only where the CPU has native bf16 matmul)
QUANTIZED = {"ours_int8": "int8", "ours_bf16": "bf16"}


def run_speed(
    checkpoint: Optional[Path] = None,
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/speed.json"),
    threads: int = 2,
    n_short: int = 192,
    n_paragraphs: int = 16,
    paragraph_words: int = 300,
    long_tokens: int = 8000,
    batch_size: int = 64,
    train_batch: int = 32,
    train_updates: int = 4,
    gpu_id: int = -1,
    systems: Sequence[str] = SYSTEMS,
    seed: int = 0,
    repeats: int = 3,
) -> Dict[str, Any]:
    import torch

    from .flops import flops_per_token, matmul_rate
    from .systems import RawHF, build_pipeline, toy_examples

    t_start = time.perf_counter()
    git_commit()  # the code that runs: read now, not when the result is written
    torch.set_num_threads(threads)
    device = f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu"
    bf16 = gpu_id >= 0
    if gpu_id >= 0:
        import spacy

        spacy.require_gpu(gpu_id)
    given_checkpoint = checkpoint is not None
    if checkpoint is None:
        checkpoint = bdata.ensure_checkpoint(
            Path(cache_dir) / "modernbert-base-random-conll", "base", data_dir, log=log
        )
    checkpoint = Path(checkpoint)
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(str(checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True)

    def doc_tokens(text: str) -> int:
        return len(tokenizer.backend_tokenizer.encode(" " + text, add_special_tokens=False).ids) + 2

    matmul_dtype = "bfloat16" if bf16 else "float32"
    log(f"measuring the matmul rate ({threads} threads, {device})")
    rate = matmul_rate(device=device, dtype=matmul_dtype, repeats=10)
    log(f"matmul rate: {rate['flops_per_s'] / 1e9:.1f} GFLOP/s")

    sentences = bdata.sentence_texts(data_dir)
    regimes = [
        ("short", bdata.short_docs(sentences, n_short)),
        (
            f"paragraphs (~{paragraph_words} words)",
            bdata.paragraphs(sentences, n_paragraphs, paragraph_words, offset=n_short),
        ),
        (
            f"long ({long_tokens} tokens)",
            [
                bdata.long_doc(
                    sentences, doc_tokens, long_tokens, offset=n_short + 40 * n_paragraphs
                )
            ],
        ),
    ]
    warm_texts = sentences[:8] + bdata.paragraphs(sentences, 2, paragraph_words)

    from spacy_modernbert.encoder.quantize import capability, native_bf16

    skipped = {"ours_int8": gpu_id >= 0, "ours_bf16": gpu_id >= 0 or not native_bf16()}
    if any(skipped.get(s) for s in systems):
        log(
            "skipping "
            + ", ".join(s for s in systems if skipped.get(s))
            + " (CPU only; bf16 needs native bf16 matmul)"
        )
    systems = [s for s in systems if not skipped.get(s)]
    kernels = capability()
    log(f"CPU kernels: {kernels}")
    log("building pipelines: " + ", ".join(systems))
    runners: Dict[str, Any] = {}
    pipelines = {}
    for system in systems:
        if system == "hf_baseline":
            hf = RawHF(checkpoint, device=device, bf16=bf16)
            runners[system] = hf.encode
        else:
            if system in QUANTIZED:
                nlp = build_pipeline("ours", checkpoint, quantize=QUANTIZED[system])
            else:
                nlp = build_pipeline(system, checkpoint, mixed_precision=bf16)
            nlp.initialize(lambda nlp=nlp: toy_examples(nlp, sentences[:16]))
            pipelines[system] = nlp
            runners[system] = lambda texts, nlp=nlp: list(nlp.pipe(texts, batch_size=batch_size))
        runners[system](warm_texts)

    inference = []
    for name, texts in regimes:
        lengths = [doc_tokens(t) for t in texts]
        words = sum(bdata.n_words(t) for t in texts)
        tokens = sum(lengths)
        fpt = flops_per_token(config, lengths)
        # the machine's rate right before this regime (a shared VM drifts over minutes)
        regime_rate = matmul_rate(device=device, dtype=matmul_dtype, repeats=10)["flops_per_s"]
        log(f"{name}: matmul rate {regime_rate / 1e9:.1f} GFLOP/s")
        entry: Dict[str, Any] = {
            "name": name,
            "n_docs": len(texts),
            "n_words": words,
            "n_tokens": tokens,
            "flops_per_token": fpt,
            "matmul_flops_per_s": regime_rate,
            "limit_tokens_per_s": regime_rate / fpt,
            "systems": {},
        }
        if name.startswith("long"):
            from spacy_modernbert.encoder.windows import plan_windows

            if "ours" in pipelines:
                trf = pipelines["ours"].get_pipe("transformer").model
                entry["ours_windows"] = len(
                    plan_windows(
                        0, tokens - 2, trf.attrs["max_length"], trf.attrs["window_overlap"]
                    )
                )
        samples: Dict[str, List[float]] = {system: [] for system in systems}
        peaks: Dict[str, List[float]] = {system: [] for system in systems}
        kinds: Dict[str, str] = {}
        for round_ in range(repeats):
            # alternating order (ABC, CBA, ...): no system always runs first or last
            for system in round_order(systems, round_):
                with PeakMemory(device) as mem:
                    t0 = time.perf_counter()
                    runners[system](texts)
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    samples[system].append(time.perf_counter() - t0)
                if mem.peak_mib is not None:
                    peaks[system].append(mem.peak_mib)
                kinds[system] = mem.kind
            log(
                f"{name}, round {round_ + 1}/{repeats}: "
                + ", ".join(f"{s_} {words / samples[s_][-1]:.0f}" for s_ in systems)
                + " words/s"
            )
        for system in systems:
            seconds = statistics.median(samples[system])
            tps = tokens / seconds
            entry["systems"][system] = {
                "seconds": seconds,
                "words_per_s": words / seconds,
                "tokens_per_s": tps,
                "words_per_s_range": [words / max(samples[system]), words / min(samples[system])],
                "seconds_samples": samples[system],
                "flop_limit_fraction": tps / entry["limit_tokens_per_s"],
                "peak_memory_mib": max(peaks[system]) if peaks[system] else None,
                "memory_kind": kinds[system],
            }
        s = entry["systems"]

        def paired(a: str, b: str) -> Dict[str, Any]:
            """Ratio of words/s a/b per round (the same round: the same machine state), median and range."""
            if a not in samples or b not in samples:  # noqa: B023 (called before the loop moves on)
                return {}
            per_round = [tb / ta for ta, tb in zip(samples[a], samples[b])]  # noqa: B023 (called before the loop moves on)
            return {
                "median": statistics.median(per_round),
                "range": [min(per_round), max(per_round)],
            }

        entry["ratios"] = {
            "ours/spacy_transformers_baseline": ratio(
                s.get("ours", {}).get("words_per_s"),
                s.get("spacy_transformers_baseline", {}).get("words_per_s"),
            ),
            "ours/hf_baseline": ratio(
                s.get("ours", {}).get("words_per_s"), s.get("hf_baseline", {}).get("words_per_s")
            ),
        }
        entry["paired_ratios"] = {
            k: paired("ours", k.split("/")[1])
            for k in ("ours/spacy_transformers_baseline", "ours/hf_baseline")
        }
        for q in QUANTIZED:
            if q in s:
                entry["ratios"][f"{q}/ours"] = ratio(
                    s[q]["words_per_s"], s.get("ours", {}).get("words_per_s")
                )
                entry["paired_ratios"][f"{q}/ours"] = paired(q, "ours")
        inference.append(entry)
    del runners
    # The limit uses the highest matmul rate measured in this run (at start and before each
    # regime): on a shared machine a single reading can dip, which would flatter the fraction.
    peak_rate = max([rate["flops_per_s"]] + [e["matmul_flops_per_s"] for e in inference])
    for e in inference:
        e["limit_tokens_per_s"] = peak_rate / e["flops_per_token"]
        for m in e["systems"].values():
            m["flop_limit_fraction_regime_rate"] = m["flop_limit_fraction"]
            m["flop_limit_fraction"] = m["tokens_per_s"] / e["limit_tokens_per_s"]

    training = None
    train_systems = [s for s in systems if s in ("ours", "spacy_transformers_baseline")]
    if train_updates > 0 and train_systems:
        training = run_training(
            checkpoint, data_dir, train_systems, train_batch, train_updates, bf16, seed, repeats
        )

    rows, summary = speed_rows(inference, training, repeats)
    result = record(
        "speed",
        command_line("python -m benchmarks speed"),
        {
            "chooses": "nothing is tuned (fixed batch size and settings for every system)",
            "reports": f"{repeats} interleaved repeats per system (alternating order), median and range",
            "checkpoint": ", ".join(f"{k} {v}" for k, v in bdata.model_summary(config).items())
            + ", random weights, the same for every system"
            + ("" if given_checkpoint else "; BPE on CoNLL-2003 train only"),
            "seeds": repeats,
        },
        [
            "regime",
            "system",
            "words/s (median)",
            "range",
            "ratio per round: median (range)",
            "peak MiB",
        ],
        rows,
        summary,
        machine=machine_info(device),
        checkpoint=str(checkpoint),
        model=bdata.model_summary(config),
        settings={
            "threads": threads,
            "batch_size": batch_size,
            "bf16": bf16,
            "attention": "sdpa",
            "cpu_kernels": kernels,
            "spacy_transformers_baseline_spans": "strided_spans.v1 window 128 stride 96",
            "train_batch": train_batch,
            "train_updates": train_updates,
            "repeats": repeats,
        },
        matmul=rate,
        matmul_peak_flops_per_s=peak_rate,
        inference=inference,
        training=training,
        total_seconds=time.perf_counter() - t_start,
    )
    for t in speed_tables(result):
        print("\n" + t)
    print()
    write_json(output, result)
    return result


def speed_rows(inference: List[Dict[str, Any]], training: Optional[Dict[str, Any]], repeats: int):
    """The page's rows (one per regime and system) and summary claims (ours vs each baseline, per regime)."""
    rows, summary = [], []

    def add(regime: str, system: str, m: Dict[str, Any], key: str, paired: Dict[str, Any]) -> None:
        lo, hi = m["words_per_s_range"]
        ratio_text = (
            "-"
            if not paired
            else f"{key} {paired['median']:.2f}x ({paired['range'][0]:.2f}-{paired['range'][1]:.2f})"
        )
        rows.append(
            {
                "regime": regime,
                "system": system,
                "words/s (median)": round(m["words_per_s"], 1),
                "range": f"{lo:.1f}-{hi:.1f}",
                "ratio per round: median (range)": ratio_text,
                "peak MiB": None
                if m.get("peak_memory_mib") is None
                else round(m["peak_memory_mib"], 1),
            }
        )

    sections = [(e["name"], e["systems"], e.get("paired_ratios", {})) for e in inference]
    if training:
        sections.append(
            (
                "training (ner + anomaly_scorer)",
                training["systems"],
                training.get("paired_ratios", {}),
            )
        )
    for regime, systems, paired in sections:
        for system, m in systems.items():
            key = f"ours/{system}" if f"ours/{system}" in paired else f"{system}/ours"
            add(regime, system, m, key, paired.get(key, {}) if system != "ours" else {})
        for key, r in paired.items():
            if key.startswith("ours/") and r:
                summary.append(
                    {
                        "claim": f"{regime}: ours vs {key.split('/')[1]} (words/s): {ratio_verdict(*r['range'])}",
                        "figure": f"{r['median']:.2f}x",
                        "range": f"{r['range'][0]:.2f}-{r['range'][1]:.2f}x",
                        "baseline": key.split("/")[1],
                        "split": f"{repeats} interleaved repeats, median",
                        "caveat": "shared 2-core CPU, random weights; see the run's load average",
                    }
                )
    return rows, summary


def _train_examples(nlp, data_dir: Path, n: int, seed: int) -> List[Any]:
    """CoNLL-2003 train sentences with their entities, and a random 10% flagged anomalous."""
    from spacy.tokens import Doc
    from spacy.training import Example, iob_to_biluo

    path = Path(data_dir) / bdata.CONLL_TRAIN
    rng = random.Random(seed)
    if path.exists():
        sents = [s for s in bdata.read_conll(path, limit=4 * n) if len(s[0]) >= 5][:n]
    else:
        sents = [
            (t.split(), ["O"] * len(t.split())) for t in bdata.sentence_texts(data_dir, limit=n)
        ]
    examples = []
    for words, tags in sents:
        doc = Doc(nlp.vocab, words=words)
        ents = iob_to_biluo(list(tags))
        cats = {"ANOMALY": 1.0 if rng.random() < 0.1 else 0.0}
        examples.append(Example.from_dict(doc, {"words": words, "entities": ents, "cats": cats}))
    return examples


def run_training(
    checkpoint: Path,
    data_dir: Path,
    systems: Sequence[str],
    batch: int,
    updates: int,
    bf16: bool,
    seed: int,
    repeats: int = 3,
) -> Dict[str, Any]:
    """Words/s of `spacy train` updates: every system built and warmed up first, then `repeats`
    rounds of `updates` updates each, in alternating order; median and range per system."""
    import spacy

    from .systems import build_pipeline, spacy_train_update

    out: Dict[str, Any] = {
        "data": "CoNLL-2003 train sentences (entities) + random ANOMALY cats",
        "systems": {},
    }
    state = {}
    for system in systems:
        spacy.util.fix_random_seed(seed)
        nlp = build_pipeline(system, checkpoint, mixed_precision=bf16)
        examples = _train_examples(nlp, data_dir, batch * (updates * repeats + 1), seed)
        optimizer = nlp.initialize(lambda: examples)  # noqa: B023 (called before the loop moves on)
        batches = [examples[i * batch : (i + 1) * batch] for i in range(updates * repeats + 1)]
        spacy_train_update(nlp, batches[0], optimizer, drop=0.1)  # warm-up update, not timed
        state[system] = (nlp, optimizer, batches[1:])
    samples: Dict[str, List[float]] = {system: [] for system in systems}
    seconds: Dict[str, float] = {system: 0.0 for system in systems}
    for round_ in range(repeats):
        for system in round_order(systems, round_):
            nlp, optimizer, batches = state[system]
            mine = batches[round_ * updates : (round_ + 1) * updates]
            t0 = time.perf_counter()
            for b in mine:
                spacy_train_update(nlp, b, optimizer, drop=0.1)
            elapsed = time.perf_counter() - t0
            seconds[system] += elapsed
            samples[system].append(sum(len(eg.reference) for b in mine for eg in b) / elapsed)
        log(
            f"training, round {round_ + 1}/{repeats}: "
            + ", ".join(f"{s_} {samples[s_][-1]:.1f}" for s_ in systems)
            + " words/s"
        )
    for system in systems:
        wps = samples[system]
        out["systems"][system] = {
            "words_per_s": statistics.median(wps),
            "words_per_s_range": [min(wps), max(wps)],
            "words_per_s_samples": wps,
            "updates": updates * repeats,
            "seconds": seconds[system],
        }
    s = out["systems"]
    out["ratios"] = {
        "ours/spacy_transformers_baseline": ratio(
            s.get("ours", {}).get("words_per_s"),
            s.get("spacy_transformers_baseline", {}).get("words_per_s"),
        )
    }
    if "ours" in samples and "spacy_transformers_baseline" in samples:
        per_round = [a / b for a, b in zip(samples["ours"], samples["spacy_transformers_baseline"])]
        out["paired_ratios"] = {
            "ours/spacy_transformers_baseline": {
                "median": statistics.median(per_round),
                "range": [min(per_round), max(per_round)],
            }
        }
    return out


_D = defaults(run_speed)


@app.command("speed")
def speed_cli(
    # fmt: off
    checkpoint: Checkpoint = _D["checkpoint"],
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    output: Output = _D["output"],
    threads: Threads = _D["threads"],
    n_short: int = typer.Option(_D["n_short"], "--n-short", help="Single-sentence docs"),
    n_paragraphs: int = typer.Option(_D["n_paragraphs"], "--n-paragraphs", help="Paragraph docs"),
    paragraph_words: int = typer.Option(
        _D["paragraph_words"], "--paragraph-words", help="Words per paragraph"
    ),
    long_tokens: int = typer.Option(
        _D["long_tokens"], "--long-tokens", help="Tokens of the long document"
    ),
    batch_size: int = typer.Option(_D["batch_size"], "--batch-size", help="nlp.pipe batch size"),
    train_batch: int = typer.Option(
        _D["train_batch"], "--train-batch", help="Sentences per training update"
    ),
    train_updates: int = typer.Option(
        _D["train_updates"], "--train-updates", help="Timed training updates per round (0: skip)"
    ),
    gpu_id: int = typer.Option(_D["gpu_id"], "--gpu-id", "-g", help="GPU id (bf16), or -1 for CPU"),
    systems: str = typer.Option(
        ",".join(SYSTEMS),
        "--systems",
        help="Comma-separated systems to run (ours_int8 / ours_bf16: ours with quantize set, CPU)",
    ),
    seed: Seed = _D["seed"],
    repeats: Repeats = _D["repeats"],
    # fmt: on
) -> None:
    """Inference and training throughput: ours vs spacy_transformers_baseline vs hf_baseline, interleaved repeats."""
    if repeats < 1:
        raise typer.BadParameter(
            "must be at least 1 (the page's figures use 3 or more)", param_hint="--repeats"
        )
    run_speed(
        checkpoint=checkpoint,
        cache_dir=cache_dir,
        data_dir=data_dir,
        output=output,
        threads=threads,
        n_short=n_short,
        n_paragraphs=n_paragraphs,
        paragraph_words=paragraph_words,
        long_tokens=long_tokens,
        batch_size=batch_size,
        train_batch=train_batch,
        train_updates=train_updates,
        gpu_id=gpu_id,
        systems=_systems(systems),
        seed=seed,
        repeats=repeats,
    )


def _systems(value: str) -> List[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}", param_hint="--systems"
        )
    return names
