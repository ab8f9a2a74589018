"""The hardware limit: forward FLOPs of ModernBERT per token and the machine's matmul rate.

FLOPs count multiply-adds as 2. Per layer and token: the Wqkv, Wo, MLP Wi (GLU: hidden ->
2 * intermediate) and MLP Wo projections, plus attention (QK^T and PV: 2 * 2 * keys * hidden),
where `keys` is the number of keys a query really attends to: the whole sequence in global
layers, the +-local_attention/2 band (clipped at the sequence ends) in local layers.
Norms, activations, softmax and the embedding lookup are not counted (they are not matmuls).
Only *useful* work is counted: padding, window overlap and masked-out keys are not.
"""

import time
from typing import Any, Dict, Sequence

import numpy


def linear_flops_per_token(config: Any) -> float:
    d, i = config.hidden_size, config.intermediate_size
    return 2.0 * config.num_hidden_layers * (d * 3 * d + d * d + d * 2 * i + i * d)


def _local_keys(length: int, half_window: int) -> float:
    """Mean number of keys within +-half_window of a query, over a sequence of `length`."""
    pos = numpy.arange(length)
    lo = numpy.maximum(pos - half_window, 0)
    hi = numpy.minimum(pos + half_window, length - 1)
    return float((hi - lo + 1).mean())


def attention_flops(config: Any, length: int) -> float:
    """Attention FLOPs of one sequence of `length` tokens, over all layers."""
    d = config.hidden_size
    half = config.local_attention // 2
    every = config.global_attn_every_n_layers
    total = 0.0
    for layer in range(config.num_hidden_layers):
        keys = float(length) if layer % every == 0 else _local_keys(length, half)
        total += 2.0 * 2.0 * keys * d * length
    return total


def forward_flops(config: Any, lengths: Sequence[int]) -> float:
    """Total forward FLOPs for sequences of these lengths (tokens, [CLS]/[SEP] included)."""
    per_token = linear_flops_per_token(config)
    return sum(per_token * n + attention_flops(config, n) for n in lengths if n > 0)


def flops_per_token(config: Any, lengths: Sequence[int]) -> float:
    n = sum(lengths)
    return forward_flops(config, lengths) / n if n else 0.0


def matmul_rate(
    size: int = 2048, repeats: int = 5, device: str = "cpu", dtype: str = "float32"
) -> Dict[str, float]:
    """Measured FLOP/s of a large square `torch.matmul` (best of `repeats`), with torch's threads as set."""
    import torch

    torch_dtype = getattr(torch, dtype)
    a = torch.randn(size, size, device=device, dtype=torch_dtype)
    b = torch.randn(size, size, device=device, dtype=torch_dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        for _ in range(2):
            torch.matmul(a, b)
        sync()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.matmul(a, b)
            sync()
            best = min(best, time.perf_counter() - t0)
    flops = 2.0 * size**3
    return {"size": size, "dtype": dtype, "seconds": best, "flops_per_s": flops / best}
