"""Pretraining benchmarks (issue 12), run from a checkout: `python benchmarks/pretrain.py speed|value`.

speed: masked-LM training throughput (real pieces per second, optimizer step included) of
  ours (`spacy_modernbert.pretrain`: packed unpadded encoder, loss on masked rows only)
  vs `transformers.ModernBertForMaskedLM` + `DataCollatorForLanguageModeling` in a plain
  AdamW loop, on the same checkpoint and the same windows per step. Anchor set-ups:
  `hf-padded` (the collator pads each batch: the issue's anchor), `hf-padded-sparse`
  (ModernBERT's own `sparse_prediction=True`, logits on masked rows only) and `hf-blocks`
  (run_mlm.py's default `group_texts`: the batch's pieces concatenated into full blocks,
  no padding) and `hf-grouped` (length-grouped batches, as HF Trainer's `group_by_length`:
  the padded collator then pads little). Each round times every system in alternating
  order (ABCD, DCBA, ...); `--rounds` (default 5); the median and range of the per-round
  ratios are reported and written to benchmarks/results/pretrain_speed.json.
value: (`ner` runs one of its two NER fine-tunings alone) the same random ~7M-parameter checkpoint (6 x 256, BPE 16k trained on CoNLL-2003
  train only) pretrained on CoNLL-2003 train + SMS (train split) text for a fixed number
  of steps; held-out MLM loss (CoNLL-2003 valid text, never pretrained on) before/after,
  and CoNLL-2003 valid NER F1 of our pipeline fine-tuned from each checkpoint with the same
  budget as `benchmark accuracy` (4000 sentences, 3 epochs, batch 32, spaCy Adam at its TUNED_LR).
No pretrained weights exist offline: both NER runs start from the same random checkpoint,
one of them after our pretraining.
"""

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import data as bdata  # noqa: E402
from benchmarks.results import git_commit, median_range, ratio_verdict, record, round_order  # noqa: E402

CHECKPOINT = "random-7m-conll"
PRETRAINED = "pretrained-7m"


def texts(data_dir: Path, seed: int = 0, held_out: Optional[int] = None):
    """(pretraining text, held-out text): CoNLL train + SMS train split; CoNLL valid."""
    train = [" ".join(words) for words, _ in bdata.read_conll(data_dir / bdata.CONLL_TRAIN)]
    sms_train, _ = bdata.stratified_split(bdata.read_sms(data_dir / bdata.SMS), 0.3, seed)
    train += [text for _, text in sms_train]
    held = [
        " ".join(words)
        for words, _ in bdata.read_conll(data_dir / bdata.CONLL_VALID, limit=held_out)
    ]
    return train, held


