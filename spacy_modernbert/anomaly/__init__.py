"""The `anomaly_scorer` component: head (model.py), component, one-class statistics, scoring, calibration.

This package module stays import-free (the CLI reads DEFAULT_LABEL without importing spaCy).
"""

# The doc.cats key of gold anomaly labels and predicted scores, unless configured otherwise.
DEFAULT_LABEL = "ANOMALY"
