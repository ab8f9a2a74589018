"""Fork safety of torch's CPU thread pool and of the tokenizers, for `nlp.pipe(..., n_process=N)`.

spaCy's multiprocessing forks the process. PyTorch's CPU wheels use GNU OpenMP, whose
thread pool does not survive a fork: the first parallel torch op in the child waits forever
for threads that only existed in the parent. A child that runs torch with one thread never
enters an OpenMP region, and N processes on N cores is what `n_process` asks for anyway.

The Hugging Face tokenizers library has the same problem with its Rayon pool: its own fork
handler disables parallelism in the child and prints a warning from every child process.
We disable it for the child ourselves, once, before the fork (TOKENIZERS_PARALLELISM=false
while forking, so no warning), and restore the parent's setting right after: the parent
keeps its parallel tokenizer, every child runs single-threaded exactly as the library
would make it.
"""

import os
import sys
from typing import Optional

_registered = False
_TOKENIZERS_VAR = "TOKENIZERS_PARALLELISM"
_parent_setting: Optional[str] = None
_set_by_us = False


def _single_threaded_torch_in_child() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _tokenizers_off_for_fork() -> None:
    """Before a fork: a user's own TOKENIZERS_PARALLELISM wins; otherwise false for the child."""
    global _parent_setting, _set_by_us
    _parent_setting = os.environ.get(_TOKENIZERS_VAR)
    _set_by_us = _parent_setting is None
    if _set_by_us:
        os.environ[_TOKENIZERS_VAR] = "false"


def _restore_tokenizers_in_parent() -> None:
    global _set_by_us
    if _set_by_us:
        os.environ.pop(_TOKENIZERS_VAR, None)
        _set_by_us = False


def make_torch_fork_safe() -> None:
    """Make every forked child run torch on one CPU thread, and the tokenizers without a
    per-process warning (registered once per process)."""
    global _registered
    if not _registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_tokenizers_off_for_fork,
            after_in_parent=_restore_tokenizers_in_parent,
            after_in_child=_single_threaded_torch_in_child,
        )
        _registered = True
