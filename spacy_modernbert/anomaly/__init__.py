"""The `anomaly_scorer` component (component.py), its head (model.py), training signal (loss.py),
registered detectors (detectors.py, search.py) and fitted-detector lifecycle (fitted.py),
Deep-SVDD statistics (one_class.py), serialization, scoring and calibration.

This package module stays import-free (the CLI reads DEFAULT_LABEL without importing spaCy).
"""

# The doc.cats key of gold anomaly labels and predicted scores, unless configured otherwise.
DEFAULT_LABEL = "ANOMALY"
