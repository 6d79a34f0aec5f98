"""Output projection + (label-smoothed) cross-entropy without a vocabulary-sized tensor.

fairseq's criteria project every target position to the vocabulary, upcast the whole
``(tokens, vocab)`` tensor to fp32 and take its log-softmax — for BART-base with 32k target
tokens per batch that is 6.6 GB written and read several times per step, most of a
step's memory traffic.  Here the hidden states of the *non-padding* positions are
projected a chunk of rows at a time; each chunk's logits are upcast to fp32 only while its
loss and its gradients are computed, and then freed.  The gradients with respect to the
hidden states and the projection weight are computed in the forward pass (the loss is a
scalar whose gradient is only ever a scale), so the backward pass is two multiplications.

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
        a, b = 1.0 - epsilon - eps_i, eps_i
        loss = hidden.new_zeros((), dtype=torch.float32)
        nll = hidden.new_zeros((), dtype=torch.float32)
        grad_hidden = torch.empty_like(hidden) if needs_grad else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if needs_grad else None
        for start in range(0, hidden.size(0), chunk_rows):
            h = hidden[start:start + chunk_rows]
            t = target[start:start + chunk_rows]
            logits = (h @ weight.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            chunk_nll = lse - logits.gather(1, t[:, None]).squeeze(1)
            nll += chunk_nll.sum()
            if epsilon > 0:
                smooth = vocab * lse - logits.sum(-1)
                loss += (a * chunk_nll + b * smooth).sum()
            else:
                loss += chunk_nll.sum()
            if needs_grad:
                # logits becomes the gradient in place: softmax, then the two loss terms
                grad = logits.sub_(lse[:, None]).exp_()
                if epsilon > 0:
                    grad.mul_(a + b * vocab).sub_(b)
                grad[torch.arange(t.numel(), device=t.device), t] -= a
                g = grad.to(hidden.dtype)
                grad_hidden[start:start + chunk_rows] = g @ weight
                if g.dtype == torch.float32:
                    grad_weight.addmm_(g.t(), h)
                else:  # half-precision product, accumulated over chunks in fp32
                    grad_weight.add_(g.t() @ h)
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss, grad_nll):
        grad_hidden, grad_weight = ctx.saved_tensors
        # only the (smoothed) loss is back-propagated in training; nll is reported
        gh = grad_hidden * grad_loss.to(grad_hidden.dtype) if ctx.needs_input_grad[0] else None
        gw = (grad_weight * grad_loss).to(ctx.weight_dtype) if ctx.needs_input_grad[1] else None
        return gh, gw, None, None, None


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
