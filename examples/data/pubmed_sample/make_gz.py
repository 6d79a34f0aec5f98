"""Rebuild ``sample_update.xml.gz`` from its readable source ``sample_update.xml.in``.

PubMed's daily update files are gzipped, so the demo sample ships its update file gzipped too.
The archive is written with a fixed timestamp and no embedded file name, so rerunning this
script gives a byte-identical file (and a clean ``git diff``)::

    python examples/data/pubmed_sample/make_gz.py
"""

import gzip
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    source = (HERE / "sample_update.xml.in").read_bytes()
    target = HERE / "sample_update.xml.gz"
    with open(target, "wb") as raw:
        # filename="" and mtime=0 keep the gzip header free of run-dependent bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as packed:
            packed.write(source)
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
