"""A real-size GPT-2-format byte-level BPE for tests: 50,265 entries, learnt on the shared data.

``build(folder)`` learns a byte-level BPE with HF ``tokenizers`` on the text of /work/shared/data
(PubMed XML abstracts and titles, the PubTator corpora of BC5CDR and NCBI-disease, the MEDIC
disease names, GENIA sentences, CovidDialog and MEDIQA-MAS texts: ~13 MB, enough for 50k merges)
and writes what ``biobart-convert hf-to-fairseq`` writes for facebook/bart-base:

* ``encoder.json`` -- token (GPT-2's byte-to-unicode form) -> id; ``<s> <pad> </s> <unk>`` are
  ids 0-3 and ``<mask>`` the last id, 50264, as in bart-base's ``vocab.json``;
* ``vocab.bpe`` -- ``#version: 0.2`` then one merge ``a b`` a line, ending with a newline
  (``fairseq.data.encoders.gpt2_bpe_utils.get_encoder`` drops the first and the last line);
* ``dict.txt`` -- fairseq's BART layout: one ``<gpt2 id> <count>`` line per id 4 ... 50263 (the
  fairseq Dictionary adds its 4 specials in front, so symbol ``str(i)`` has index ``i``; the
  tasks append ``<mask>``: 50,265 symbols), counts over every 8th line of the training text
  (fixed dictionaries ignore counts; encoding all of it would double the build time).

A few seconds on one core.  ``corpus_files()`` lists the text files it learns from.
"""

import html
import json
import os
import re
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VOCAB_SIZE = 50265  # facebook/bart-base
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
MASK = "<mask>"
COUNT_EVERY = 8
_XML_TEXT = re.compile(r"<(AbstractText|ArticleTitle)\b[^>]*>(.*?)</\1>", re.S)
_TAG = re.compile(r"<[^>]+>")


def available():
    """None, or why the BPE cannot be built here (the shared data folder is absent)."""
    return None if (SHARED_DATA / "pubmed_xml").is_dir() else f"shared data not found at {SHARED_DATA}"


def _pubtator(path):
    for line in open(path, encoding="utf-8"):
        parts = line.rstrip("\n").split("|", 2)
        if len(parts) == 3 and parts[1] in ("t", "a"):
            yield parts[2]


def _xml(path):
    text = open(path, encoding="utf-8").read()
    for m in _XML_TEXT.finditer(text):
        yield html.unescape(_TAG.sub("", m.group(2)))


def _medic(path):
    for line in open(path, encoding="utf-8"):
        if not line.startswith("#"):
            yield from (f for f in line.rstrip("\n").split("|")[1:] if f and not f[:1].isdigit())


def _genia(path):
    for line in open(path, encoding="utf-8"):
        yield " ".join(json.loads(line)["tokens"])


def _plain(path):
    yield from (line.rstrip("\n") for line in open(path, encoding="utf-8"))


def corpus_files():
    """[(path, reader)] of the shared text the BPE learns from (those present)."""
    d = SHARED_DATA
    files = [(p, _xml) for p in sorted((d / "pubmed_xml").glob("*.xml"))]
    files += [(p, _pubtator) for p in sorted((d / "bc5cdr").glob("*.PubTator.txt"))]
    files += [(p, _pubtator) for p in sorted((d / "ncbi_disease").glob("*/NCBI*_corpus.txt"))]
    files += [(d / "ncbi_disease/dictionary/medic_06Jul2012.txt", _medic)]
    files += [(p, _genia) for p in sorted((d / "genia_nested_ner").glob("*.jsonlines"))]
    files += [(d / "covid_dialog_english/COVID-Dialogue-Dataset-English.txt", _plain)]
    files += [(p, _plain) for p in sorted((d / "mediqa2021_mas").glob("*/*.txt"))]
    return [(p, r) for p, r in files if p.is_file()]


def corpus_lines():
    for path, reader in corpus_files():
        yield from (line for line in reader(path) if line.strip())


def build(folder):
    """Learn the BPE and write encoder.json, vocab.bpe and dict.txt into ``folder``; -> their paths
    as ``dict(encoder_json=..., vocab_bpe=..., dict_txt=...)``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - 1, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    lines = list(corpus_lines())
    tok.train_from_iterator(lines, trainer)
    vocab = tok.get_vocab()
    if len(vocab) != VOCAB_SIZE - 1:
        raise RuntimeError(f"the shared text gave {len(vocab)} BPE entries, not {VOCAB_SIZE - 1}")
    vocab[MASK] = VOCAB_SIZE - 1
    merges = json.loads(tok.to_str())["model"]["merges"]
    paths = {"encoder_json": folder / "encoder.json", "vocab_bpe": folder / "vocab.bpe", "dict_txt": folder / "dict.txt"}
    with open(paths["encoder_json"], "w", encoding="utf-8") as f:
        json.dump(dict(sorted(vocab.items(), key=lambda kv: kv[1])), f, ensure_ascii=False)
    with open(paths["vocab_bpe"], "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.write("".join((m if isinstance(m, str) else " ".join(m)) + "\n" for m in merges))
    counts = [0] * VOCAB_SIZE
    for enc in tok.encode_batch(lines[::COUNT_EVERY]):
        for i in enc.ids:
            counts[i] += 1
    with open(paths["dict_txt"], "w", encoding="utf-8") as f:
        f.write("".join(f"{i} {counts[i]}\n" for i in range(len(SPECIALS), VOCAB_SIZE - 1)))
    return {k: str(v) for k, v in paths.items()}


if __name__ == "__main__":
    import sys
    import time

    t0 = time.time()
    out = build(sys.argv[1] if len(sys.argv) > 1 else "bpe50k")
    print(out, f"{time.time() - t0:.1f}s", sum(os.path.getsize(p) for p in out.values()), "bytes")
