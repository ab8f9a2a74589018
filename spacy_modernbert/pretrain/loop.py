"""The pretraining loop, for one process or torchrun data-parallel (DDP) processes.

Every process builds the same global batch for a step (the windows depend only on
(seed, step)), masks it with the step's own seed, sorts its windows by length and takes
every world-size-th one. Each process's loss is its summed cross-entropy divided by the
GLOBAL number of masked pieces, times the world size; DDP averages the gradients, so N
processes take exactly the step one process takes on the same global batch. Rank 0 alone
evaluates, logs and saves.
"""

import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from wasabi import msg

from . import PretrainSettingsError, rtd
from . import checkpoint as ckpt
from .contrastive import OBJECTIVES, contrastive_loss
from .data import BatchPlan, read_texts, split_held_out, tokenize_windows
from .masking import make_collator, mask_packed
from .model import MaskedLM, load_masked_lm, pack

SCHEDULES = ("linear", "cosine", "constant")
EVAL_SEED = 12345


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Warm up linearly for `warmup` steps, then decay to 0 at `total` (or stay constant)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def _fingerprint(windows: Sequence[Sequence[int]]) -> str:
    digest = hashlib.sha1()
    for w in windows:
        digest.update(torch.tensor(w, dtype=torch.int32).numpy().tobytes())
    return digest.hexdigest()


def masked_step_inputs(
    collator, windows: List[List[int]], special: torch.Tensor, seed: int, rank: int, world: int
):
    """This process's share of a masked global batch, and the global count of masked pieces."""
    windows = sorted(windows, key=len, reverse=True)
    ids, _, lengths = pack(windows)
    inputs, labels = mask_packed(collator, ids, special, seed)
    n_masked = int((labels != -100).sum())
    starts = [0]
    for n in lengths:
        starts.append(starts[-1] + n)
    mine = list(range(rank, len(windows), world))
    if not mine:  # fewer windows than processes: a dummy window that contributes nothing
        mine = [0]
        labels = torch.full_like(labels, -100)
    take = torch.cat([torch.arange(starts[i], starts[i + 1]) for i in mine])
    my_lengths = [lengths[i] for i in mine]
    positions = torch.cat([torch.arange(n) for n in my_lengths])
    return inputs[take], positions, my_lengths, labels[take], n_masked


def _forward(model, inputs, positions, lengths, labels, device) -> torch.Tensor:
    rows = (labels != -100).nonzero().flatten()
    return model(
        inputs.to(device), positions.to(device), lengths, rows.to(device), labels[rows].to(device)
    )


@torch.no_grad()
def held_out_loss(
    model: MaskedLM,
    collator,
    windows: List[List[int]],
    special: torch.Tensor,
    batch_tokens: int,
    device,
) -> Optional[float]:
    """Mean MLM loss per masked piece on the held-out windows (fixed masks, eval mode)."""
    if not windows:
        return None
    was_training = model.training
    model.eval()
    plan = BatchPlan([len(w) for w in windows], batch_tokens, EVAL_SEED)
    total, count, covered, step = 0.0, 0, 0, 0
    while covered < len(windows):
        batch = [windows[i] for i in plan.batch(step)]
        inputs, positions, lengths, labels, n = masked_step_inputs(
            collator, batch, special, EVAL_SEED + step, 0, 1
        )
        if n:
            total += float(_forward(model, inputs, positions, lengths, labels, device))
            count += n
        covered += len(batch)
        step += 1
    model.train(was_training)
    return total / max(count, 1)


