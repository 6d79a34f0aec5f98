"""biobart-tables: the paper's Tables 2-6 with our runs beside them.

    biobart-tables work/ checkpoints/                 # markdown, every table
    biobart-tables runs/ --tables 2 4 --format csv    # one line per cell
    biobart-tables runs/ --plot gaps.png              # also gaps-table2.png ... one figure per table

Finds every results.json (written by the recipes, see biobart-results) under the given
folders.  A run fills the cells of its dataset in the row it stands for (its record's
paper_row: bart-base, biobart-base, bart-large, biobart-large, or the Table 6 arms ti / ti+sp).
Each cell shows the paper's value, ours and ours - paper; several runs of one cell (seeds) show
their mean and sample standard deviation; a cell without a run says "missing".
Exit status: 0; 2 bad arguments; 3 tables written but some results.json could not be read
(listed on stderr).
"""

import argparse
import os
import sys

from .. import errors as E
from .. import paper_tables as P
from .. import results as R

PROG = "biobart-tables"


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders searched for results.json (or the files)")
    p.add_argument("--tables", nargs="+", choices=P.TABLES, default=list(P.TABLES),
                   help="which of the paper's tables (default: all)")
    p.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown",
                   help="markdown: the paper's layout; csv/json: one entry per cell (default: %(default)s)")
    p.add_argument("--row", choices=R.PAPER_ROWS, help="place runs whose record names no paper row in this row")
    p.add_argument("--plot", metavar="OUT.png",
                   help="also draw one figure per table: OUT-table2.png, OUT-table4.png, ... (matplotlib)")
    p.add_argument("-o", "--output", help="write the table here instead of stdout")
    return p.parse_args(argv)


def read_records(dirs):
    records, bad = [], []
    for path in R.find(dirs):
        try:
            records.append(R.load(path))
        except R.ResultsError as e:
            bad.append(str(e))
    return records, bad


def main(argv=None):
    args = parse_args(argv)
    missing = [d for d in args.run_dirs if not os.path.exists(d)]
    if missing:
        return E.fail(PROG, E.missing(missing[0], folder_ok=True))
    records, bad = read_records(args.run_dirs)
    paper = P.load_paper()
    ours, unplaced = P.place_runs(records, args.row)
    table_cells = P.cells(paper, ours, args.tables)
    if args.format == "markdown":
        text = P.render_markdown(paper, table_cells, args.tables)
    elif args.format == "csv":
        text = P.render_csv(table_cells)
    else:
        text = P.render_json(paper, table_cells, records, unplaced)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.plot:
        for t in args.tables:
            print(f"{PROG}: wrote {P.plot_table(paper, table_cells, t, P.plot_path(args.plot, t))}", file=sys.stderr)
    used = sum(1 for c in table_cells if c["n_runs"])
    print(f"{PROG}: {len(records)} results.json read, {used} cells filled", file=sys.stderr)
    for rec in unplaced:
        print(f"{PROG}: note: {rec['_path']}: no paper row (set PAPER_ROW in the recipe or pass --row)", file=sys.stderr)
    for msg in bad:
        print(f"{PROG}: skipped {msg}", file=sys.stderr)
    return E.EXIT_BAD_RECORDS if bad else E.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
