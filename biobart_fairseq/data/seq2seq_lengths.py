"""Which seq2seq examples are longer than the model's positions, counted as fairseq will see them.

fairseq's ``translation`` task (``biomed_translation`` is the same) reads each binarized line as
its BPE tokens followed by ``</s>`` (fairseq-preprocess appends it; our lines carry no ``<s>``),
so an example of ``n`` BPE tokens takes ``n + 1`` positions on either side.  What happens to the
longer ones:

* sources: ``--truncate-source`` (every recipe passes it) keeps the first
  ``max_source_positions - 1`` tokens and ``</s>`` (``TruncateDataset`` over the source without
  its ``</s>``, then ``</s>`` again), so a source of ``n + 1 > max_source_positions`` is cut;
* targets: never cut.  Training skips them (fairseq filters examples longer than the model's
  positions and logs how many); ``fairseq-generate`` stops on them unless given
  ``--skip-invalid-size-inputs-valid-test`` (the test split would then lose those examples).

:func:`split_lengths` counts this from the BPE-encoded text fairseq-preprocess binarizes (one
line per example, tokens separated by spaces), so the counts name the very lines the model gets.
Light: no torch or fairseq.
"""

import os

#: what the lengths in stats.json count
LENGTH_UNIT = "BPE tokens + </s>, as fairseq's translation task reads a binarized line"


def line_lengths(path):
    """Positions each line of a BPE-encoded text file takes: its tokens + ``</s>``."""
    with open(path, encoding="utf-8") as f:
        return [len(line.split()) + 1 for line in f]


def split_lengths(source_lengths, target_lengths, max_source_positions, max_target_positions):
    """The ``stats.json["truncated"][split]`` record of one split (see the module docstring)."""
    return {
        "source": sum(n > max_source_positions for n in source_lengths),
        "target": sum(n > max_target_positions for n in target_lengths),
        "longest_source": max(source_lengths, default=0),
        "longest_target": max(target_lengths, default=0),
        "max_source_positions": max_source_positions,
        "max_target_positions": max_target_positions,
    }


def count_splits(encoded_dir, splits, max_source_positions, max_target_positions):
    """``({split: record}, {split: examples})`` from ``encoded_dir/{split}.{source,target}``."""
    truncated, examples = {}, {}
    for split in splits:
        src = line_lengths(os.path.join(encoded_dir, f"{split}.source"))
        tgt = line_lengths(os.path.join(encoded_dir, f"{split}.target"))
        truncated[split] = split_lengths(src, tgt, max_source_positions, max_target_positions)
        examples[split] = len(src)
    return truncated, examples


def describe(split, record, examples):
    """One line about a split with over-long examples, or None when there are none."""
    parts = []
    if record["source"]:
        parts.append(f"{record['source']} of {examples} sources are longer than {record['max_source_positions']} "
                     f"positions (longest {record['longest_source']}); --truncate-source keeps their first "
                     f"{record['max_source_positions'] - 1} tokens")
    if record["target"]:
        parts.append(f"{record['target']} of {examples} targets are longer than {record['max_target_positions']} "
                     f"positions (longest {record['longest_target']}); fairseq skips them in training and "
                     "fairseq-generate stops on them")
    return f"{split}: " + "; ".join(parts) if parts else None
