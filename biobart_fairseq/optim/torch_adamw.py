"""``--optimizer torch_adamw``: torch's own AdamW (fused CUDA kernel by default on GPU).

fairseq's ``adam`` uses apex's FusedAdam when apex is installed and otherwise a Python
loop over parameters; apex cannot be installed from the package index, so on a plain
install every step pays that loop (or, with fp16's flat parameters, several separate
elementwise kernels).  ``torch.optim.AdamW(fused=True)`` is one kernel for all parameters
and needs nothing beyond torch.  Weight decay is decoupled, as in fairseq's ``adam``.

With ``--memory-efficient-fp16``/``--memory-efficient-bf16`` fairseq hands the optimizer the
fp16/bf16 parameters themselves (no fp32 copy).  torch's AdamW would then keep its moments in
that dtype (the squared gradients underflow in fp16, bf16 keeps 8 bits), so for such parameters
the same AdamW step runs in fp32 (:class:`AdamWFp32State`: fp32 moments, the update computed on
an fp32 copy of each parameter and rounded back), as fairseq's ``adam`` does.  It is a loop
over parameters: the fast path is the default ``--fp16``/``--bf16`` (fp32 flat parameters, the
fused kernel).

Numerically it differs from fairseq's ``adam`` only in where ε enters early in training
(fairseq adds ε before the bias correction of the second moment, torch after), which is
invisible at BART's ε = 1e-6 after the first steps.  A checkpoint's optimizer state is
not interchangeable between the two (resume across them with ``--reset-optimizer``).
"""

import math
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
        tensors = list(_tensors(params))
        if any(p.dtype != torch.float32 for p in tensors):  # --memory-efficient-fp16/bf16
            self._optimizer = AdamWFp32State(params, **self.optimizer_config)
            return
        on_cuda = all(p.is_cuda for p in tensors)
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
        # fp16/bf16 parameters get fp32 moments and an fp32 update (AdamWFp32State)
        return True


class AdamWFp32State(torch.optim.Optimizer):
    """torch's AdamW step (same formula, same order of operations) computed in fp32 for
    parameters kept in fp16/bf16: fp32 moments, the update applied to an fp32 copy of the
    parameter, which is then rounded back into it."""

    def __init__(self, params, lr, betas, eps, weight_decay):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                p32, g = p.float(), p.grad.float()
                p32.mul_(1 - lr * wd)
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
                p32.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
                p.copy_(p32)
        return loss


def _tensors(params):
    for p in params:
        if isinstance(p, dict):
            yield from p["params"]
        else:
            yield p
