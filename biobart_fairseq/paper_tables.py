"""The paper's Tables 2-6 beside our runs: load the transcription (``data/paper_tables.json``),
place each results record in its cell, and render markdown / CSV / JSON or a figure.

A cell is (table, paper row, dataset, metric).  Our value for a cell is every test-split record
of that dataset whose ``paper_row`` is the row: one run gives its value, several (seeds) give
their mean and sample standard deviation.  A cell without a run is "missing", never filled in.
"""

import csv
import io
import json
import math
import os
from collections import defaultdict

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "paper_tables.json")
TABLES = ("2", "3", "4", "5", "6")
SCORED_KINDS = ("seq2seq", "el", "ner")
PAPER_BERTSCORE = "roberta-large"  # §5.3: "RoBERTa-large is used as scorer in BERTscore"


def load_paper(path=DATA):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def place_runs(records, default_row=None):
    """-> ({(row, dataset, metric): [(value, record path, BERTScore model), ...]}, [unplaced records]).
    Only test-split records of scored kinds count; ``default_row`` places records naming none."""
    ours, unplaced = defaultdict(list), []
    for rec in records:
        if rec["kind"] not in SCORED_KINDS or rec["split"] != "test":
            continue
        row = rec.get("paper_row") or default_row
        if row is None:
            unplaced.append(rec)
            continue
        scorer = (rec.get("metric_details") or {}).get("bertscore_model")
        for metric, value in rec["metrics"].items():
            ours[(row, rec["dataset"], metric)].append((float(value), rec.get("_path"), scorer))
    return ours, unplaced


def summarize(values):
    """mean, sample sd (None for one run), n."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return mean, sd, n


def cells(paper, ours, tables=TABLES):
    """Every cell of the chosen tables, in the paper's order, with paper / ours / diff."""
    out = []
    for t in tables:
        tab = paper["tables"][t]
        for row in tab["rows"]:
            for ds in tab["datasets"]:
                for metric in ds["metrics"]:
                    runs = ours.get((row, ds["key"], metric), [])
                    p = tab["values"][row][ds["key"]][metric]
                    cell = {"table": t, "row": row, "dataset": ds["key"], "metric": metric, "paper": p,
                            "ours": None, "ours_sd": None, "n_runs": len(runs), "diff": None,
                            "runs": [path for _, path, _ in runs]}
                    if metric == "bertscore_f1":  # ours scored by another model than the paper's: flagged
                        cell["bertscore_models"] = sorted({m for _, _, m in runs if m and os.path.basename(
                            m.rstrip("/")) != PAPER_BERTSCORE})
                    if runs:
                        cell["ours"], cell["ours_sd"], _ = summarize([v for v, _, _ in runs])
                        if p is not None:
                            cell["diff"] = round(cell["ours"] - p, 6)  # no float noise (27.24 - 25 = 2.2399999...)
                    out.append(cell)
    return out


def _fmt(v, decimals, signed=False):
    return "–" if v is None else (f"{v:+.{decimals}f}" if signed else f"{v:.{decimals}f}")


def cell_text(cell, decimals):
    paper = _fmt(cell["paper"], decimals)
    if cell["ours"] is None:
        return f"{paper} / missing"
    ours = _fmt(cell["ours"], decimals) + ("†" if cell.get("bertscore_models") else "")
    if cell["n_runs"] > 1:
        ours += f"±{cell['ours_sd']:.{decimals}f} (n={cell['n_runs']})"
    return f"{paper} / {ours} / {_fmt(cell['diff'], decimals, signed=True)}"


def _blocks(tab):
    sizes, ds, out, i = tab.get("blocks") or [len(tab["datasets"])], tab["datasets"], [], 0
    for n in sizes:
        out.append(ds[i:i + n])
        i += n
    return out


def render_markdown(paper, table_cells, tables=TABLES):
    by_key = {(c["table"], c["row"], c["dataset"], c["metric"]): c for c in table_cells}
    lines = ["Each cell: paper / ours / ours − paper. Ours = one run, or mean±sample sd over n runs (seeds); "
             "'missing' = no run of ours for that cell."]
    for t in tables:
        tab = paper["tables"][t]
        lines += ["", f"### {tab['title']}"]
        for block in _blocks(tab):
            cols = [(d, m) for d in block for m in d["metrics"]]
            head = ["Model"] + [f"{d['name']} {paper['metrics'][m]['label']}" for d, m in cols]
            lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for row in tab["rows"]:
                texts = [cell_text(by_key[(t, row, d["key"], m)], paper["metrics"][m]["decimals"]) for d, m in cols]
                lines.append("| " + " | ".join([paper["row_labels"][row]] + texts) + " |")
            sources = [f"{d['name']}: {tab['sota_sources'][d['key']]}" for d in block if d["key"] in tab["sota_sources"]]
            if sources:
                lines.append("\nState-of-the-art sources: " + "; ".join(sources))
        other = sorted({m for c in table_cells if c["table"] == t for m in c.get("bertscore_models", ())})
        if other:
            lines.append(f"\n† BERTScore of ours computed with {', '.join(other)}, not RoBERTa-large as in the paper.")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("table", "row", "dataset", "metric", "paper", "ours", "ours_sd", "n_runs", "diff")


