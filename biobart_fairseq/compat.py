"""Every workaround this plugin applies to fairseq 0.12.x / torch 2.x, in one place.

fairseq imports the ``--user-dir`` package (this one) before it loads a checkpoint or
builds a trainer, so the workarounds below take effect for ``fairseq-train``,
``fairseq-generate``, ``fairseq-interactive`` and Python code that does
``import biobart_fairseq``.  Each one:

* names the upstream bug it works around,
* changes behaviour only in the situation that bug breaks,
* says so in the log when it acts (nothing is changed silently),
* has a test in ``tests/test_compat.py`` that fails without it.

Workarounds
-----------
1. ``weights_only`` (torch >= 2.6 made ``torch.load(weights_only=True)`` the default;
   fairseq 0.12 checkpoints pickle an ``argparse.Namespace`` so every checkpoint load
   fails -- fairseq issues #5610, #5603).  We set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``
   unless the user has set it.  Only load checkpoints you trust (as with any pickle).
2. ``--bf16`` implies ``--tpu`` (``fairseq/options.py`` sets ``args.tpu = True``
   whenever bf16 is requested, so on a GPU the trainer asks torch_xla for a device and
   dies with ``'NoneType' object has no attribute 'xla_device'``).  We wrap
   ``fairseq.distributed.utils.call_main`` -- the function every fairseq entry point
   passes its final config through -- and, when bf16 is on, ``torch_xla`` is not
   installed and the user did not ask for ``--tpu`` explicitly, turn the implied TPU
   flag back off so training runs on CUDA (or CPU) in bfloat16.
3. ``fairseq-generate --bf16`` runs in fp32 (``fairseq_cli/generate.py`` and ``interactive.py``
   cast the models only for ``--fp16``; ``--bf16`` is parsed, then ignored).  The plugin's own
   models (``--arch biobart_*``) call :func:`cast_for_bf16_inference` from
   ``prepare_for_inference_``, the hook both commands call with their command-line config, and
   run in bfloat16.  Only an evaluation command's config (one with ``--path``) counts: the hub
   passes the checkpoint's *training* config, which must not decide the inference precision
   (fairseq does not cast for a training ``--fp16`` there either).  Through call_main (2.) the
   implied ``--tpu`` is undone for training; generate does not go through call_main, and on GPU
   its device comes from ``--cpu`` alone, so the implied flag changes nothing there.
"""

import logging
import os
import sys

logger = logging.getLogger(__name__)

WEIGHTS_ONLY_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


# --- 1. torch.load(weights_only=True) default ------------------------------------------
def apply_weights_only_workaround():
    if WEIGHTS_ONLY_ENV not in os.environ:
        os.environ[WEIGHTS_ONLY_ENV] = "1"
        logger.debug(  # debug: every inference command would print it otherwise
            "biobart_fairseq.compat: set %s=1 so fairseq 0.12 checkpoints "
            "(which pickle argparse.Namespace) load under torch>=2.6",
            WEIGHTS_ONLY_ENV,
        )


# --- 2. --bf16 wrongly implies --tpu ------------------------------------------------------
def _torch_xla_available():
    try:
        import torch_xla  # noqa: F401
    except ImportError:
        return False
    return True


def _tpu_requested_on_command_line(argv=None):
    argv = sys.argv if argv is None else argv
    return any(a == "--tpu" or a.startswith("--tpu=") for a in argv)


def undo_bf16_implied_tpu(cfg, argv=None):
    """If ``cfg.common.tpu`` is only on because ``--bf16`` implied it, switch it off.

    Returns True when the config was changed.  ``cfg`` is fairseq's FairseqConfig
    (an omegaconf DictConfig) or anything with a ``common`` attribute.
    """
    common = getattr(cfg, "common", None)
    if common is None:
        return False
    bf16 = bool(getattr(common, "bf16", False) or getattr(common, "memory_efficient_bf16", False))
    if not (bf16 and getattr(common, "tpu", False)):
        return False
    if _tpu_requested_on_command_line(argv) or _torch_xla_available():
        return False
    # The flag is copied into other groups (distributed_training.tpu decides whether
    # torch.distributed is initialised, optimizer.tpu the Adam variant): clear them all.
    for group in ("common", "distributed_training", "optimizer"):
        sub = getattr(cfg, group, None)
        if sub is not None and getattr(sub, "tpu", None):
            sub.tpu = False
    logger.warning(
        "biobart_fairseq.compat: --bf16 set --tpu implicitly (fairseq 0.12 bug) but "
        "torch_xla is not installed; running bf16 on %s instead of TPU",
        "CPU" if getattr(common, "cpu", False) else "CUDA",
    )
    return True


def apply_bf16_workaround():
    from fairseq.distributed import utils as distributed_utils

    if getattr(distributed_utils.call_main, "_biobart_bf16_fix", False):
        return
    original_call_main = distributed_utils.call_main

    def call_main(cfg, main, **kwargs):
        undo_bf16_implied_tpu(cfg)
        return original_call_main(cfg, main, **kwargs)

    call_main._biobart_bf16_fix = True
    call_main.__wrapped__ = original_call_main
    call_main.__doc__ = original_call_main.__doc__
    distributed_utils.call_main = call_main


# --- 3. fairseq-generate / -interactive ignore --bf16 -------------------------------------
def cast_for_bf16_inference(model, cfg):
    """Cast ``model`` to bfloat16 when an evaluation command asked for ``--bf16``; True if cast."""
    common, common_eval = getattr(cfg, "common", None), getattr(cfg, "common_eval", None)
    bf16 = bool(getattr(common, "bf16", False) or getattr(common, "memory_efficient_bf16", False))
    if not (bf16 and getattr(common_eval, "path", None)):
        return False
    import torch

    model.to(dtype=torch.bfloat16)
    logger.warning("biobart_fairseq.compat: --bf16: model in bfloat16 for generation "
                   "(fairseq 0.12 casts only for --fp16)")
    return True


def apply_all():
    apply_weights_only_workaround()
    apply_bf16_workaround()
