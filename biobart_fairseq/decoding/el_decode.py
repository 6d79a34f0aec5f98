"""The one decoding path of a trained linking model: ``biobart-el-eval`` (a binarized split)
and :class:`biobart_fairseq.inference.linker.Linker` (mentions of a user's text) both load
the model with :func:`load`, decode an :class:`~biobart_fairseq.data.el_dataset.EntityLinkingDataset`
with :func:`decode` and map the generated token ids to KB names and CUIs with
:func:`read_kb_names`.  So a mention gets the same names from both, in the same order.
"""

import os
import warnings

from .. import errors

TASK = "biomed_entity_linking"


def read_kb_names(path):
    """token-id tuple -> (name, [cuis]) from ``kb_names.tsv``; ValueError / UnusableInput
    name the file and line of a bad one (not UTF-8, empty file, wrong fields)."""
    from ..data.el_formats import read_lines

    out = {}
    for lineno, line in read_lines(path):
        cols = line.split("\t")
        if len(cols) != 3 or not all(t.isdigit() for t in cols[2].split()):
            raise ValueError(f"{path}:{lineno}: expected name<TAB>cuis<TAB>token ids")
        out[tuple(int(t) for t in cols[2].split())] = (cols[0], cols[1].split("|"))
    return out


def check_task(path, task_name):
    if task_name != TASK:
        from .. import hub

        raise hub.wrong_task(path, task_name, f"entity linking (--task {TASK})")


def load(data, checkpoint, cpu=True, trie=None, checked=False):
    """(models, task) of an entity-linking checkpoint, its data folder set to ``data`` (and its
    KB trie to ``trie`` when given); errors.Unusable for a file that is no checkpoint or a model
    of another task (``checked``: the caller has made sure)."""
    from .. import hub, register

    if not checked:
        check_task(checkpoint, hub.checkpoint_task(checkpoint)[0])
    register()  # biomed_entity_linking and the weights_only workaround for fairseq checkpoints
    import torch
    from fairseq import checkpoint_utils

    overrides = {"data": data, **({"trie": trie} if trie else {})}
    with warnings.catch_warnings():  # compat's documented weights_only workaround: nothing to tell the user
        warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.*")
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides=overrides)
    for m in models:
        m.eval()
        if not cpu and torch.cuda.is_available():
            m.cuda()
    return models, task


def output_length(task, dataset):
    """Decoder steps the longest prefix of ``dataset`` + the longest KB name + ``</s>`` need."""
    return int(dataset.prefix_lens.max(initial=0)) + task.trie.max_length


def build_generator(task, models, beam=5, lenpen=1.0, max_len_b=None):
    """The task's generator; ``max_len_b`` (with ``max_len_a`` 0) the length limit, else
    fairseq's default."""
    from fairseq.dataclass.configs import GenerationConfig

    max_len_b = GenerationConfig.max_len_b if max_len_b is None else max_len_b
    gcfg = GenerationConfig(beam=beam, nbest=beam, lenpen=lenpen, max_len_a=0, max_len_b=max_len_b, min_len=1)
    return task.build_generator(models, gcfg)


def decode(task, models, dataset, beam=5, batch_size=32, max_tokens=None, lenpen=1.0, progress=None, gen=None):
    """-> list (dataset order) of ranked hypotheses ``[(name_token_ids, score), ...]``;
    ``progress.update(n)`` as each batch of n mentions is done."""
    from fairseq import utils

    gen = gen or build_generator(task, models, beam, lenpen, output_length(task, dataset))
    with warnings.catch_warnings():  # fairseq's loader asks for pinned memory on CPU too: not the user's concern
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        itr = task.get_batch_iterator(
            dataset, max_tokens=max_tokens, max_sentences=batch_size, ignore_invalid_inputs=False,
            required_batch_size_multiple=1, num_workers=0).next_epoch_itr(shuffle=False)
    out = [None] * len(dataset)
    use_cuda = next(models[0].parameters()).is_cuda
    for sample in itr:
        if use_cuda:
            sample = utils.move_to_cuda(sample)
        hypos = task.inference_step(gen, models, sample)
        for sid, plen, hs in zip(sample["id"].tolist(), sample["prefix_lens"].tolist(), hypos):
            out[sid] = [(tuple(h["tokens"][plen:-1].tolist()), float(h["score"])) for h in hs]
        if progress is not None:
            progress.update(len(hypos))
    return out


def named(hyps, kb_names):
    """Ranked hypotheses -> ``[(name or None, [cuis], score)]`` (None: not a KB name, which the
    trie rules out; counted by el-eval)."""
    out = []
    for ids, score in hyps or []:
        hit = kb_names.get(ids)
        out.append((hit[0], list(hit[1]), score) if hit else (None, [], score))
    return out


def top_concepts(named_hyps, k):
    """The first ``k`` distinct CUIs of ranked names, each with the name and score that
    brought it first: ``[(cui, name, score)]``."""
    out, seen = [], set()
    for name, cuis, score in named_hyps:
        for c in cuis:
            if c not in seen and len(out) < k:
                seen.add(c)
                out.append((c, name, score))
    return out


def is_el_data(folder):
    """Whether ``folder`` looks like a biobart-prepare-el model-input folder."""
    return all(os.path.isfile(os.path.join(folder, f)) for f in ("kb_names.tsv", "dict.source.txt"))
