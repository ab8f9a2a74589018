"""Benchmarks of spacy-modernbert, run from a checkout: `python -m benchmarks speed|accuracy`.

Not part of the installed package. Every figure in BENCHMARKS.md comes from these commands;
they compare `ours` with `spacy_transformers_baseline` and `hf_baseline` (see systems.py)
in the same run, and read the real data from `../shared/data` beside the checkout.
"""
