"""``--optimizer torch_adamw``: torch's own AdamW (fused CUDA kernel by default on GPU).

fairseq's ``adam`` uses apex's FusedAdam when apex is installed and otherwise a Python
loop over parameters; apex cannot be installed from the package index, so on a plain
install every step pays that loop (or, with fp16's flat parameters, several separate
elementwise kernels).  ``torch.optim.AdamW(fused=True)`` is one kernel for all parameters
and needs nothing beyond torch.  Weight decay is decoupled, as in fairseq's ``adam``.

Numerically it differs from fairseq's ``adam`` only in where ε enters early in training
(fairseq adds ε before the bias correction of the second moment, torch after), which is
invisible at BART's ε = 1e-6 after the first steps.  A checkpoint's optimizer state is
not interchangeable between the two (resume across them with ``--reset-optimizer``).
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, List

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer
from omegaconf import II, OmegaConf


@dataclass
class TorchAdamWConfig(FairseqDataclass):
    adam_betas: Any = field(default=(0.9, 0.999), metadata={"help": "betas for Adam"})
    adam_eps: float = field(default=1e-8, metadata={"help": "epsilon for Adam"})
    weight_decay: float = field(default=0.0, metadata={"help": "decoupled weight decay (as fairseq's adam)"})
    fused: str = field(
        default="auto",
        metadata={"help": "torch's fused kernel: auto (on when the parameters are on CUDA), yes, no"},
    )
    lr: List[float] = II("optimization.lr")


@register_optimizer("torch_adamw", dataclass=TorchAdamWConfig)
class TorchAdamW(FairseqOptimizer):
    def __init__(self, cfg: TorchAdamWConfig, params):
        super().__init__(cfg)
        params = list(params)
        if cfg.fused not in ("auto", "yes", "no"):
            raise ValueError(f"--fused must be auto, yes or no, got {cfg.fused!r}")
        on_cuda = all(p.is_cuda for p in _tensors(params))
        fused = cfg.fused == "yes" or (cfg.fused == "auto" and on_cuda)
        self._optimizer = torch.optim.AdamW(params, fused=fused, **self.optimizer_config)

    @property
    def optimizer_config(self):
        lr = self.cfg.lr[0] if isinstance(self.cfg.lr, Collection) else self.cfg.lr
        betas = self.cfg.adam_betas
        betas = eval(betas) if isinstance(betas, str) else OmegaConf.to_container(betas) if not isinstance(betas, tuple) else betas
        return {"lr": lr, "betas": tuple(betas), "eps": self.cfg.adam_eps, "weight_decay": self.cfg.weight_decay}

    @property
    def supports_flat_params(self):
        # an elementwise update: one flat fp32 tensor (fairseq's --fp16 default) is fine
        return True

    @property
    def supports_memory_efficient_fp16(self):
        # torch's AdamW keeps its moments in the parameters' dtype; with fp16 parameters
        # that loses the small updates fairseq's adam keeps in fp32.
        return False


def _tensors(params):
    for p in params:
        if isinstance(p, dict):
            yield from p["params"]
        else:
            yield p
