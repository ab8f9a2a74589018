"""Does a checkpoint read its neighbours? Masked-LM loss of dev sentences alone vs with context.

Why (issue 33): document context can only help NER if the encoder draws on the sentences around
a word. This masks the same pieces of each dev sentence (the last 10% of CoNLL train, never
pretrained on) and scores the checkpoint's masked-LM loss per masked piece with the sentence
alone (`[CLS] sentence [SEP]`) and with up to `--context` pieces of its 10-sentence block on
each side in the same window (as `sentence_context` reads it). Lower with context = the encoder
uses it.

    python benchmarks/context_mlm.py --checkpoint .benchmark_cache/modernbert-small-pretrained-33

`--pretrain-steps N` also makes (once) and scores the protocol's checkpoint continued to N
pretraining steps on the same text (`ner_protocol.ensure_pretrained_longer`): does a longer
pretraining make the encoder read its neighbours more?
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def masked_losses(checkpoint: Path, sents: List[List[str]], context: int, mask_prob: float = 0.15):
    """(mean loss alone, mean loss with context, masked pieces) over `sents` in blocks of 10."""
    import torch
    from transformers import AutoTokenizer, ModernBertForMaskedLM

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    model = ModernBertForMaskedLM.from_pretrained(str(checkpoint)).eval()
    gen = torch.Generator().manual_seed(0)
    totals = {"alone": 0.0, "context": 0.0}
    count = 0
    for b in range(0, len(sents) - 9, 10):
        block = [
            tok(" " + " ".join(s), add_special_tokens=False)["input_ids"] for s in sents[b : b + 10]
        ]
        for k, ids in enumerate(block):
            if len(ids) < 3:
                continue
            left = [i for s in block[:k] for i in s][-context:] if context else []
            right = [i for s in block[k + 1 :] for i in s][:context]
            mask = torch.rand(len(ids), generator=gen) < mask_prob
            if not mask.any():
                continue
            for name, (lo, hi) in {"alone": ([], []), "context": (left, right)}.items():
                seq = torch.tensor([tok.cls_token_id, *lo, *ids, *hi, tok.sep_token_id])
                at = 1 + len(lo) + torch.nonzero(mask).flatten()
                labels = torch.full_like(seq, -100)
                labels[at] = seq[at]
                inputs = seq.clone()
                inputs[at] = tok.mask_token_id
                with torch.no_grad():
                    out = model(input_ids=inputs[None], labels=labels[None])
                totals[name] += float(out.loss) * int(mask.sum())
            count += int(mask.sum())
    return totals["alone"] / count, totals["context"] / count, count


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    import torch

    from benchmarks import data as bdata
    from benchmarks.ner_study import DATA_DIR

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, action="append", default=[])
    p.add_argument(
        "--pretrain-steps",
        type=int,
        default=0,
        help="also score the protocol checkpoint continued to this many steps (made once)",
    )
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--n-sents", type=int, default=600, help="the first N dev sentences")
    p.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "context_mlm.json"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    longer = None
    given = list(args.checkpoint)
    if args.pretrain_steps:
        from benchmarks.ner_protocol import CACHE, ensure_pretrained_longer

        path, longer = ensure_pretrained_longer(CACHE, DATA_DIR, args.pretrain_steps)
        args.checkpoint.append(path)
    if not args.checkpoint:
        p.error("give --checkpoint and/or --pretrain-steps")
    _, dev = bdata.train_pool(DATA_DIR)
    sents = [list(words) for words, _ in dev[: args.n_sents]]
    rows = []
    for checkpoint in args.checkpoint:
        alone, ctx, n = masked_losses(checkpoint, sents, args.context)
        rows.append(
            {
                "checkpoint": checkpoint.name,
                "mlm_loss_alone": round(alone, 4),
                f"mlm_loss_context_{args.context}": round(ctx, 4),
                "masked_pieces": n,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    from benchmarks.report import write_json
    from benchmarks.results import header

    result = {
        **header(
            "context_mlm",
            "python benchmarks/context_mlm.py "
            + " ".join(f"--checkpoint .benchmark_cache/{c.name}" for c in given)
            + f" --context {args.context} --n-sents {args.n_sents}"
            + (f" --pretrain-steps {args.pretrain_steps}" if args.pretrain_steps else ""),
        ),
        "protocol": {
            "chooses": "nothing (a diagnostic; no setting is chosen from it)",
            "reports": f"dev: the first {len(sents)} sentences of the last 10% of CoNLL-2003 train "
            "(never pretrained on), 15% of each sentence's pieces masked (seed 0), the same "
            "pieces in both readings",
            "checkpoint": "as named in the table: benchmarks/ner_protocol.py's checkpoints "
            "(modernbert-small-pretrained-33: its random-init 4 x 128 after the 400-step "
            "PRETRAIN; a random-init checkpoint has no trained MLM head to read)"
            + (
                f"; {args.checkpoint[-1].name}: that checkpoint continued on the same text to "
                f"{longer['steps']} steps in all (held-out MLM loss "
                + " -> ".join(str(h["loss"]) for h in longer["held_out_mlm_loss"])
                + ")"
                if longer
                else ""
            ),
            "seeds": 1,
        },
        "columns": list(rows[0]),
        "rows": rows,
    }
    if args.output:
        write_json(args.output, result)
    return result


if __name__ == "__main__":
    main()
