"""Load a trained checkpoint as fairseq's BART hub interface, with its BPE attached.

``fairseq.models.bart.BARTModel.from_pretrained`` fails on checkpoints trained with a
denoising task: its default ``bpe="gpt2"`` override collides with the task config's own
``bpe`` string field.  We load with ``bpe=None`` and attach the BPE
described by the data directory's ``bpe.json`` (:mod:`biobart_fairseq.data.bpe`) ourselves,
so ``encode``, ``decode``, ``fill_mask`` and ``sample`` work offline.
"""

import os

from .data.bpe import build as build_bpe
from .data.bpe import read_info


def from_pretrained(model_dir, checkpoint_file="checkpoint_best.pt", data_dir=None, bpe_info=None, **kwargs):
    """Return a ``BARTHubInterface`` (eval mode, CPU) for ``model_dir/checkpoint_file``.

    ``data_dir`` holds ``dict.txt`` and ``bpe.json`` (default: ``model_dir``);
    ``bpe_info`` overrides the path of ``bpe.json``.
    """
    from . import register

    register()  # checkpoint loading needs the weights_only workaround and the plugin's tasks
    from fairseq.models.bart import BARTModel

    data_dir = os.path.abspath(data_dir or model_dir)
    for f in (os.path.join(model_dir, checkpoint_file), os.path.join(data_dir, "dict.txt")):
        if not os.path.isfile(f):
            raise FileNotFoundError(f"{f}: not found")
    info = read_info(bpe_info or os.path.join(data_dir, "bpe.json"))
    hub = BARTModel.from_pretrained(
        model_dir, checkpoint_file=checkpoint_file, data_name_or_path=data_dir, bpe=None, **kwargs
    )
    hub.bpe = build_bpe(info)
    hub.eval()
    return hub


# --- loading a fine-tuned checkpoint for inference (biobart_fairseq.inference) ------------------
CHECKPOINTS = ("checkpoint_best.pt", "checkpoint_last.pt")


def find_checkpoint(path):
    """``path`` itself, or the ``checkpoint_best.pt`` (else ``checkpoint_last.pt``) of a folder
    or of its ``checkpoints/`` (a recipe's work folder).  errors.Unusable when there is none."""
    from . import errors

    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise errors.Unusable(errors.missing(path, folder_ok=True))
    for folder in (path, os.path.join(path, "checkpoints")):
        for name in CHECKPOINTS:
            if os.path.isfile(os.path.join(folder, name)):
                return os.path.join(folder, name)
    raise errors.Unusable(f"{path}: no {' or '.join(CHECKPOINTS)} in this folder (or its checkpoints/)")


def checkpoint_task(checkpoint):
    """(task name, data folder it was trained on or None) from a checkpoint's cfg, read without
    building the model (nor importing torch: :mod:`biobart_fairseq.results` reads the pickle's
    plain parts); errors.Unusable when the file is no fairseq checkpoint."""
    from . import errors
    from .results import cfg_get, read_checkpoint_state

    try:
        state = read_checkpoint_state(checkpoint)
        cfg = state.get("cfg") if isinstance(state, dict) else None
        task = cfg_get(cfg or {}, "task", "_name")
    except Exception as e:  # noqa: BLE001  (a torn or foreign file: one line naming it)
        raise errors.Unusable(f"{checkpoint}: not a fairseq checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not task:
        raise errors.Unusable(f"{checkpoint}: not a fairseq checkpoint this plugin can read (no task in its cfg)")
    data = cfg_get(cfg, "task", "data")
    return task, (str(data) if data else None)


#: the commands that use a model of each task (for the message when a model of another is given)
COMMANDS_OF_TASK = {"biomed_entity_linking": "biobart-link / biobart-el-eval",
                    "bartner_ner": "biobart-tag / biobart-ner-score",
                    "translation": "biobart-generate", "biomed_translation": "biobart-generate",
                    "biomed_denoising": "fine-tuning first (it is a pretrained model)",
                    "denoising": "fine-tuning first (it is a pretrained model)"}


def wrong_task(checkpoint, task, wanted):
    """The one message for a model of another task: ``errors.Unusable`` to raise."""
    from . import errors

    use = COMMANDS_OF_TASK.get(task)
    return errors.Unusable(f"{checkpoint}: not a model for {wanted}: its task is {task or '?'}"
                           f"{'; for this one use ' + use if use else ''}")


def load_for_inference(checkpoint, task_name, data_dir, device="cpu", generation=None):
    """(task, models) for decoding: the checkpoint's own task settings, run as ``task_name``
    (e.g. ``biomed_translation`` for a ``translation`` model: same data and flags, our generator
    fixes) on ``data_dir``; the models in eval mode, prepared for inference as fairseq-generate
    does (``generation``: its generation settings, e.g. the beam), on ``device``."""
    from argparse import Namespace

    from . import errors, register

    register()
    import torch
    from fairseq import checkpoint_utils, tasks
    from omegaconf import open_dict

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise errors.Unusable(f"device {device}: CUDA is not available here (use device cpu)")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(checkpoint)
    except Exception as e:  # noqa: BLE001  (a torn or foreign file: one line naming it)
        raise errors.Unusable(f"{checkpoint}: cannot be loaded ({type(e).__name__}: {str(e)[:200]})") from None
    cfg = state["cfg"]
    with open_dict(cfg):
        cfg.task._name = task_name
        cfg.task.data = os.path.abspath(data_dir)
    task = tasks.setup_task(cfg.task)
    models, _ = checkpoint_utils.load_model_ensemble([checkpoint], task=task, state=state)
    for model in models:
        model.eval()
        model.prepare_for_inference_(Namespace(generation=generation or Namespace(beam=5)))
        model.to(device)
    return task, models
