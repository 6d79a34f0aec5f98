"""Questions / dialogue histories -> summaries / replies, with a model fine-tuned by a seq2seq
recipe (``examples/<dataset>/run.sh``): the one code path of ``biobart-generate``,
``examples/ask.sh`` and :func:`biobart_fairseq.load`'s ``generate``.

Same decoding as the recipe's ``fairseq-generate``, so that an answer here is what the recipe's
scores describe:

* the text becomes the model's input as ``biobart-prepare-seq2seq`` + ``biobart-binarize-seq2seq``
  made the training data: whitespace normalised per line, line breaks written as ``\\n``
  (:func:`~biobart_fairseq.data.seq2seq_readers.escape_newlines`), the data folder's BPE
  (``bpe.json``) applied to the line as it is, the dictionary's ``</s>`` appended;
* the recipe's decoding settings, from the ``results.json`` it wrote beside the checkpoint
  (beam, length penalty, min / max output length, no-repeat n-gram size);
* fairseq's ``SequenceGenerator`` built by the ``biomed_translation`` task (its CPU-correct
  n-gram blocker), batches from the task's own batch iterator, fairseq-generate's
  post-processing and BPE decoding; ``\\n`` in the output becomes a line break again.

Over-long input.  The recipes train and test with ``--truncate-source``: a source longer than
the model's positions keeps its first ``max_source_positions - 1`` tokens (plus ``</s>``).  We
do the same, so that generation matches the recipe's test set, but never silently: the
:class:`Generation` says where the input was cut (``truncated_at``, ``notes``), the command
writes the note into the output record and on stderr, and :meth:`Generator.generate` warns.
"""

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field, fields

from .. import errors, hub
from ..data import bpe as B
from ..data.seq2seq_readers import clean_text, escape_newlines, format_turns, unescape_newlines

#: tasks whose checkpoints are seq2seq generators (the recipes fine-tune with biomed_translation)
TASKS = ("translation", "biomed_translation")
#: what to use a checkpoint of another task for (in messages)
@dataclass
class DecodingSettings:
    """How to decode; the defaults are BioBART's own (beam 5, no length penalty, trigram
    blocking) with ask.sh's former output length, used only when no results.json is found."""

    beam: int = field(default=5, metadata={"help": "beam size"})
    lenpen: float = field(default=1.0, metadata={"help": "length penalty (1.0 = none)"})
    min_len: int = field(default=1, metadata={"help": "fewest output tokens (fairseq --min-len)"})
    max_len_b: int = field(default=200, metadata={"help": "most output tokens (fairseq --max-len-b; --max-len-a 0)"})
    no_repeat_ngram_size: int = field(default=3, metadata={"help": "no repeated n-gram of this size (0 = off)"})
    source: str = field(default="defaults (no results.json found)", metadata={"help": "where they came from"})

    KEYS = ("beam", "lenpen", "min_len", "max_len_b", "no_repeat_ngram_size")

    @classmethod
    def from_results(cls, path):
        """The ``decoding`` record of a recipe's results.json (errors.Unusable if it is none)."""
        try:
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
        except OSError as e:
            raise errors.Unusable(errors.os_error(e)) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise errors.Unusable(f"{path}: not a results.json ({e})") from None
        if not isinstance(rec, dict) or rec.get("kind") != "seq2seq" or not isinstance(rec.get("decoding"), dict):
            kind = rec.get("kind") if isinstance(rec, dict) else None
            raise errors.Unusable(f"{path}: not the results.json of a seq2seq recipe (kind {kind!r})")
        return cls(source=os.path.abspath(path)).updated(rec["decoding"])

    def updated(self, values):
        """A copy with the known keys of ``values`` (None = keep) taken over."""
        known = {f.name: f.type for f in fields(self)}
        new = asdict(self)
        for key in self.KEYS:
            if values.get(key) is not None:
                new[key] = (float if known[key] in (float, "float") else int)(values[key])
        return DecodingSettings(**new)

    def generation_config(self):
        """fairseq's GenerationConfig with these values (all else fairseq-generate's defaults)."""
        from fairseq.dataclass.configs import GenerationConfig

        return GenerationConfig(beam=self.beam, lenpen=self.lenpen, min_len=self.min_len, max_len_a=0,
                                max_len_b=self.max_len_b, no_repeat_ngram_size=self.no_repeat_ngram_size)


