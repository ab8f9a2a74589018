"""Low-precision linear layers for CPU inference: dynamic int8, or bf16 where the CPU has it.

Why: the fp32 CPU path already runs near the machine's fp32 matmul limit; the linear layers
(qkv, attention output, GLU input/gate/output) are ~all of the encoder's FLOPs, so running
them in int8 (or bf16 on CPUs with native bf16 dot products) is where CPU inference gets
faster. The setting is `quantize = "int8" | "bf16" | null` of
`spacy-modernbert.ModernBertTransformer.v1` (see architecture.py).

Invariants:
* The fp32 weights stay in the encoder, untouched: a pipeline saves fp32 weights whatever
  `quantize` says, and a load with `quantize` set rebuilds the low-precision copies from
  them (`shim.set_model`). Re-quantizing at load is more robust than storing int8 tensors:
  the file format does not change, a pipeline can be switched back to fp32 (or to another
  mode) by config alone, and nothing depends on how a torch release packs int8 weights.
  The copies cost ~1/4 (int8) or 1/2 (bf16) of the linear weights' fp32 memory on top.
* Only the linear layers change. Embeddings, norms, rotary, attention (softmax) and the
  residual stream stay fp32; int8 linears return fp32, bf16 linears return bf16 (the GLU
  intermediate stays bf16 up to the output projection; residual adds are into fp32).
* Only CPU inference uses them (no autograd, eval mode, CPU tensors): `packed.py` takes the
  fp32 path otherwise, training refuses in `architecture.forward`, CUDA warns once.

int8 is dynamic quantization as `torch.ao.quantization.quantize_dynamic` does it, with
PyTorch's own kernels (fbgemm / x86 on x86-64, qnnpack on ARM): weights symmetric int8 per
output channel, activations quantized per call from their observed range. We call the two
ATen ops (`quantized.linear_prepack`, `quantized.linear_dynamic`) instead of swapping
modules with `torch.ao.quantization.quantize_dynamic`: our layers are run by `packed.py`,
not by module calls; the `torch.ao.quantization` Python front end warns on every call that
it is deprecated ("will be removed in 2.10"; torch 2.13 still ships it, torchao is its
successor) while the module swap only wraps these same kernels; and we quantize weights per
output channel (quantize_dynamic's `per_channel_dynamic_qconfig`), finer than its per-tensor
default, with no measurable slowdown of the kernel. torch 2.13 also warns that
creating qint8 tensors is deprecated (pytorch issue 184982): that one warning is filtered
at prepack time (nothing else is), and if a torch build lacks the kernels, `quantize =
"int8"` is refused with a message naming the fallback.

`reduce_range` (7-bit activations) avoids int16 saturation in the non-VNNI x86 kernels; it
is off where the CPU has VNNI (no intermediate int16) and on qnnpack.
"""

import warnings
from functools import lru_cache
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from .errors import QuantizeError

MODES = ("int8", "bf16")
# torch 2.13's warning on creating qint8 tensors (the weights' prepacking only)
_QTENSOR_DEPRECATION = r"torch\.quantize_per_tensor, torch\.quantize_per_channel .* deprecated"


def check_mode(mode: Optional[str]) -> Optional[str]:
    """Validate the config value: None (fp32), "int8" or "bf16"."""
    if mode is None or mode in MODES:
        return mode
    raise QuantizeError(
        f"quantize must be one of {MODES} or null (fp32), got {mode!r} "
        "(in [components.transformer.model])."
    )


@lru_cache(None)
def _capabilities() -> Dict[str, Any]:
    get = getattr(torch.cpu, "get_capabilities", None)  # public since torch 2.8
    if get is not None:
        try:
            return dict(get())
        except Exception:  # cpuinfo failed: fall through to /proc/cpuinfo
            pass
    flags: set = set()
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        pass
    caps: Dict[str, Any] = {name: True for name in flags}
    caps["avx512_vnni"] = "avx512_vnni" in flags
    return caps


def native_bf16() -> bool:
    """Whether the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16 on x86,
    the BF16 extension on ARM): without them bf16 matmuls are emulated and slower than fp32."""
    caps = _capabilities()
    return any(bool(caps.get(name)) for name in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))


def has_vnni() -> bool:
    caps = _capabilities()
    return any(bool(caps.get(name)) for name in ("avx512_vnni", "avx_vnni", "amx_int8"))


def int8_engine() -> Optional[str]:
    """The quantized engine torch uses here (x86 / fbgemm / qnnpack), None if it has none."""
    engine = torch.backends.quantized.engine
    supported = torch.backends.quantized.supported_engines
    if engine in supported and engine not in ("none", "onednn"):
        return engine
    for candidate in ("x86", "fbgemm", "qnnpack"):
        if candidate in supported:
            return candidate
    return None


