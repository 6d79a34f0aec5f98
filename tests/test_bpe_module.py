"""data/bpe.py: one BPE module; every prepared data folder carries its BPE and can be moved.

For each task a data folder is prepared with BART's kind of BPE (a real byte-level GPT-2 BPE in
GPT-2's file format, tiny), moved to another place, the original BPE files deleted, and the
folder used from the new place: the task loads it (whole-word masking for biomed_denoising,
word encoding for bartner_ner) or its recorded BPE re-encodes text to the ids it was
binarized with (seq2seq, entity linking).  Data binarized with plain fairseq-preprocess (no
bpe.json) gets the same BPE from fairseq's own --bpe flags.
"""

import json
import shutil
from argparse import Namespace

import pytest

from biobart_fairseq.data import bpe
from test_ner_formats import tiny_gpt2_files

DOCS = "Gout cells.\nCells of gout.\n\nThe cells.\nT cells of the cells.\n\nGout.\n"


@pytest.fixture()
def gpt2(tmp_path):
    """The BPE flags of the commands, for files that are deleted once the data is prepared."""
    src = tmp_path / "bpe_src"
    src.mkdir()
    return src, tiny_gpt2_files(src)


def move_and_forget(folder, src, dest):
    """Move a prepared folder and delete the BPE files it was made from."""
    shutil.move(str(folder), str(dest))
    for name in ("encoder.json", "vocab.bpe"):
        (src / name).unlink()
    return dest


def setup_task(data, *flags):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(options.get_training_parser(), [str(data), *flags])
    return tasks.setup_task(convert_namespace_to_omegaconf(args).task)


def test_denoising_folder_moves(tmp_path, gpt2):
    from biobart_fairseq.cli import binarize

    src, flags = gpt2
    (tmp_path / "train.txt").write_text(DOCS)
    assert binarize.main(["--train", str(tmp_path / "train.txt"), "-o", str(tmp_path / "d"), "--workers", "1",
                          *flags]) == 0
    data = move_and_forget(tmp_path / "d", src, tmp_path / "elsewhere")
    assert json.loads((data / "bpe.json").read_text()) == {"type": "gpt2", "encoder_json": "encoder.json",
                                                           "vocab_bpe": "vocab.bpe"}
    task = setup_task(data, "--task", "biomed_denoising", "--arch", "bart_base", "--tokens-per-sample", "32")
    starts = task.word_starts()
    enc = json.loads((data / "encoder.json").read_text())
    d = task.dictionary
    # "Ġcells" begins a word, "c" (a byte inside one) does not
    assert starts[d.index(str(enc["Ġcells"]))] and not starts[d.index(str(enc["c"]))]
    task.load_dataset("train")
    assert len(task.dataset("train")) > 0

    # fairseq's BART recipe binarizes with plain fairseq-preprocess (no bpe.json) and passes --bpe
    # gpt2 --gpt2-encoder-json/--gpt2-vocab-bpe: whole-word masking takes the same table from those
    flag_dir = tmp_path / "flags"
    flag_dir.mkdir()
    for name in ("encoder.json", "vocab.bpe"):
        shutil.move(str(data / name), str(flag_dir / name))
    (data / "bpe.json").unlink()
    task = setup_task(data, "--task", "biomed_denoising", "--arch", "bart_base", "--tokens-per-sample", "32",
                      "--bpe", "gpt2", "--gpt2-encoder-json", str(flag_dir / "encoder.json"),
                      "--gpt2-vocab-bpe", str(flag_dir / "vocab.bpe"))
    assert task.word_starts().tolist() == starts.tolist()
    task.load_dataset("train")
    assert len(task.dataset("train")) > 0


def test_plain_fairseq_preprocess_data_uses_fairseqs_bpe_flags(tmp_path, gpt2):
    """No bpe.json: the record comes from --bpe gpt2 --gpt2-encoder-json/--gpt2-vocab-bpe."""
    src, _ = gpt2
    folder = tmp_path / "plain"
    folder.mkdir()
    cfg = Namespace(bpe="gpt2", gpt2_encoder_json=str(src / "encoder.json"), gpt2_vocab_bpe=str(src / "vocab.bpe"))
    info, where = bpe.resolve_info(str(folder), None, cfg)
    assert where == "--bpe gpt2" and info["encoder_json"] == str(src / "encoder.json")
    # a URL (fairseq's default for these flags) is refused rather than downloaded
    cfg.gpt2_encoder_json = "https://dl.fbaipublicfiles.com/fairseq/gpt2_bpe/encoder.json"
    with pytest.raises(bpe.BpeError, match="--gpt2-encoder-json naming a local file"):
        bpe.resolve_info(str(folder), None, cfg)
    # neither a record nor flags: the error lists the ways to name the BPE
    with pytest.raises(bpe.BpeError, match="bpe.json: not found.*--bpe gpt2 --gpt2-encoder-json"):
        bpe.resolve_info(str(folder), None, Namespace(bpe=None))