def resolve_settings(checkpoint, settings=None, **overrides):
    """``settings``: a results.json path, a dict of decoding values or a DecodingSettings; None:
    the results.json beside the checkpoint (the recipe writes it there), else the defaults.
    ``overrides`` (beam=..., lenpen=..., ...) win over all of them."""
    if isinstance(settings, DecodingSettings):
        found = settings
    elif isinstance(settings, dict):
        found = DecodingSettings(source="given").updated(settings)
    elif settings:
        found = DecodingSettings.from_results(settings)
    else:
        beside = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "results.json")
        found = DecodingSettings.from_results(beside) if os.path.isfile(beside) else DecodingSettings()
    unknown = set(overrides) - set(DecodingSettings.KEYS)
    if unknown:
        raise errors.Unusable(f"unknown decoding setting(s): {', '.join(sorted(unknown))}")
    return found.updated(overrides)


def _is_data_dir(folder):
    return bool(folder) and os.path.isfile(os.path.join(folder, "dict.source.txt"))


def find_data_dir(checkpoint, state_data=None, data_dir=None):
    """The binarized folder the model was trained on (dictionaries, ``bpe.json``): ``data_dir``;
    else the folder the checkpoint records (``--data``), the recipe's ``../data-bin`` beside
    the checkpoints folder, or the checkpoint's own folder."""
    if data_dir:
        if not _is_data_dir(data_dir):
            raise errors.Unusable(f"{data_dir}: not a biobart-binarize-seq2seq folder (no dict.source.txt)")
        return data_dir
    here = os.path.dirname(os.path.abspath(checkpoint))
    tried = [str(state_data).split(os.pathsep)[0]] if state_data else []
    tried += [os.path.join(os.path.dirname(here), "data-bin"), here]
    for folder in tried:
        if _is_data_dir(folder):
            return folder
    raise errors.Unusable(f"{checkpoint}: no binarized data folder found (looked in {', '.join(tried)}); "
                          "give it with --data (the recipe's WORK/data-bin)")


def source_line(text):
    """A text (real line breaks) or dialogue turns [(speaker, text), ...] -> the one-line source
    the recipe's data holds (biobart-prepare-seq2seq's cleaning and escaping)."""
    if not isinstance(text, str):
        text = format_turns((str(s).strip().capitalize(), clean_text(t)) for s, t in text)
    return " ".join(escape_newlines(clean_text(text)).split())


@dataclass
class Generation:
    """One output: ``text`` (line breaks restored), ``score`` (fairseq-generate's: the mean
    log2-probability of the output tokens, length penalty applied), ``source_tokens`` (the
    input's length in model tokens, ``</s>`` included, before any cut), ``truncated_at``
    (None, or the tokens kept), ``notes`` (what the user must be told)."""

    text: str
    score: float
    source_tokens: int
    truncated_at: int = None
    notes: list = field(default_factory=list)


