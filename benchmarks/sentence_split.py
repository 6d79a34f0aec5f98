"""Sentence splitters on hand-split biomedical abstracts: boundary F1 and sentences per second.

Gold: GENIA's MEDLINE abstracts in ``../shared/data/genia_nested_ner`` (dev + test: 398
abstracts, 3,099 hand-split sentences after the title), rebuilt into text by
:func:`biobart_fairseq.data.sentences.genia_gold_abstracts`.  Each splitter gets each abstract
as one string and is scored on where it puts sentence ends (precision, recall, F1 over
boundaries; see :func:`~biobart_fairseq.data.sentences.boundary_scores`).  Speed is gold
sentences over the wall time of splitting all abstracts (best of ``--repeat`` runs, one core).

Candidates: ours (``rules``), pysbd with our earlier fixes (the baseline), and whichever of
plain pysbd, blingfire, sentencex, nupunkt, syntok and spaCy's rule-based ``sentencizer`` are
installed (all run offline from their PyPI packages; missing ones are listed as such)::

    pip install blingfire sentencex nupunkt syntok spacy   # optional, for the comparison
    python benchmarks/sentence_split.py [--genia DIR] [--repeat 3]
"""

import argparse
import os
import sys
import time
from pathlib import Path

from biobart_fairseq.data.sentences import GENIA_FILES, boundary_scores, genia_gold_abstracts, split_sentences
from biobart_fairseq.data.sentences import split_sentences_pysbd

GENIA = Path(__file__).resolve().parents[1].parent / "shared/data/genia_nested_ner"


def _pysbd_plain():
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False)
    return segmenter.segment


def _blingfire():
    import blingfire

    return lambda text: blingfire.text_to_sentences(text).split("\n")


def _sentencex():
    import sentencex

    return lambda text: list(sentencex.segment("en", text))


def _nupunkt():
    import nupunkt

    return nupunkt.sent_tokenize


def _syntok():
    import syntok.segmenter as segmenter

    def split(text):
        return ["".join(t.spacing + t.value for t in sentence) for paragraph in segmenter.analyze(text)
                for sentence in paragraph]

    return split


def _spacy():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return lambda text: [sentence.text for sentence in nlp(text).sents]


CANDIDATES = {
    "rules (ours)": lambda: split_sentences,
    "pysbd + fixes": lambda: split_sentences_pysbd,
    "pysbd": _pysbd_plain,
    "blingfire": _blingfire,
    "sentencex": _sentencex,
    "nupunkt": _nupunkt,
    "syntok": _syntok,
    "spaCy sentencizer": _spacy,
}


def version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version as package_version

    package = {"rules (ours)": None, "pysbd + fixes": "pysbd", "spaCy sentencizer": "spacy"}.get(name, name)
    if package is None:
        return "-"
    try:
        return package_version(package)
    except PackageNotFoundError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genia", type=Path, default=GENIA, help=f"GENIA JSON-lines folder (default {GENIA})")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per splitter, best kept (default 3)")
    args = parser.parse_args()
    if not all((args.genia / name).is_file() for name in GENIA_FILES):
        print(f"GENIA gold files {GENIA_FILES} not found in {args.genia}", file=sys.stderr)
        return 1
    abstracts = genia_gold_abstracts(args.genia)
    sentences = sum(len(a) for a in abstracts)
    texts = [" ".join(a) for a in abstracts]
    print(f"machine: os.cpu_count() = {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; one core used")
    print(f"gold: {len(abstracts)} GENIA abstracts, {sentences} sentences, {sentences - len(abstracts)} boundaries")
    print(f"{'splitter':20s} {'version':>8s} {'P':>7s} {'R':>7s} {'F1':>7s} {'sent/s':>9s}")
    rows = []
    for name, load in CANDIDATES.items():
        try:
            split = load()
        except ImportError:
            print(f"{name:20s} not installed")
            continue
        scores = boundary_scores(split, abstracts)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for text in texts:
                split(text)
            best = min(best, time.perf_counter() - start)
        rows.append((name, scores.f1, sentences / best))
        print(f"{name:20s} {version(name):>8s} {scores.precision:7.4f} {scores.recall:7.4f} {scores.f1:7.4f} "
              f"{sentences / best:9.0f}")
    baseline = dict((name, (f1, speed)) for name, f1, speed in rows)["pysbd + fixes"]
    ours = dict((name, (f1, speed)) for name, f1, speed in rows)["rules (ours)"]
    print(f"rules vs pysbd + fixes: F1 {ours[0]:.4f} vs {baseline[0]:.4f}, x{ours[1] / baseline[1]:.0f} sentences/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