def render_csv(table_cells):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for c in table_cells:
        w.writerow({k: ("" if c[k] is None else c[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def render_json(paper, table_cells, records, unplaced):
    return json.dumps({"paper": paper["paper"], "cells": table_cells,
                       "runs": [r.get("_path") for r in records],
                       "unplaced_runs": [r.get("_path") for r in unplaced]}, indent=1) + "\n"


# --- figure ------------------------------------------------------------------------------------------
def plot_path(path, table):
    stem, ext = os.path.splitext(path)
    return f"{stem}-table{table}{ext or '.png'}"


def plot_table(paper, table_cells, t, path):
    """One figure for table ``t``: a panel per dataset, metrics along x; for each paper row an
    open marker at the paper's value and a filled one (± sd bar) at ours, joined by a line so
    the gap shows.  BERTScore (0-1 in the paper) is drawn x 100 to share the axis."""
    import logging

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its font-search debug log floods stderr
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = paper["tables"][t]
    rows = [r for r in tab["rows"] if r != "sota"]
    n = len(tab["datasets"])
    ncols = min(n, 4)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(7.5, 3.6 * ncols), 3.4 * nrows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_key = {(c["row"], c["dataset"], c["metric"]): c for c in table_cells if c["table"] == t}
    for ax, ds in zip(axes.flat, tab["datasets"]):
        for j, row in enumerate(rows):
            for i, m in enumerate(ds["metrics"]):
                c, k = by_key[(row, ds["key"], m)], 100.0 if m == "bertscore_f1" else 1.0
                x = i + (j - (len(rows) - 1) / 2) * 0.8 / len(rows)
                style = dict(color=colors[j % len(colors)], label=paper["row_labels"][row] if i == 0 else None)
                if c["paper"] is not None:
                    ax.plot([x], [c["paper"] * k], "o", mfc="none", **style)
                if c["ours"] is not None:
                    ax.errorbar([x], [c["ours"] * k], yerr=[(c["ours_sd"] or 0) * k], fmt="o", **dict(style, label=None))
                    if c["paper"] is not None:
                        ax.plot([x, x], [c["paper"] * k, c["ours"] * k], "-", color=style["color"], lw=1)
        ax.set_xticks(range(len(ds["metrics"])))
        ax.set_xticklabels([paper["metrics"][m]["label"] + ("×100" if m == "bertscore_f1" else "")
                            for m in ds["metrics"]], rotation=30, fontsize=8)
        ax.set_title(ds["name"], fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(rows), fontsize=8, frameon=False)
    fig.suptitle(f"{tab['title'].split(':')[0]}: open = paper, filled = ours (± sd over runs); "
                 "no filled marker = no run of ours", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- plans (examples/reproduce*.sh, DRY_RUN=1) ---------------------------------------------------------
def sequences_per_gpu_hour(paper, size):
    """Training throughput implied by §5.1: 120k updates x 2560 sequences of 512 tokens on 16 A100s
    in 100 h (base) / 168 h (large).  The plans divide a run's training sequences by it."""
    pre = paper["pretraining"]
    return pre["updates"] * pre["batch_sequences"] / (pre["gpus"] * pre["hours"][size])


def _main(argv):
    """``python paper_tables.py rate SIZE`` | ``train-size DATASET`` | ``pretrain-hours SIZE UPDATES``:
    numbers for the reproduce scripts' plans (run as a file: no fairseq import)."""
    paper = load_paper()
    if argv[:1] == ["rate"]:
        return f"{sequences_per_gpu_hour(paper, argv[1]):.0f}"
    if argv[:1] == ["train-size"]:
        return str(paper["table1_train"].get(argv[1], ""))
    if argv[:1] == ["pretrain-hours"]:
        pre = paper["pretraining"]
        return f"{pre['gpus'] * pre['hours'][argv[1]] * int(argv[2]) / pre['updates']:.0f}"
    raise SystemExit(f"usage: {_main.__doc__}")


if __name__ == "__main__":
    import sys

    print(_main(sys.argv[1:]))
