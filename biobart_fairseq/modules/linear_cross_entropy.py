"""Output projection + (label-smoothed) cross-entropy without a vocabulary-sized tensor.

fairseq's criteria project every target position to the vocabulary, upcast the whole
``(tokens, vocab)`` tensor to fp32 and take its log-softmax — for BART-base with 32k target
tokens per batch that is 6.6 GB written and read several times per step, most of a
step's memory traffic.  Here the hidden states of the *non-padding* positions are
projected a chunk of rows at a time; each chunk's logits are upcast to fp32 only while its
loss and its gradients are computed, and then freed.  The gradients with respect to the
hidden states and the projection weight are computed in the forward pass (the loss is a
scalar whose gradient is only ever a scale), so the backward pass is two multiplications —
except in fp16, where the loss scale must multiply the gradient before it is cast to fp16
(as in stock fairseq, or the many tiny probabilities underflow and fairseq's dynamic loss
scaling sees different overflows), so each chunk's logits are recomputed in backward.

Values equal fairseq's ``label_smoothed_nll_loss`` on log-softmax in fp32 (and its
``nll_loss`` for ``epsilon = 0``, which is ``cross_entropy``):

    loss = (1 - ε - ε_i) · nll + ε_i · Σ_v (−log p_v),   ε_i = ε / (V − 1)

and d loss / d logits = (1 − ε − ε_i)(p − onehot) + ε_i (V·p − 1).
"""

import torch


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, target, epsilon, chunk_rows):
        needs_grad = hidden.requires_grad or weight.requires_grad
        vocab = weight.size(0)
        eps_i = epsilon / (vocab - 1)
        coef = (1.0 - epsilon - eps_i, eps_i)
        # fp16 needs the loss scale (known only in backward) applied before the gradient is
        # cast to fp16, or the many tiny probabilities underflow; there the gradient is
        # recomputed in backward from the saved log-normalisers.  bf16/fp32 have fp32's range.
        eager = needs_grad and hidden.dtype != torch.float16
        loss = hidden.new_zeros((), dtype=torch.float32)
        nll = hidden.new_zeros((), dtype=torch.float32)
        lse_all = hidden.new_empty(hidden.size(0), dtype=torch.float32)
        grads = _Grads(hidden, weight) if eager else None
        for start in range(0, hidden.size(0), chunk_rows):
            rows = slice(start, start + chunk_rows)
            h, t = hidden[rows], target[rows]
            logits = (h @ weight.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            lse_all[rows] = lse
            chunk_nll = lse - logits.gather(1, t[:, None]).squeeze(1)
            nll += chunk_nll.sum()
            if epsilon > 0:
                loss += (coef[0] * chunk_nll + coef[1] * (vocab * lse - logits.sum(-1))).sum()
            else:
                loss += chunk_nll.sum()
            if eager:
                grads.add(rows, h, weight, _logit_grad(logits, lse, t, coef, vocab, 1.0))
        if eager:
            ctx.save_for_backward(grads.hidden, grads.weight_fp32)
        else:
            ctx.save_for_backward(hidden, weight, target, lse_all)
        ctx.eager, ctx.coef, ctx.chunk_rows = eager, coef, chunk_rows
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss, grad_nll):
        # only the (smoothed) loss is back-propagated in training; nll is reported
        if ctx.eager:
            grad_hidden, grad_weight = ctx.saved_tensors
            dtype = grad_hidden.dtype
        else:
            hidden, weight, target, lse_all = ctx.saved_tensors
            grads = _Grads(hidden, weight)
            for start in range(0, hidden.size(0), ctx.chunk_rows):
                rows = slice(start, start + ctx.chunk_rows)
                h = hidden[rows]
                logits = (h @ weight.t()).float()
                grads.add(rows, h, weight,
                          _logit_grad(logits, lse_all[rows], target[rows], ctx.coef, weight.size(0), grad_loss))
            return grads.hidden, grads.weight_fp32.to(weight.dtype), None, None, None
        gh = grad_hidden * grad_loss.to(dtype) if ctx.needs_input_grad[0] else None
        gw = (grad_weight * grad_loss).to(dtype) if ctx.needs_input_grad[1] else None
        return gh, gw, None, None, None


def _logit_grad(logits, lse, target, coef, vocab, scale):
    """d loss / d logits, in place of ``logits``: a·(p − onehot) + b·(V·p − 1), times scale."""
    a, b = coef
    grad = logits.sub_(lse[:, None]).exp_()
    if b:
        grad.mul_(a + b * vocab).sub_(b)
    grad[torch.arange(target.numel(), device=target.device), target] -= a
    return grad.mul_(scale) if not (isinstance(scale, float) and scale == 1.0) else grad


class _Grads:
    """Gradients w.r.t. the hidden states (their dtype) and the weight (fp32 accumulator)."""

    def __init__(self, hidden, weight):
        self.hidden = torch.empty_like(hidden)
        self.weight_fp32 = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)

    def add(self, rows, h, weight, grad_logits):
        g = grad_logits.to(h.dtype)
        self.hidden[rows] = g @ weight
        if g.dtype == torch.float32:
            self.weight_fp32.addmm_(g.t(), h)
        else:  # half-precision product, accumulated over chunks in fp32
            self.weight_fp32.add_(g.t() @ h)


def linear_cross_entropy(hidden, weight, target, epsilon=0.0, chunk_rows=4096):
    """Summed (label-smoothed) loss and summed nll of ``softmax(hidden @ weight.T)`` at ``target``.

    Args:
        hidden: (N, D) features of the positions to score (padding already removed).
        weight: (V, D) output projection (no bias, as in BART).
        target: (N,) token ids.
        epsilon: label smoothing ε (0 = plain cross-entropy).
        chunk_rows: rows projected at a time; memory is chunk_rows × V × 4 bytes.

    The nll output carries no gradient (as fairseq reports it); the loss does.
    """
    if hidden.dim() != 2 or target.dim() != 1 or hidden.size(0) != target.size(0):
        raise ValueError(f"hidden (N, D) and target (N,) expected, got {tuple(hidden.shape)} and {tuple(target.shape)}")
    return _LinearCrossEntropy.apply(hidden, weight, target, float(epsilon), int(chunk_rows))
