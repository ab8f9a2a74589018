"""The encoder's errors and the limits they cite: one home, imported by every encoder module.

Why: `checkpoint.py`, `safe_load.py`, `modules.py`, `quantize.py` and `architecture.py` all
raise or check against these; kept here, no encoder module needs to import another one only
for an exception class, so their imports run one way (no circle).
Invariant: this module imports nothing (not even torch), so any code path may import it.
"""

# ModernBERT's tokenizer config has no model_max_length (it reads as 1e30).
MAX_MODERNBERT_LENGTH = 8192
# Attention backends of the packed encoder (attention.py); "varlen" needs CUDA.
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "varlen")


class CheckpointError(ValueError):
    """A checkpoint or a stored pipeline could not be used: missing, wrong model type,
    corrupt, inconsistent or refused as unsafe (every message names the file or field)."""


class UnsupportedConfigError(ValueError):
    """The config asks for a ModernBERT variant our modules do not implement."""


class QuantizeError(ValueError):
    """A `quantize` setting that cannot run here."""
