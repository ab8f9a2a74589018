"""Fork safety of torch's CPU thread pool, for `nlp.pipe(..., n_process=N)`.

spaCy's multiprocessing forks the process. PyTorch's CPU wheels use GNU OpenMP, whose
thread pool does not survive a fork: the first parallel torch op in the child waits forever
for threads that only existed in the parent. A child that runs torch with one thread never
enters an OpenMP region, and N processes on N cores is what `n_process` asks for anyway.
"""
import os
import sys

_registered = False


def _single_threaded_torch_in_child() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def make_torch_fork_safe() -> None:
    """Make every forked child run torch on one CPU thread (registered once per process)."""
    global _registered
    if not _registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_single_threaded_torch_in_child)
        _registered = True
