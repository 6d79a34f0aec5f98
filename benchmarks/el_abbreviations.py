"""Agreement of our offline abbreviation definitions (Schwartz & Hearst, biobart_fairseq/data/
abbreviations.py) with the corpus annotations, on the real NCBI-disease and BC5CDR files.

Reference pairs come from the annotators, not from any abbreviation tool: an annotated mention
written ``LONG FORM (SF)`` where SF is itself annotated, with the same concept ids, right
inside the parentheses, and SF looks like an abbreviation (no space, at most 10 characters,
an upper-case letter, shorter than the long form); each (document, SF) once.  For each pair:
did we define SF in that document, and with exactly the annotated long form (ignoring case)?

    python benchmarks/el_abbreviations.py [--data ../shared/data] [--show 10]
"""

import argparse
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from biobart_fairseq.data import el_formats as F  # noqa: E402
from biobart_fairseq.data.abbreviations import find_abbreviations  # noqa: E402

FILES = {
    "NCBI-disease": ["ncbi_disease/train/NCBItrainset_corpus.txt", "ncbi_disease/devel/NCBIdevelopset_corpus.txt",
                     "ncbi_disease/test/NCBItestset_corpus.txt"],
    "BC5CDR": ["bc5cdr/CDR_TrainingSet.PubTator.txt", "bc5cdr/CDR_DevelopmentSet.PubTator.txt",
               "bc5cdr/CDR_TestSet.PubTator.txt"],
}


def looks_like_abbreviation(sf, lf):
    return " " not in sf and len(sf) <= 10 and any(c.isupper() for c in sf) and len(sf) < len(lf)


def reference_pairs(mentions):
    """(SF, annotated long form) pairs of one document."""
    text = mentions[0].text
    by_start = {m.start: m for m in mentions}
    seen = set()
    for m in mentions:
        sf = by_start.get(m.end + 2)
        if (text[m.end:m.end + 2] == " (" and sf is not None and text[sf.end:sf.end + 1] == ")"
                and set(sf.cuis) == set(m.cuis) and looks_like_abbreviation(sf.mention, m.mention)
                and sf.mention not in seen):
            seen.add(sf.mention)
            yield sf.mention, m.mention


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    p.add_argument("--show", type=int, default=8, help="disagreements to print per corpus")
    args = p.parse_args()
    for name, files in FILES.items():
        docs = defaultdict(list)
        for f in files:
            for r in F.read_pubtator(os.path.join(args.data, f)):
                if isinstance(r, F.Mention):
                    docs[(f, r.doc_id)].append(r)
        n = found = same = 0
        misses = []
        for ms in docs.values():
            defined = find_abbreviations(ms[0].text)
            for sf, lf in reference_pairs(ms):
                n += 1
                ours = defined.get(sf)
                found += ours is not None
                same += ours is not None and ours.lower() == lf.lower()
                if ours is None or ours.lower() != lf.lower():
                    misses.append((sf, lf, ours))
        print(f"{name}: {n} annotated 'long form (SF)' pairs; SF defined by us {found} ({found / n:.1%}); "
              f"same long form {same} ({same / n:.1%}); of those we define, same {same / max(found, 1):.1%}")
        for sf, lf, ours in misses[:args.show]:
            print(f"    {sf!r}: annotated {lf!r}, ours {ours!r}")


if __name__ == "__main__":
    main()
