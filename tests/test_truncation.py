"""Over-long seq2seq inputs are counted, not silently cut: biobart-binarize-seq2seq's stats.json on
the real MEDIQA-MAS test split at a 50k GPT-2 BPE (issue 22: a third of its sources exceed BART's
1,024 positions), checked against

* an independent count: the test sources encoded here with fairseq's own GPT-2 encoder
  (``gpt2_bpe_utils``, not the project's BPE module), + the ``</s>`` fairseq-preprocess appends;
* what fairseq itself cuts: the binarized split loaded by the translation task's
  ``load_langpair_dataset`` with and without ``--truncate-source``, at the default and at limits
  just at / below one source's length;

and carried into results.json with the one-line note of an affected test split."""

import json
import shutil

import pytest

from biobart_fairseq.cli import binarize_seq2seq, prepare_seq2seq, write_results
from biobart_fairseq.data import seq2seq_lengths as L

from conftest import SHARED_DATA

MAS = SHARED_DATA / "mediqa2021_mas"


@pytest.fixture(scope="module")
def mas_test(gpt2_50k, tmp_path_factory):
    """(prepared test split, its data-bin) of MEDIQA-MAS, binarized at the 50k BPE."""
    if not MAS.is_dir():
        pytest.skip(f"real data not found at {MAS}")
    tmp = tmp_path_factory.mktemp("mas")
    assert prepare_seq2seq.main(["--dataset", "mediqa_mas", "--input", str(MAS), "-o", str(tmp / "prep")]) == 0
    only_test = tmp / "prep-test"  # the test split alone: half the BPE work
    only_test.mkdir()
    for side in ("source", "target"):
        shutil.copy(tmp / "prep" / f"test.{side}", only_test / f"test.{side}")
    rc = binarize_seq2seq.main([
        "--data-dir", str(only_test), "-o", str(tmp / "bin"), "--bpe", "gpt2", "--encoder-json", gpt2_50k["encoder_json"],
        "--vocab-bpe", gpt2_50k["vocab_bpe"], "--dict", gpt2_50k["dict_txt"], "--workers", "1", "--keep-bpe-text"])
    assert rc == 0
    return only_test, tmp / "bin"


def _fairseq_lengths(path, gpt2):
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    enc = get_encoder(gpt2["encoder_json"], gpt2["vocab_bpe"])
    with open(path, encoding="utf-8") as f:
        return [len(enc.encode(" ".join(line.split()))) + 1 for line in f]  # + the </s> fairseq appends


def test_counts_equal_an_independent_encoding(mas_test, gpt2_50k):
    prep, data_bin = mas_test
    stats = json.loads((data_bin / "stats.json").read_text())
    src = _fairseq_lengths(prep / "test.source", gpt2_50k)
    tgt = _fairseq_lengths(prep / "test.target", gpt2_50k)
    assert len(src) == 80 == stats["examples"]["test"]
    want = {"source": sum(n > 1024 for n in src), "target": sum(n > 1024 for n in tgt),
            "longest_source": max(src), "longest_target": max(tgt),
            "max_source_positions": 1024, "max_target_positions": 1024}
    assert stats["truncated"]["test"] == want
    # the finding on real data: about a third of the test sources do not fit (26 of 80 at
    # the BPE it used; a BPE learnt on other text splits words differently)
    assert 20 <= want["source"] <= 32 and want["longest_source"] > 5000


def _fairseq_cut(data_bin, max_source_positions):
    """How many test sources fairseq's translation task shortens under --truncate-source."""
    from fairseq.data import Dictionary
    from fairseq.tasks.translation import load_langpair_dataset

    d = Dictionary.load(str(data_bin / "dict.source.txt"))

    def load(truncate):
        return load_langpair_dataset(str(data_bin), "test", "source", d, "target", d, combine=False,
                                     dataset_impl="mmap", upsample_primary=1, left_pad_source=True,
                                     left_pad_target=False, max_source_positions=max_source_positions,
                                     max_target_positions=1024, truncate_source=truncate, load_alignments=False)
    full, cut = load(False), load(True)
    assert all(len(cut.src[i]) <= max_source_positions for i in range(len(cut)))
    return sum(len(cut.src[i]) < len(full.src[i]) for i in range(len(full))), list(full.src.sizes)


def test_counts_are_the_sources_fairseq_cuts(mas_test):
    _, data_bin = mas_test
    encoded = data_bin / "bpe-text"  # the very text fairseq-preprocess binarized
    _, sizes = _fairseq_cut(data_bin, 1024)
    assert L.line_lengths(encoded / "test.source") == sizes  # tokens + </s>, as fairseq reads them
    some = sorted(sizes)[40]  # the median source: a limit at its length keeps it whole, one less cuts it
    for limit in (1024, some, some - 1):
        rec, _ = L.count_splits(encoded, ["test"], limit, 1024)
        assert rec["test"]["source"] == _fairseq_cut(data_bin, limit)[0], limit
    at, below = (L.count_splits(encoded, ["test"], n, 1024)[0]["test"]["source"] for n in (some, some - 1))
    assert below == at + sizes.count(some)


def test_results_carry_the_counts_and_the_recipe_line(mas_test, tmp_path, capsys):
    _, data_bin = mas_test
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"rouge1": 30.0, "rougeL": 20.0, "n": 80}))
    gen = tmp_path / "generate.out"  # fairseq-generate's closing line (format of fairseq_cli/generate.py)
    gen.write_text("S-0\tx\nD-0\t-0.5\ty\n2026-12-03 13:00:00 | INFO | fairseq_cli.generate | Translated 80 sentences "
                   "(2,841 tokens) in 93.2s (0.86 sentences/s, 30.48 tokens/s)\n")
    out = tmp_path / "results.json"
    rc = write_results.main(["--kind", "seq2seq", "--dataset", "mediqa_mas", "--scores", str(scores),
                             "--scorer-args=--no-bertscore", "--binarize-stats", str(data_bin / "stats.json"),
                             "--generate-log", str(gen), "-o", str(out), "--quiet"])
    assert rc == 0
    rec = json.loads(out.read_text())
    stats = json.loads((data_bin / "stats.json").read_text())
    assert rec["truncated"] == stats["truncated"]
    assert rec["speed"] == {"items": 80, "unit": "sentence", "seconds": 93.2, "items_per_s": 0.86, "tokens": 2841,
                            "tokens_per_s": 30.48, "measured_by": "fairseq-generate"}
    err = capsys.readouterr().err.strip().splitlines()
    t = stats["truncated"]["test"]
    assert err == [f"biobart-results: note: {t['source']} test source(s) longer than 1024 positions (up to "
                   f"{t['longest_source']}) were cut to their first 1023 tokens (--truncate-source) "
                   f"(counts in {data_bin / 'stats.json'})"]
