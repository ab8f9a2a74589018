"""Masked-language-model pretraining of a ModernBERT checkpoint on unlabelled text.

data.py reads and windows the text, masking.py applies transformers' 80/10/10 rule,
model.py holds the encoder + MLM head (the one place that touches the encoder's
internals), checkpoint.py saves atomically and resumes, loop.py trains (one process or
torchrun DDP). The command is `spacy_modernbert/cli/pretrain.py`.
"""


class PretrainSettingsError(ValueError):
    """A pretraining option is out of range or inconsistent; the message names it."""