def capability() -> str:
    """One line saying which kernels run, so that figures compare across machines, e.g.
    "cpu AVX512, int8 engine x86 (vnni), native bf16 (avx512_bf16)"."""
    caps = _capabilities()
    bf16 = [n for n in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16") if caps.get(n)]
    vnni = [n for n in ("avx512_vnni", "avx_vnni", "amx_int8") if caps.get(n)]
    return (
        f"cpu {torch.backends.cpu.get_cpu_capability()}, int8 engine {int8_engine()} "
        f"({'vnni: ' + '+'.join(vnni) if vnni else 'no vnni'}), "
        f"{'native bf16 (' + '+'.join(bf16) + ')' if bf16 else 'no native bf16'}"
    )


def resolve_mode(mode: Optional[str]) -> Optional[str]:
    """The mode that will run on this machine: bf16 without native bf16 warns and gives None
    (fp32); int8 without quantized kernels raises."""
    mode = check_mode(mode)
    if mode == "bf16" and not native_bf16():
        warnings.warn(
            f'quantize = "bf16" needs a CPU with native bf16 matmul (AVX512-BF16, AMX or ARM BF16); '
            f"this one has none ({capability()}), where bf16 is emulated and slower than fp32: the encoder "
            'runs in fp32. Use quantize = "int8" or null.',
            stacklevel=2,
        )
        return None
    if mode == "int8" and (
        int8_engine() is None or not hasattr(torch.ops.quantized, "linear_dynamic")
    ):
        raise QuantizeError(
            f'quantize = "int8" needs PyTorch\'s quantized CPU kernels (fbgemm/x86 or qnnpack), which this torch '
            f"build ({torch.__version__}, engines {torch.backends.quantized.supported_engines}) lacks. "
            'Use quantize = "bf16" (CPUs with native bf16) or null.'
        )
    return mode


class Int8Linear:
    """x @ W.T + b with W int8 per output channel and x quantized per call (fp32 in and out)."""

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], engine: str):
        weight = weight.detach().float().contiguous()
        scale = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        zero = torch.zeros(weight.shape[0], dtype=torch.long)
        with _engine(engine):
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message=_QTENSOR_DEPRECATION, category=UserWarning
                )
                q = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(
                q, None if bias is None else bias.detach().float().contiguous()
            )
        self.engine = engine
        self.reduce_range = engine != "qnnpack" and not has_vnni()
        self.dtype = torch.float32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(
            x.float().contiguous(), self.packed, self.reduce_range
        )


class _engine:
    """Set torch.backends.quantized.engine for a block (prepacking is engine-specific)."""

    def __init__(self, engine: str):
        self.engine, self.old = engine, None

    def __enter__(self) -> None:
        self.old = torch.backends.quantized.engine
        torch.backends.quantized.engine = self.engine

    def __exit__(self, *exc) -> None:
        torch.backends.quantized.engine = self.old


class Bf16Linear:
    """x @ W.T + b in bf16 (bf16 out), for CPUs with native bf16 dot products."""

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor]):
        self.weight_t = weight.detach().to(torch.bfloat16).t()  # the (in, out) view mm wants
        self.bias = None if bias is None else bias.detach().to(torch.bfloat16)
        self.dtype = torch.bfloat16

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        return (
            torch.mm(x, self.weight_t)
            if self.bias is None
            else torch.addmm(self.bias, x, self.weight_t)
        )


class LayerLinears:
    """One encoder layer's linears in low precision: qkv, attention output, GLU input, gate
    (input_gate split in two, as the fp32 fast path does) and output."""

    def __init__(self, layer: nn.Module, mode: str, engine: Optional[str]):
        def make(weight: torch.Tensor, bias: Optional[torch.Tensor]):
            return Int8Linear(weight, bias, engine) if mode == "int8" else Bf16Linear(weight, bias)

        attn, mlp = layer.attn, layer.mlp
        i = mlp.output.in_features
        gate_bias = mlp.input_gate.bias
        self.qkv = make(attn.qkv.weight, attn.qkv.bias)
        self.attn_out = make(attn.output.weight, attn.output.bias)
        self.mlp_in = make(mlp.input_gate.weight[:i], None if gate_bias is None else gate_bias[:i])
        self.mlp_gate = make(
            mlp.input_gate.weight[i:], None if gate_bias is None else gate_bias[i:]
        )
        self.mlp_out = make(mlp.output.weight, mlp.output.bias)


def quantize_layers(layers: List[nn.Module], mode: str) -> List[LayerLinears]:
    """Low-precision copies of every layer's linears (the fp32 modules are left as they are)."""
    engine = int8_engine() if mode == "int8" else None
    with torch.no_grad():
        return [LayerLinears(layer, mode, engine) for layer in layers]


def training_refusal(mode: str) -> str:
    """The message of a quantized encoder asked to train."""
    return (
        f'This pipeline\'s encoder runs with quantize = "{mode}", an inference-only setting: it cannot be '
        "updated. Its stored weights are fp32, so train (or resume training) with "
        "components.transformer.model.quantize = null, e.g. `spacy train ... "
        "--components.transformer.model.quantize null` or "
        'spacy.load(path, config={"components.transformer.model.quantize": None}).'
    )