class Generator:
    """See the module docstring; build with :meth:`from_path`."""

    def __init__(self, task, models, bpe_info, settings, device="cpu", batch_size=16, checkpoint=None):
        from fairseq import utils

        self.task, self.models, self.settings, self.device = task, models, settings, device
        self.batch_size, self.checkpoint, self.bpe_info = max(1, int(batch_size)), checkpoint, bpe_info
        self.encode_text = B.token_encoder(bpe_info)
        self.bpe = B.build(bpe_info)
        self.max_positions = utils.resolve_max_positions(task.max_positions(), *[m.max_positions() for m in models])
        self.generator = task.build_generator(models, settings.generation_config())

    @classmethod
    def from_path(cls, path, data_dir=None, device="cpu", settings=None, batch_size=16, **kw):
        """``path``: a checkpoint, or a folder holding checkpoint_best.pt (a recipe's WORK or
        WORK/checkpoints); ``data_dir``: its binarized data (default: see :func:`find_data_dir`);
        ``settings``: see :func:`resolve_settings`; ``kw``: decoding overrides (beam=3, ...).
        errors.Unusable for a checkpoint of another task, naming the file."""
        checkpoint = hub.find_checkpoint(path)
        task_name, trained_on = hub.checkpoint_task(checkpoint)
        if task_name not in TASKS:
            raise hub.wrong_task(checkpoint, task_name, "generation")
        settings = resolve_settings(checkpoint, settings, **kw)
        data_dir = find_data_dir(checkpoint, trained_on, data_dir)
        try:
            info, _ = B.resolve_info(data_dir)
        except B.BpeError as e:
            raise errors.Unusable(str(e)) from None
        task, models = hub.load_for_inference(checkpoint, "biomed_translation", data_dir, device,
                                              settings.generation_config())
        return cls(task, models, info, settings, device, batch_size, checkpoint)

    def encode(self, text):
        """-> (source token tensor ending in </s>, its length before a cut, tokens kept or None)."""
        line = source_line(text)
        if not line:
            raise errors.Unusable("empty input text")
        tokens = self.task.source_dictionary.encode_line(" ".join(self.encode_text(line)), add_if_not_exist=False,
                                                         append_eos=True).long()
        limit = self.max_positions[0] - 1  # --truncate-source: the first max_source_positions - 1, then </s>
        if tokens.numel() - 1 <= limit:
            return tokens, tokens.numel(), None
        import torch

        kept = torch.cat([tokens[:limit], tokens.new_tensor([self.task.source_dictionary.eos()])])
        return kept, tokens.numel(), limit

    def run(self, texts, progress=None):
        """``texts`` (str, or dialogue turns) -> [Generation], in input order."""
        encoded = []
        for i, t in enumerate(texts):
            try:
                encoded.append(self.encode(t))
            except errors.Unusable as e:
                raise errors.Unusable(f"text {i}: {e}") from None
        out = [None] * len(encoded)
        for ids, hypos in self._decode([e[0] for e in encoded], progress):
            for i, hypo in zip(ids, hypos):
                text, score = self._output(hypo[0])
                tokens, n, cut = encoded[i]
                notes = [] if cut is None else [
                    f"input cut at {cut} of {n - 1} tokens (the model reads {self.max_positions[0]} positions; "
                    "the recipes train and test with --truncate-source)"]
                out[i] = Generation(text, score, n, cut, notes)
        return out

    def generate(self, texts, progress=None):
        """``texts`` -> [output text], one per input; a warning names each input that was cut."""
        results = self.run(texts, progress)
        for i, g in enumerate(results):
            for note in g.notes:
                warnings.warn(f"text {i}: {note}", stacklevel=2)
        return [g.text for g in results]

    def _decode(self, sources, progress):
        """Yields (input indices, hypotheses) batch by batch, as fairseq's batch iterator groups them."""
        from fairseq import utils

        if not sources:
            return
        dataset = self.task.build_dataset_for_inference(sources, [s.numel() for s in sources])
        batches = self.task.get_batch_iterator(
            dataset=dataset, max_tokens=None, max_sentences=self.batch_size, max_positions=self.max_positions,
            ignore_invalid_inputs=False, required_batch_size_multiple=1, disable_iterator_cache=True,
        ).next_epoch_itr(shuffle=False)
        for sample in batches:
            if str(self.device) != "cpu":
                sample = utils.apply_to_sample(lambda t: t.to(self.device), sample)
            hypos = self.task.inference_step(self.generator, self.models, sample)
            ids = sample["id"].tolist()
            yield ids, hypos
            if progress is not None:
                progress.update(len(ids))

    def _output(self, hypo):
        """fairseq-generate's D- line for a hypothesis (its text and base-2 score), newlines restored."""
        from fairseq import utils
        from fairseq_cli.generate import get_symbols_to_strip_from_output

        _, text, _ = utils.post_process_prediction(
            hypo_tokens=hypo["tokens"].int().cpu(), src_str="", alignment=hypo["alignment"], align_dict=None,
            tgt_dict=self.task.target_dictionary, remove_bpe=None,
            extra_symbols_to_ignore=get_symbols_to_strip_from_output(self.generator))
        return unescape_newlines(self.bpe.decode(text)), float(hypo["score"]) / math.log(2)