def pretrain(
    base_model: Union[str, Path],
    texts: Sequence[Union[str, Path]],
    output: Path,
    *,
    steps: int = 1000,
    lr: float = 5e-4,
    schedule: str = "linear",
    warmup_steps: Optional[int] = None,
    weight_decay: float = 0.01,
    mask_prob: float = 0.3,
    window: int = 512,
    batch_tokens: int = 8192,
    gpu_id: int = -1,
    bf16: bool = True,
    gradient_checkpointing: bool = False,
    seed: int = 0,
    save_every: int = 500,
    eval_fraction: float = 0.01,
    log_every: int = 10,
    resume: Optional[Path] = None,
    force: bool = False,
    objective: str = "mlm",
    contrastive_weight: float = 1.0,
    contrastive_temperature: float = 0.05,
    rtd_rate: float = rtd.RATE,
    rtd_weight: float = 1.0,
) -> Dict[str, Any]:
    """Train `base_model` as a masked LM on `texts`; write a HF checkpoint to `output`.

    Returns the final run state (step, held-out losses, throughput).
    objective "mlm+contrastive" adds the InfoNCE loss of `contrastive.py` (two random crops
    of each doc are positives; temperature `contrastive_temperature`), times
    `contrastive_weight`, to the MLM loss per masked piece. Objective "rtd" trains replaced-token
    detection only (`rtd.py`: `rtd_rate` of the pieces replaced from the training text's
    unigram distribution, a head finds them; its mean binary cross-entropy is the loss);
    "mlm+rtd" adds it, times `rtd_weight`, to the MLM loss.
    """

    output = Path(output)
    if schedule not in SCHEDULES:
        raise PretrainSettingsError(
            f"--schedule must be one of {', '.join(SCHEDULES)}; got '{schedule}'."
        )
    for name, value, low in (
        ("--steps", steps, 0),
        ("--save-every", save_every, 1),
        ("--log-every", log_every, 1),
        ("--batch-tokens", batch_tokens, 1),
    ):
        if value < low:
            raise PretrainSettingsError(f"{name} must be at least {low}; got {value}.")
    if objective not in OBJECTIVES + rtd.OBJECTIVES:
        raise PretrainSettingsError(
            f"--objective must be one of {', '.join(OBJECTIVES + rtd.OBJECTIVES)}; got '{objective}'."
        )
    if objective in rtd.OBJECTIVES:
        rtd.check_settings(rtd_rate, rtd_weight)
    for name, value in (
        ("--contrastive-weight", contrastive_weight),
        ("--contrastive-temperature", contrastive_temperature),
    ):
        if not value > 0.0:
            raise PretrainSettingsError(f"{name} must be > 0; got {value}.")
    if not 0.0 <= eval_fraction < 1.0:
        raise PretrainSettingsError(f"--eval-fraction must be in [0, 1); got {eval_fraction}.")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and objective != "mlm":
        raise PretrainSettingsError(
            f"--objective {objective} runs in one process only; run it without torchrun, "
            "or use --objective mlm."
        )
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if rank == 0:
        ckpt.check_output(output, resume, force)
    state = ckpt.read_state(resume) if resume is not None else None
    if resume is not None and state is None:
        raise ckpt.RunDirError(
            f"--resume '{resume}' is not a pretraining run directory (no {ckpt.STATE_FILE})."
        )

    if gpu_id >= 0 or (world > 1 and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise PretrainSettingsError(
                f"--gpu-id {gpu_id} was given but CUDA is not available to torch."
            )
        device = torch.device("cuda", local_rank if world > 1 else gpu_id)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        return _run(
            base_model,
            texts,
            output,
            steps,
            lr,
            schedule,
            warmup_steps,
            weight_decay,
            mask_prob,
            window,
            batch_tokens,
            device,
            bf16,
            gradient_checkpointing,
            seed,
            save_every,
            eval_fraction,
            log_every,
            resume,
            state,
            rank,
            world,
            objective,
            contrastive_weight,
            contrastive_temperature,
            rtd_rate,
            rtd_weight,
        )
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _run(
    base_model,
    texts,
    output,
    steps,
    lr,
    schedule,
    warmup_steps,
    weight_decay,
    mask_prob,
    window,
    batch_tokens,
    device,
    bf16,
    gradient_checkpointing,
    seed,
    save_every,
    eval_fraction,
    log_every,
    resume,
    state,
    rank,
    world,
    objective="mlm",
    contrastive_weight=1.0,
    contrastive_temperature=0.05,
    rtd_rate=rtd.RATE,
    rtd_weight=1.0,
):
    log = msg if rank == 0 else None
    docs = read_texts(texts)  # bad text fails before a (possibly large) model is loaded
    source = resume if resume is not None else base_model
    mixed = bf16 and device.type == "cuda"
    torch.manual_seed(seed)  # a missing MLM head is initialized from the global generator
    model, tokenizer, hf_shell, initialized = load_masked_lm(source, mixed, gradient_checkpointing)
    model.to(device)
    if log:
        log.info(
            f"Loaded '{source}' ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)"
            + (
                f"; initialized the MLM head ({len(initialized)} tensors)"
                if initialized
                else "; kept its MLM head"
            )
        )
    settings = {
        "window": window,
        "batch_tokens": batch_tokens,
        "seed": seed,
        "mask_prob": mask_prob,
        "eval_fraction": eval_fraction,
    }
    if objective in OBJECTIVES[1:]:  # runs of the plain objective keep the settings they had
        settings.update(
            objective=objective,
            contrastive_weight=contrastive_weight,
            contrastive_temperature=contrastive_temperature,
        )
    elif objective in rtd.OBJECTIVES:
        settings.update(objective=objective, rtd_rate=rtd_rate, rtd_weight=rtd_weight)
    collator = make_collator(tokenizer, mask_prob)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    windows = tokenize_windows(docs, tokenizer, min(window, tokenizer.model_max_length))
    train, held = split_held_out(windows, eval_fraction, seed)
    if not train:
        raise PretrainSettingsError(
            "All windows were held out; lower --eval-fraction or give more text."
        )
    fingerprint = _fingerprint(windows)
    if state is not None:
        changed = sorted(
            k
            for k in {*settings, *state["settings"]}
            if state["settings"].get(k) != settings.get(k)
        )
        if changed:
            old = ", ".join(f"{k}={state['settings'].get(k, 'unset')}" for k in changed)
            raise ckpt.RunDirError(
                f"--resume '{resume}' was run with other settings ({old}); "
                "resume with the same settings, or start a new run."
            )
        if state["data"]["fingerprint"] != fingerprint:
            raise ckpt.RunDirError(
                f"--resume '{resume}' was trained on other text; resume with the same TEXT, or start a new run."
            )
    n_tokens = sum(map(len, train))
    rtd_head, generator = None, None
    if objective in rtd.OBJECTIVES:  # the head is trained (and clipped, decayed) with the model
        rtd_head = model.rtd_head = rtd.RtdHead(model.config.hidden_size).to(device)
        generator = rtd.unigram(train, len(tokenizer), special)

    def rtd_held_out(step: int) -> Dict[str, float]:
        if rtd_head is None or not held:
            return {}
        return {
            k: round(v, 4)
            for k, v in rtd.held_out(
                model.encoder, rtd_head, held, generator, special, rtd_rate, EVAL_SEED, device
            ).items()
        }

    if log:
        log.info(
            f"{len(docs)} documents -> {len(train)} training windows ({n_tokens:,} pieces), "
            f"{len(held)} held out; window {window}, {batch_tokens:,} pieces per step"
            + (f" over {world} processes" if world > 1 else "")
        )

    warmup = warmup_steps if warmup_steps is not None else max(1, round(0.06 * steps))
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps, warmup, schedule)
    )
    start = 0
    history: List[Dict[str, Any]] = []
    if state is not None:
        saved = ckpt.load_optimizer_state(resume)
        optimizer.load_state_dict(saved["optimizer"])
        if rtd_head is not None:
            if rtd.STATE_KEY not in saved:
                raise ckpt.RunDirError(
                    f"--resume '{resume}' has no replaced-token detection head; start a new run."
                )
            rtd_head.load_state_dict(saved[rtd.STATE_KEY])
        scheduler.load_state_dict(saved["scheduler"])
        start, history = int(state["step"]), list(state.get("held_out", []))
        if log:
            log.info(f"Resuming from step {start} of '{resume}'")
    train_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    plan = BatchPlan([len(w) for w in train], batch_tokens, seed)

    def save(step: int, tokens_per_s: Optional[float]) -> None:
        if rank == 0:
            loss = held_out_loss(model, collator, held, special, batch_tokens, device)
            if loss is not None:
                history.append({"step": step, "loss": round(loss, 4), **rtd_held_out(step)})
            run_state = {
                "step": step,
                "steps": steps,
                "base_model": str(base_model if state is None else state["base_model"]),
                "settings": settings,
                "data": {"windows": len(windows), "fingerprint": fingerprint},
                "held_out": history,
                "tokens_per_s": tokens_per_s,
                "world_size": world,
                "initialized_head": initialized
                if state is None
                else state.get("initialized_head", []),
            }
            ckpt.save_run(
                output,
                hf_shell,
                model.hf_state_dict(),
                tokenizer,
                run_state,
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    **({rtd.STATE_KEY: rtd_head.state_dict()} if rtd_head is not None else {}),
                },
            )
            shown = f"held-out MLM loss {loss:.4f}" if loss is not None else "no held-out text"
            if history and "rtd_loss" in history[-1] and history[-1]["step"] == step:
                shown += f", RTD loss {history[-1]['rtd_loss']:.4f} (accuracy {history[-1]['rtd_accuracy']:.3f})"
            msg.good(f"Saved step {step} to {output} ({shown})")
        if world > 1:
            import torch.distributed as dist

            dist.barrier()

    if rank == 0 and start == 0:
        loss = held_out_loss(model, collator, held, special, batch_tokens, device)
        if loss is not None:
            history.append({"step": 0, "loss": round(loss, 4), **rtd_held_out(0)})
            msg.info(
                f"Held-out MLM loss before training: {loss:.4f} ({len(held)} windows)"
                + (
                    f"; RTD loss {history[-1]['rtd_loss']:.4f} (accuracy {history[-1]['rtd_accuracy']:.3f})"
                    if "rtd_loss" in history[-1]
                    else ""
                )
            )
    model.train()
    t0 = time.perf_counter()
    t_log, tokens_log, tokens_all, running, running_nce, running_rtd = t0, 0, 0, [], [], []
    tokens_per_s = None
    for step in range(start, steps):
        torch.manual_seed(seed * 1_000_003 + step)
        batch = [train[i] for i in plan.batch(step)]
        inputs, positions, lengths, labels, n_masked = masked_step_inputs(
            collator, batch, special, seed * 1_000_003 + step, rank, world
        )
        if objective == "rtd":  # no MLM forward: the replaced-token loss alone
            loss_sum = loss = torch.zeros((), device=device)
        else:
            loss_sum = _forward(train_model, inputs, positions, lengths, labels, device)
            loss = loss_sum * (world / max(n_masked, 1))
        if rtd_head is not None:
            rtd_term, rtd_info = rtd.rtd_loss(
                model.encoder,
                rtd_head,
                batch,
                generator,
                special,
                rtd_rate,
                seed * 1_000_003 + step,
                device,
            )
            loss = loss + rtd_weight * rtd_term
            running_rtd.append((float(rtd_term.detach()), rtd_info["accuracy"]))
        if objective == "mlm+contrastive":
            info_nce, _ = contrastive_loss(
                model.encoder,
                batch,
                seed * 1_000_003 + step,
                rank,
                world,
                device,
                contrastive_temperature,
            )
            loss = loss + contrastive_weight * info_nce
            running_nce.append(float(info_nce.detach()))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        n_batch = sum(map(len, batch))
        tokens_log += n_batch
        tokens_all += n_batch
        running.append(float(loss_sum.detach()) / max(n_masked, 1) * world)
        done = step + 1
        if rank == 0 and (done % log_every == 0 or done == steps):
            now = time.perf_counter()
            tokens_per_s = tokens_log / max(now - t_log, 1e-9)
            eta = (now - t0) / (done - start) * (steps - done)
            msg.text(
                f"step {done}/{steps}  "
                + (f"loss {sum(running) / len(running):.4f}  " if objective != "rtd" else "")
                + (
                    f"contrastive {sum(running_nce) / len(running_nce):.4f}  "
                    if running_nce
                    else ""
                )
                + (
                    f"rtd {sum(r[0] for r in running_rtd) / len(running_rtd):.4f} "
                    f"(accuracy {sum(r[1] for r in running_rtd) / len(running_rtd):.3f})  "
                    if running_rtd
                    else ""
                )
                + f"lr {scheduler.get_last_lr()[0]:.2e}  "
                f"{tokens_per_s:,.0f} tokens/s  ETA {_fmt_time(eta)}",
                show=True,
            )
            t_log, tokens_log, running, running_nce, running_rtd = now, 0, [], [], []
        if done % save_every == 0 and done != steps:
            save(done, tokens_per_s)
    overall = tokens_all / max(time.perf_counter() - t0, 1e-9) if steps > start else None
    save(steps, overall)
    return {"step": steps, "held_out": history, "tokens_per_s": overall, "output": str(output)}
