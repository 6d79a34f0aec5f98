"""What a finished fine-tuning run keeps: the checkpoint it decodes with, without optimizer state.

A fairseq checkpoint holds the model (``model``), its settings (``cfg``), the training history
(``optimizer_history``: criterion and optimizer names, lr-scheduler state, update count;
``extra_state``: epoch, best validation score, meters) and ``last_optimizer_state``: for Adam two
fp32 moments per parameter, i.e. twice the fp32 model (BART-base: 139 M parameters, 0.56 GB of
weights, 1.1 GB of Adam moments, 1.7 GB a checkpoint).  Only a run that goes on training needs
the moments; decoding, scoring, export and a new fine-tuning (``--restore-file ... --reset-optimizer``
or ``--finetune-from-model``) read the rest.  fairseq has no flag to drop them when training ends
(``--no-save-optimizer-state`` drops them from every checkpoint, also the one a resume needs), so
the recipes call :func:`strip_optimizer_state` on the checkpoint they keep once training is over.

A stripped checkpoint still loads everywhere a checkpoint does (fairseq reads
``last_optimizer_state`` with ``state.get``); resuming from it would start a new optimizer and
schedule, so the recipes mark a finished run instead (``train.done``) and keep
``checkpoint_last.pt`` only while training, or when asked (``KEEP_LAST=1``).
"""

import os

OPTIMIZER_KEY = "last_optimizer_state"


def _load(path):
    import torch

    try:  # memory-mapped: the optimizer tensors are never read into memory
        return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except RuntimeError:  # the legacy (non-zip) format cannot be mapped
        return torch.load(path, map_location="cpu", weights_only=False)


def strip_optimizer_state(path, out=None):
    """Write ``path`` without its optimizer state to ``out`` (default: in place, atomically).

    Returns ``(bytes before, bytes after)``; a checkpoint without optimizer state is left as it
    is (copied to ``out`` when one is given).  Raises OSError / RuntimeError from torch for a
    file that is not a checkpoint, ValueError for one that is not a fairseq checkpoint."""
    import torch

    out = out or path
    before = os.path.getsize(path)
    state = _load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    if OPTIMIZER_KEY not in state and os.path.abspath(out) == os.path.abspath(path):
        return before, before
    state.pop(OPTIMIZER_KEY, None)
    tmp = f"{out}.part{os.getpid()}"
    try:
        torch.save(state, tmp)
        del state  # the memory map of the source must go before it is replaced
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return before, os.path.getsize(out)


def has_optimizer_state(path):
    """Whether a checkpoint still carries optimizer state (no tensors are read)."""
    from .results import read_checkpoint_state

    return OPTIMIZER_KEY in read_checkpoint_state(path)
