"""`sweep`: hyperparameter search over a training config (Optuna TPE, pruning, resume, Ray).

space.py reads the search space, trial.py trains and follows one trial, study.py holds the
study (storage, resume, the trial loop), engines.py runs trials (threads or Ray tasks) and
report.py writes best.cfg, trials.csv and the plots. The command is cli/sweep.py.
"""