def test_seq2seq_folder_moves(tmp_path, gpt2):
    from fairseq.data import Dictionary, data_utils

    from biobart_fairseq.cli import binarize_seq2seq

    src, flags = gpt2
    prep = tmp_path / "prep"
    prep.mkdir()
    (prep / "train.source").write_text("Gout cells.\nThe T cells.\n")
    (prep / "train.target").write_text("Cells.\nT cells.\n")
    assert binarize_seq2seq.main(["--data-dir", str(prep), "-o", str(tmp_path / "s"), "--workers", "1", *flags]) == 0
    data = move_and_forget(tmp_path / "s", src, tmp_path / "elsewhere")
    info = bpe.read_info(str(data / "bpe.json"))
    d = Dictionary.load(str(data / "dict.source.txt"))
    binarized = data_utils.load_indexed_dataset(str(data / "train.source-target.source"), d)
    ids = [d.index(t) for t in bpe.token_encoder(info)("The T cells.")] + [d.eos()]
    assert binarized[1].tolist() == ids


def test_entity_linking_folder_moves(tmp_path, gpt2):
    """Entity-linking folders used to record absolute GPT-2 paths: now they carry the files."""
    from fairseq.data import Dictionary

    from biobart_fairseq.cli import prepare_el
    from test_el_prepare import tiny_ncbi

    src, flags = gpt2
    corpus = tiny_ncbi(tmp_path / "ncbi", [("Gout.", "Gout", "D1"), ("Cells.", "Cells", "D2"), ("Gout.", "Gout", "D3")])
    kb = tmp_path / "kb.txt"
    kb.write_text("D1||Gout\nD2||Cells\nD3||T cells\n")
    assert prepare_el.main(["--dataset", "ncbi", "--input", str(corpus), "--kb", str(kb), "-o", str(tmp_path / "e"),
                            *flags]) == 0
    data = move_and_forget(tmp_path / "e", src, tmp_path / "elsewhere")
    info = bpe.read_info(str(data / "bin" / "bpe.json"))
    encode = bpe.token_encoder(info)
    d = Dictionary.load(str(data / "bin" / "dict.target.txt"))
    rows = [line.rstrip("\n").split("\t") for line in (data / "bin" / "kb_names.tsv").open()]
    assert rows and all([str(d.index(t)) for t in encode(" " + name)] == ids.split() for name, _, ids in rows)
    task = setup_task(data / "bin", "--task", "biomed_entity_linking", "--arch", "bart_base")
    task.load_dataset("test")
    assert len(task.dataset("test")) == 1


def test_ner_folder_moves(tmp_path, gpt2):
    from biobart_fairseq.cli import prepare_ner

    src, flags = gpt2
    dev = tmp_path / "dev.txt"
    dev.write_text("Gout cells hurt\n0,0 ADR|1,1 Drug\n\nT cells\n0,1 Drug\n\n")
    assert prepare_ner.main(["--format", "dai", "--input", str(dev), "-o", str(tmp_path / "n"), *flags]) == 0
    data = move_and_forget(tmp_path / "n", src, tmp_path / "elsewhere")
    task = setup_task(data, "--task", "bartner_ner", "--arch", "bart_base")
    task.load_dataset("dev")
    enc = json.loads((data / "encoder.json").read_text())
    assert task.encode_word("cells") == [task.dictionary.index(str(enc["Ġcells"]))]
    assert len(task.dataset("dev")) == 2


def test_ner_folder_without_bpe_json_takes_fairseqs_flags(tmp_path, gpt2):
    """A folder without bpe.json (its BPE files gone too): bartner_ner takes fairseq's --bpe gpt2
    file flags and encodes words as with the record."""
    from biobart_fairseq.cli import prepare_ner

    src, flags = gpt2
    dev = tmp_path / "dev.txt"
    dev.write_text("Gout cells hurt\n0,0 ADR|1,1 Drug\n\n")
    assert prepare_ner.main(["--format", "dai", "--input", str(dev), "-o", str(tmp_path / "n"), *flags]) == 0
    for name in ("bpe.json", "encoder.json", "vocab.bpe"):
        (tmp_path / "n" / name).unlink()
    with pytest.raises(bpe.BpeError, match="bpe.json: not found"):
        setup_task(tmp_path / "n", "--task", "bartner_ner", "--arch", "bart_base")
    task = setup_task(tmp_path / "n", "--task", "bartner_ner", "--arch", "bart_base", "--bpe", "gpt2",
                      "--gpt2-encoder-json", str(src / "encoder.json"), "--gpt2-vocab-bpe", str(src / "vocab.bpe"))
    enc = json.loads((src / "encoder.json").read_text())
    assert task.encode_word("cells") == [task.dictionary.index(str(enc["Ġcells"]))]
    with pytest.raises(bpe.BpeError, match="--gpt2-encoder-json naming a local file"):  # fairseq's URL default
        setup_task(tmp_path / "n", "--task", "bartner_ner", "--arch", "bart_base", "--bpe", "gpt2")
