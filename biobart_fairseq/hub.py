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
