"""spacy-modernbert: ModernBERT as a shared spaCy encoder, plus a doc-level anomaly scorer.

Everything is registered through entry points (see setup.cfg), so configs need no import.
This module stays light on purpose: spaCy imports factory modules whenever a pipeline
is created, so torch/transformers are only imported when a model is actually built.
"""

__version__ = "0.2.0"
