"""Loading a biomed_denoising checkpoint with its BPE (stock BARTModel.from_pretrained
fails on such checkpoints) and filling masks from the command line."""

import re
import sys

import pytest

from biobart_fairseq import from_pretrained
from conftest import run


def test_fill_mask_cli(tiny_run, pubmed_bin):
    save, _ = tiny_run
    sentence = "The patients were treated with <mask> for two weeks."
    res = run([sys.executable, "-m", "biobart_fairseq.cli.fill_mask", "--checkpoint", str(save / "checkpoint_last.pt"),
               "--data", str(pubmed_bin), "--topk", "2", sentence])
    assert res.returncode == 0, res.stdout[-3000:]
    lines = res.stdout.splitlines()
    at = lines.index(sentence)
    assert all(re.match(r"\s+-?[0-9.]+\s+\S", line) for line in lines[at + 1: at + 3])


def test_hub_encodes_with_the_data_bpe(tiny_run, pubmed_bin):
    save, _ = tiny_run
    hub = from_pretrained(str(save), "checkpoint_last.pt", data_dir=str(pubmed_bin))
    text = "Emphysema and pulmonary fibrosis coexist."
    tokens = hub.encode(text)
    assert tokens[0] == hub.task.source_dictionary.bos() and tokens[-1] == hub.task.source_dictionary.eos()
    assert hub.task.source_dictionary.unk() not in tokens.tolist()
    assert hub.decode(tokens) == text
    assert len(hub.fill_mask(["Emphysema and <mask> fibrosis coexist."], topk=2)[0]) == 2


def test_missing_files_are_named(tiny_run, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        from_pretrained(str(tiny_run[0]), "nope.pt", data_dir=str(tmp_path))
    res = run([sys.executable, "-m", "biobart_fairseq.cli.fill_mask", "--checkpoint", "x.pt", "--data", ".", "no mask"])
    assert res.returncode == 2 and "no <mask> in" in res.stdout