def speed(args) -> dict:
    import torch
    from transformers import DataCollatorForLanguageModeling, ModernBertForMaskedLM

    from spacy_modernbert.pretrain.data import BatchPlan, tokenize_windows
    from spacy_modernbert.pretrain.loop import _forward, masked_step_inputs
    from spacy_modernbert.pretrain.masking import make_collator
    from spacy_modernbert.pretrain.model import load_masked_lm

    torch.set_num_threads(args.threads)
    git_commit()  # the code that runs: read now, not when the result is written
    ckpt = bdata.ensure_checkpoint(args.workdir / CHECKPOINT, "pretrain", args.data_dir)
    train, _ = texts(args.data_dir)
    ours, tok, _, _ = load_masked_lm(ckpt)
    windows = tokenize_windows(train, tok, args.window)
    plan = BatchPlan([len(w) for w in windows], args.batch_tokens, args.seed)
    n_steps = args.rounds * args.steps + 1
    batches = [[windows[i] for i in plan.batch(s)] for s in range(n_steps)]
    collator = make_collator(tok, args.mask_prob)
    special = torch.tensor(sorted(set(tok.all_special_ids)))
    hf_collator = DataCollatorForLanguageModeling(
        tok, mlm_probability=args.mask_prob, return_tensors="pt"
    )

    def adamw(model):
        return torch.optim.AdamW(
            model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01
        )

    def step_ours(model, opt, batch, s):
        inputs, positions, lengths, labels, n = masked_step_inputs(
            collator, batch, special, s, 0, 1
        )
        (
            _forward(model, inputs, positions, lengths, labels, torch.device("cpu")) / max(n, 1)
        ).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def step_hf(model, opt, batch, s):
        features = hf_collator([{"input_ids": w} for w in batch])
        model(**features).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def step_hf_blocks(model, opt, batch, s):
        flat = [t for w in batch for t in w]
        blocks = [flat[i : i + args.window] for i in range(0, len(flat), args.window)]
        step_hf(model, opt, blocks, s)

    def grouped(n: int):
        """Length-grouped batches (HF Trainer's `group_by_length` idea): windows sorted by length,
        cut at the same piece budget, batch order shuffled; the padded collator then pads little."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        out, current, used = [], [], 0
        for i in order:
            if current and used + len(windows[i]) > args.batch_tokens:
                out.append(current)
                current, used = [], 0
            current.append(windows[i])
            used += len(windows[i])
        if current:
            out.append(current)
        random.Random(args.seed).shuffle(out)
        return [out[k % len(out)] for k in range(n)]

    def hf_model(sparse: bool):
        model = ModernBertForMaskedLM.from_pretrained(
            str(ckpt), attn_implementation="sdpa", torch_dtype="float32"
        )
        model.config.sparse_prediction = sparse
        model.sparse_prediction = sparse
        return model.train()

    systems = {
        "ours": (ours.train(), step_ours),
        "hf-padded": (hf_model(False), step_hf),
        "hf-padded-sparse": (hf_model(True), step_hf),
        "hf-blocks": (hf_model(False), step_hf_blocks),
        "hf-grouped": (hf_model(False), step_hf),
    }
    # every system runs the same windows per step, except hf-grouped (the same piece budget, length-grouped)
    batches_of = {name: (grouped(n_steps) if name == "hf-grouped" else batches) for name in systems}
    opts = {name: adamw(model) for name, (model, _) in systems.items()}
    for name, (model, fn) in systems.items():  # warm-up
        fn(model, opts[name], batches_of[name][0], 0)
        print(f"warmed up {name}", flush=True)
    rates = {name: [] for name in systems}
    for r in range(args.rounds):
        chunk = range(1 + r * args.steps, 1 + (r + 1) * args.steps)
        for name in round_order(list(systems), r):  # alternating order, ABCD DCBA ...
            model, fn = systems[name]
            n_tokens = sum(len(w) for s in chunk for w in batches_of[name][s])
            t0 = time.perf_counter()
            for s in chunk:
                fn(model, opts[name], batches_of[name][s], s)
            rates[name].append(n_tokens / (time.perf_counter() - t0))
        print(
            f"round {r + 1}/{args.rounds}: "
            + "  ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()),
            flush=True,
        )
    med = {name: statistics.median(v) for name, v in rates.items()}
    paired = {
        k: median_range([a / b for a, b in zip(rates["ours"], rates[k])])
        for k in rates
        if k != "ours"
    }
    rows = [
        {
            "system": k,
            "pieces/s (median)": round(med[k]),
            "range": f"{min(v):,.0f}-{max(v):,.0f}",
            "ours / system per round: median (range)": "-"
            if k == "ours"
            else f"{paired[k]['median']:.2f}x ({paired[k]['range'][0]:.2f}-{paired[k]['range'][1]:.2f})",
        }
        for k, v in rates.items()
    ]
    summary = [
        {
            "claim": f"pretrain throughput: ours vs {k}: {ratio_verdict(*paired[k]['range'])}",
            "figure": f"{paired[k]['median']:.2f}x",
            "range": f"{paired[k]['range'][0]:.2f}-{paired[k]['range'][1]:.2f}x",
            "baseline": k,
            "split": f"{args.rounds} interleaved rounds of {args.steps} steps, median",
            "caveat": f"CPU, torch threads {args.threads}, {args.batch_tokens} pieces per step, shared machine",
        }
        for k in ("hf-grouped", "hf-blocks")
        if k in paired
    ]
    result = record(
        "pretrain_speed",
        "python benchmarks/pretrain.py " + " ".join(sys.argv[1:]),
        {
            "chooses": "nothing is tuned (the same AdamW settings, windows and piece budget for every system)",
            "reports": f"{args.rounds} rounds in alternating order, median and range",
            "seeds": args.rounds,
            "checkpoint": "random-7m: 6 x 256, random weights, BPE 16k on CoNLL-2003 train only; the same for every system",
        },
        ["system", "pieces/s (median)", "range", "ours / system per round: median (range)"],
        rows,
        summary,
        checkpoint=str(ckpt),
        threads=args.threads,
        batch_tokens=args.batch_tokens,
        window=args.window,
        mask_prob=args.mask_prob,
        steps_per_round=args.steps,
        rounds=args.rounds,
        tokens_per_s=rates,
        median_tokens_per_s=med,
        speedup_vs={k: med["ours"] / v for k, v in med.items() if k != "ours"},
    )
    print("\npieces/s (median of rounds): " + "  ".join(f"{k} {v:,.0f}" for k, v in med.items()))
    print(
        "ours / anchor (median of rounds): "
        + "  ".join(f"{k} {v['median']:.2f}x" for k, v in paired.items())
    )
    return result


def held_out(checkpoint: Path, held, args) -> float:
    import torch

    from spacy_modernbert.pretrain.data import tokenize_windows
    from spacy_modernbert.pretrain.loop import held_out_loss
    from spacy_modernbert.pretrain.masking import make_collator
    from spacy_modernbert.pretrain.model import load_masked_lm

    torch.manual_seed(args.seed)
    model, tok, _, _ = load_masked_lm(checkpoint)
    windows = tokenize_windows(held, tok, args.window)
    special = torch.tensor(sorted(set(tok.all_special_ids)))
    return held_out_loss(
        model,
        make_collator(tok, args.mask_prob),
        windows,
        special,
        args.batch_tokens,
        torch.device("cpu"),
    )


def ner(checkpoint: Path, args) -> dict:
    """CoNLL valid NER F1 of our pipeline fine-tuned from `checkpoint` (benchmark accuracy's loop)."""
    import torch

    from benchmarks.accuracy import train_ours_ner

    torch.set_num_threads(args.threads)
    conll = bdata.read_conll(args.data_dir / bdata.CONLL_TRAIN)
    random.Random(args.seed).shuffle(conll)
    ner_train, ner_valid = (
        conll[: args.ner_train],
        bdata.read_conll(args.data_dir / bdata.CONLL_VALID, limit=args.ner_valid),
    )
    scores = train_ours_ner(Path(checkpoint), ner_train, ner_valid, args.epochs, 32, args.seed)
    scores.update(
        checkpoint=str(checkpoint),
        n_train=len(ner_train),
        n_valid=len(ner_valid),
        epochs=args.epochs,
        batch_size=32,
    )
    print(f"NER F1 from {checkpoint}: {100 * scores['f1']:.2f}", flush=True)
    return scores


def value(args) -> dict:
    import torch

    from spacy_modernbert.pretrain.loop import pretrain

    torch.set_num_threads(args.threads)
    ckpt = bdata.ensure_checkpoint(args.workdir / CHECKPOINT, "pretrain", args.data_dir)
    out = args.pretrained or args.workdir / PRETRAINED
    train_text, held = texts(args.data_dir, args.seed, args.held_out)
    text_file = args.workdir / "pretrain_text.txt"
    text_file.write_text("\n".join(t.replace("\n", " ") for t in train_text), encoding="utf8")
    result = {
        "benchmark": "pretrain-value",
        "checkpoint": str(ckpt),
        "pretrained": str(out),
        "threads": args.threads,
        "settings": {
            k: v
            for k, v in vars(args).items()
            if k
            in (
                "steps",
                "lr",
                "batch_tokens",
                "window",
                "mask_prob",
                "seed",
                "ner_train",
                "ner_valid",
                "held_out",
                "epochs",
            )
        },
        "n_pretrain_docs": len(train_text),
        "n_held_out_docs": len(held),
    }
    result["held_out_loss_before"] = held_out(ckpt, held, args)
    print(f"held-out MLM loss before: {result['held_out_loss_before']:.4f}", flush=True)
    if not args.reuse:
        t0 = time.perf_counter()
        run = pretrain(
            ckpt,
            [text_file],
            out,
            steps=args.steps,
            lr=args.lr,
            batch_tokens=args.batch_tokens,
            window=args.window,
            mask_prob=args.mask_prob,
            seed=args.seed,
            save_every=max(1, args.steps // 4),
            eval_fraction=0.005,
            log_every=10,
            force=True,
        )
        result["pretrain_seconds"] = time.perf_counter() - t0
        result["pretrain_tokens_per_s"] = run["tokens_per_s"]
    result["held_out_loss_after"] = held_out(out, held, args)
    print(f"held-out MLM loss after: {result['held_out_loss_after']:.4f}", flush=True)
    from spacy_modernbert.pretrain.checkpoint import read_state

    result["pretrain_state"] = read_state(out)
    if not args.ner:
        return result
    result["ner"] = {}
    for name, path in (("without_pretraining", ckpt), ("with_pretraining", out)):
        result["ner"][name] = ner(path, args)
    result["ner"]["f1_gain_points"] = 100 * (
        result["ner"]["with_pretraining"]["f1"] - result["ner"]["without_pretraining"]["f1"]
    )
    print(
        f"\nheld-out MLM loss {result['held_out_loss_before']:.4f} -> {result['held_out_loss_after']:.4f}; "
        f"NER F1 {100 * result['ner']['without_pretraining']['f1']:.2f} -> {100 * result['ner']['with_pretraining']['f1']:.2f} "
        f"({result['ner']['f1_gain_points']:+.2f} points)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["speed", "value", "ner"])
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="ner: the checkpoint to fine-tune from"
    )
    parser.add_argument(
        "--pretrained",
        type=Path,
        default=None,
        help="value: where the pretrained checkpoint is written / reused (default: WORKDIR/pretrained-7m)",
    )
    parser.add_argument(
        "--no-ner",
        dest="ner",
        action="store_false",
        help="value: skip the two NER runs (run `ner` for each)",
    )
    parser.add_argument("--data-dir", type=Path, default=bdata.DEFAULT_DATA_DIR)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=ROOT / ".benchmark_cache" / "pretrain",
        help="Checkpoints are created / written here",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON results (default: benchmarks/pretrain_WHAT.json)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--mask-prob", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="speed: rounds, systems in alternating order (>= 5 for the page)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="speed: steps per round (default 4); value: pretraining steps (default 120)",
    )
    parser.add_argument(
        "--lr", type=float, default=1e-3, help="value: peak pretraining learning rate"
    )
    parser.add_argument("--ner-train", type=int, default=4000)
    parser.add_argument(
        "--ner-valid",
        type=int,
        default=None,
        help="value: CoNLL valid sentences for NER F1 (default: all)",
    )
    parser.add_argument(
        "--held-out",
        type=int,
        default=None,
        help="value: CoNLL valid sentences for the held-out MLM loss (default: all)",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="value: reuse the pretrained checkpoint already in --workdir",
    )
    args = parser.parse_args()
    args.steps = args.steps or (4 if args.what == "speed" else 120)
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.what == "ner":
        result = {"benchmark": "pretrain-ner", **ner(args.checkpoint, args)}
    else:
        result = speed(args) if args.what == "speed" else value(args)
    result["total_seconds"] = time.perf_counter() - t0
    result["utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    output = args.output or ROOT / "benchmarks" / "results" / f"pretrain_{args.what}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2), encoding="utf8")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
