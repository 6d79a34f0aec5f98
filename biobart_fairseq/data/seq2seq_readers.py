"""Readers for the paper's seq2seq datasets, each in the format its authors publish it.

Every reader returns ``{split: [Example, ...]}`` and records the records it could not use in a
:class:`Problems` (file, position, reason) instead of dropping them silently.  The position is
the file line for the line-based text files (MedDialog/CovidDialog: the ``id=`` line of the
dialogue; MEDIQA 2021 ``qid||text`` files), the spreadsheet row for ``.xlsx`` (``row 12``)
and the object key for JSON (``record "5"``, ``question "1" answer "1_Answer2"``): the rule of
:mod:`biobart_fairseq.errors`.  Texts keep real
newlines here; the CLI decides how to serialise them (see :func:`escape_newlines`).

What forms source and target follows the BioBART paper (§5.2-5.3) and its data scripts:

===============  ===========================================  ====================================
dataset          source                                       target
===============  ===========================================  ====================================
covid_dialog     dialogue history before a doctor turn        that doctor turn
icliniq, hcm     the patient/doctor dialogue                  the "Description" (summary), "Q. " cut
meqsum           the consumer health question (``CHQ``)       ``Summary``
mediqa_qs        ``NLM Question`` (train: MeQSum ``CHQ``)     ``Summary``
mediqa_mas       question + every answer of that question     multi-answer abstractive summary
                 (train, MEDIQA-AnS: question + section, and  (train: ``answer_abs_summ``)
                 question + full page, one example each)
mediqa_ans       BioASQ / MedInfo ``articles``                ``summary`` (``<s>``/``</s>`` removed)
                 (test, MEDIQA-AnS: question + page/section)  (test: ``answer_abs_summ``)
===============  ===========================================  ====================================
"""

import json
import os
import random
import re
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tqdm import tqdm

from ..errors import BadRecords
from .xlsx import read_xlsx_records

SPLITS = ("train", "valid", "test")

# Table 1 of the paper (train, valid, test); None = no such split in the paper.
TABLE1 = {
    "covid_dialog": (490, 63, 61),
    "meqsum": (500, None, 500),
    "mediqa_qs": (1000, 50, 100),
    "mediqa_mas": (1104, 50, 80),
    "mediqa_ans": (38166, 174, 552),
    "icliniq": (24851, 3105, 3108),
    "healthcaremagic": (181122, 22641, 22642),
}


@dataclass
class Example:
    source: str
    target: str
    id: str = ""


class Problems(BadRecords):
    """Bad records (reported in the one form of :class:`biobart_fairseq.errors.BadRecords`)
    and the records left out by deliberate filters (counted, not errors)."""

    def __init__(self, prog="biobart-prepare-seq2seq", shown=20):
        super().__init__(prog, shown)
        self.filtered: Dict[str, int] = {}

    def filter(self, reason, n=1):
        self.filtered[reason] = self.filtered.get(reason, 0) + n


# --- text helpers ---------------------------------------------------------------------------
def clean_text(text) -> str:
    """Whitespace-normalise each line, drop blank lines, keep line breaks as "\\n"."""
    if text is None:
        return ""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def escape_newlines(text: str) -> str:
    """One example per line: a backslash becomes ``\\\\`` and a newline the two characters ``\\n``.
    :func:`unescape_newlines` inverts it exactly."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def unescape_newlines(text: str) -> str:
    return re.sub(r"\\(\\|n)", lambda m: "\n" if m.group(1) == "n" else "\\", text)


def write_splits(out_dir, splits, newlines="escape", limit=None) -> Dict[str, int]:
    """``OUT/{split}.{source,target}``, one example a line (``newlines``: "escape" with
    :func:`escape_newlines`, "space" joins the lines); a split absent from ``splits`` has its
    files of an earlier run removed, never left stale.  -> {split: examples written}."""
    fmt = escape_newlines if newlines == "escape" else (lambda t: t.replace("\n", " "))
    counts = {}
    for split in SPLITS:
        paths = [os.path.join(out_dir, f"{split}.{side}") for side in ("source", "target")]
        examples = splits.get(split)
        if examples is None:
            for stale in paths:
                if os.path.exists(stale):
                    os.remove(stale)
            continue
        examples = examples[:limit] if limit is not None else examples
        with open(paths[0], "w", encoding="utf-8") as fs, open(paths[1], "w", encoding="utf-8") as ft:
            for ex in tqdm(examples, desc=f"write {split}", unit="ex", file=sys.stderr, disable=len(examples) < 5000):
                fs.write(fmt(ex.source) + "\n")
                ft.write(fmt(ex.target) + "\n")
        counts[split] = len(examples)
    return counts


def strip_sentence_tags(text: str) -> str:
    """Remove the literal ``<s>``/``</s>`` tags the BioASQ/MedInfo summaries carry (as tags:
    ``str.strip('<s>')`` would also eat leading/trailing 's' letters)."""
    return re.sub(r"</?s>", " ", text)


def check_pair(ex: Example, problems: Problems, path, position, label="") -> Optional[Example]:
    """``ex`` with clean texts, or None (a problem) when one is empty; ``label`` names the
    record in the reason where the position does not (a dialogue at its ``id=`` line)."""
    ex.source, ex.target = clean_text(ex.source), clean_text(ex.target)
    if not ex.source or not ex.target:
        reason = "empty " + ("source" if not ex.source else "target")
        problems.add(path, position, f"{label}: {reason}" if label else reason)
        return None
    return ex


def split_sizes(n: int, table: Tuple[int, int, int]) -> Tuple[int, int]:
    """(train, valid) sizes: Table 1's exactly when the total matches, else the same shares."""
    total = sum(table)
    if n == total:
        return table[0], table[1]
    return round(n * table[0] / total), round(n * table[1] / total)


# --- MedDialog / CovidDialog plain-text format ----------------------------------------------
@dataclass
class Dialogue:
    id: str
    url: str
    description: str
    turns: List[Tuple[str, str]]  # (speaker, utterance)
    path: str
    line: int


_SPEAKER = re.compile(r"^\s*(Patient|Doctor)\s*:\s*(.*)$", re.I)


def read_meddialog(path, problems: Problems) -> List[Dialogue]:
    """Parse the MedDialog text format (also CovidDialog's): blocks that start with ``id=N``,
    then the URL, ``Description`` and its text, ``Dialogue`` and ``Patient:``/``Doctor:`` turns.
    A block without a Dialogue section or without any turn is reported and skipped."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().replace("\r\n", "\n").split("\n")
    blocks, cur = [], None
    for lineno, raw in enumerate(lines, start=1):
        m = re.match(r"^id=(\S+)\s*$", raw.strip())
        if m:
            cur = (m.group(1), lineno, [])
            blocks.append(cur)
        elif cur is not None:
            cur[2].append(raw.replace("\r", " "))
        elif raw.strip():
            problems.add(path, lineno, "text before the first id= line")
    out = []
    for did, lineno, body in blocks:
        url, section, desc, turns = "", None, [], []
        for raw in body:
            s = raw.strip()
            if section is None and not url and s.startswith("http"):
                url = s
            elif s == "Description":
                section = "description"
            elif s == "Dialogue":
                section = "dialogue"
            elif section == "description":
                desc.append(raw)
            elif section == "dialogue":
                m = _SPEAKER.match(raw)
                if m:
                    turns.append([m.group(1).capitalize(), [m.group(2)] if m.group(2).strip() else []])
                elif turns:
                    turns[-1][1].append(raw)
                elif s:
                    problems.add(path, lineno, f"dialogue id={did}: dialogue text before the first speaker")
        if section != "dialogue":
            problems.add(path, lineno, f"dialogue id={did}: no Dialogue section")
            continue
        clean_turns = [(spk, clean_text("\n".join(t))) for spk, t in turns]
        if not clean_turns:
            problems.add(path, lineno, f"dialogue id={did}: no Patient:/Doctor: turn")
            continue
        empty = [i for i, (_, t) in enumerate(clean_turns) if not t]
        if empty:
            problems.add(path, lineno, f"dialogue id={did}: empty utterance (turn {empty[0] + 1})")
            continue
        out.append(Dialogue(did, url, clean_text("\n".join(desc)), clean_turns, str(path), lineno))
    return out


def format_turns(turns) -> str:
    return "\n".join(f"{spk}: {text}" for spk, text in turns)


def covid_dialog(inputs, problems: Problems, seed: int = 11111, **_):
    """CovidDialog-English.  As upstream ``download_dialogs.py``: dialogues where one speaker
    talks twice in a row are dropped (counted, not an error), the rest are shuffled with
    ``random.seed(11111)`` and split 80/10/10 by dialogue; every doctor turn is one example
    whose source is the dialogue before it.  This gives Table 1's 490/63/61 exactly."""
    dialogs = []
    for path in inputs["dialogs"]:
        dialogs += read_meddialog(path, problems)
    kept = []
    for d in dialogs:
        spk = [s for s, _ in d.turns]
        if any(a == b for a, b in zip(spk, spk[1:])):
            problems.filter("same speaker twice in a row (dropped as upstream)")
            continue
        kept.append(d)
    order = list(range(len(kept)))
    random.Random(seed).shuffle(order)
    n = len(order)
    bounds = {"train": order[: int(0.8 * n)], "valid": order[int(0.8 * n): int(0.9 * n)], "test": order[int(0.9 * n):]}
    splits = {}
    for split, idxs in bounds.items():
        splits[split] = []
        for i in idxs:
            d = kept[i]
            for k, (spk, text) in enumerate(d.turns):
                if spk != "Doctor":
                    continue
                if k == 0:
                    problems.add(d.path, d.line, f"dialogue id={d.id}: doctor turn with no history before it")
                    continue
                splits[split].append(Example(format_turns(d.turns[:k]), text, f"{d.id}:{k}"))
    return splits


def _meddialog_summaries(name):
    def reader(inputs, problems: Problems, seed: int = 1, **_):
        """MedDialog-derived summarization (Mrini et al.): the dialogue -> its Description, the
        leading "Q. " removed.  BioBART shuffled without a seed, so the exact split cannot be
        reproduced; we shuffle with ``--seed`` and use Table 1's sizes (its shares for other totals)."""
        examples = []
        for path in inputs["dialogs"]:
            for d in read_meddialog(path, problems):
                ex = Example(format_turns(d.turns), re.sub(r"^Q\.\s*", "", d.description), d.id)
                ex = check_pair(ex, problems, d.path, d.line, f"dialogue id={d.id}")
                if ex:
                    examples.append(ex)
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        n_train, n_valid = split_sizes(len(order), TABLE1[name])
        pick = lambda idxs: [examples[i] for i in idxs]  # noqa: E731
        return {"train": pick(order[:n_train]), "valid": pick(order[n_train:n_train + n_valid]),
                "test": pick(order[n_train + n_valid:])}
    reader.__name__ = name
    return reader


icliniq = _meddialog_summaries("icliniq")
healthcaremagic = _meddialog_summaries("healthcaremagic")


# --- spreadsheets: MeQSum, MEDIQA-QS ----------------------------------------------------------
def _xlsx_pairs(path, problems: Problems, source_cols, target_col="Summary"):
    header, records = read_xlsx_records(path)
    src_col = next((c for c in source_cols if c in header), None)
    if src_col is None or target_col not in header:
        raise ValueError(f"{path}: expected columns {' or '.join(source_cols)} and {target_col}, found {header}")
    out = []
    for rec in records:
        ex = Example(rec.get(src_col, ""), rec.get(target_col, ""), str(rec.get("q_id") or rec.get("File") or rec["_row"]))
        ex = check_pair(ex, problems, path, f"row {rec['_row']}")
        if ex:
            out.append(ex)
    return out


def meqsum(inputs, problems: Problems, **_):
    """MeQSum (``MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx``, columns File | CHQ | Summary):
    Table 1's 500/-/500 is the first 500 rows for training and the other 500 for test; there is
    no validation split (the recipe trains without validation and keeps the last checkpoint)."""
    rows = []
    for path in inputs["train"]:
        rows += _xlsx_pairs(path, problems, ("CHQ", "NLM Question"))
    return {"train": rows[:500], "test": rows[500:]}


def mediqa_qs(inputs, problems: Problems, **_):
    """MEDIQA 2021 Task 1: trained on MeQSum (all 1,000 pairs), validated and tested on the
    task's own workbooks (columns ``NLM Question`` | ``Summary``)."""
    splits = {}
    for split in SPLITS:
        if inputs.get(split):
            splits[split] = [ex for p in inputs[split] for ex in _xlsx_pairs(p, problems, ("NLM Question", "CHQ"))]
    return splits


# --- JSON: MEDIQA-AnS, BioASQ/MedInfo ------------------------------------------------------------
def _load_json(path):
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON: {e}") from None


def _ans_examples(path, problems: Problems, fields=("section", "article")):
    """MEDIQA-AnS ``question_driven_answer_summarization_primary_dataset.json``:
    ``{qid: {question, answers: {aid: {section, article, answer_abs_summ, ...}}, ...}}``.
    One example per answer and per field in ``fields``: question + that text -> answer_abs_summ."""
    data = _load_json(path)
    out = []
    for qid, q in data.items():
        if not isinstance(q, dict) or not isinstance(q.get("answers"), dict):
            problems.add(path, f'question "{qid}"', "no 'answers' object")
            continue
        for aid, ans in q["answers"].items():
            for fld in fields:
                ex = Example(f"{q.get('question', '')}\n{(ans or {}).get(fld, '')}", (ans or {}).get("answer_abs_summ", ""), f"{aid}:{fld}")
                if not clean_text(q.get("question")) or not clean_text((ans or {}).get(fld)):
                    problems.add(path, f'question "{qid}" answer "{aid}"', f"missing question or {fld}")
                    continue
                ex = check_pair(ex, problems, path, f'question "{qid}" answer "{aid}"')
                if ex:
                    out.append(ex)
    return out


def _articles_summary_examples(path, problems: Problems):
    """BioASQ-derived training / MedInfo validation JSON of Savery et al.'s
    qdriven-chiqa-summarization: ``{id: {question, articles, summary}}``; ``articles`` (a string
    or list of strings) -> ``summary`` with its ``<s>``/``</s>`` tags removed."""
    data = _load_json(path)
    out = []
    for key, rec in data.items():
        if not isinstance(rec, dict):
            problems.add(path, f'record "{key}"', "not an object")
            continue
        art = rec.get("articles")
        if isinstance(art, list):
            art = "\n".join(str(a) for a in art)
        ex = check_pair(Example(art or "", strip_sentence_tags(rec.get("summary") or ""), str(key)), problems, path, f'record "{key}"')
        if ex:
            out.append(ex)
    return out


def mediqa_ans(inputs, problems: Problems, ans_test_source="article", **_):
    """MEDIQA-AnS as in Savery et al. and the paper: train on BioASQ-derived data, validate on
    MedInfo, test on all of MEDIQA-AnS (one example per answer; ``article`` = the "Pages" setting)."""
    splits = {}
    if inputs.get("train"):
        splits["train"] = [e for p in inputs["train"] for e in _articles_summary_examples(p, problems)]
    if inputs.get("valid"):
        splits["valid"] = [e for p in inputs["valid"] for e in _articles_summary_examples(p, problems)]
    if inputs.get("test"):
        splits["test"] = [e for p in inputs["test"] for e in _ans_examples(p, problems, (ans_test_source,))]
    return splits


def _read_qid_lines(path, problems: Problems, where=None) -> Dict[str, str]:
    """``qid||text`` per line (MEDIQA 2021 Task 2 question and summary files); ``where`` (a
    dict), when given, gets each qid's ``(path, line)`` for later problems with it."""
    out = {}
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if "||" not in line:
                problems.add(path, lineno, "no '||' separator")
                continue
            qid, text = line.split("||", 1)
            if not text.strip():
                problems.add(path, lineno, "empty text")
                continue
            out[qid.strip()] = text
            if where is not None:
                where[qid.strip()] = (path, lineno)
    return out


def _mas_answers(paths, problems: Problems) -> Dict[str, List[str]]:
    """{question id: [answer, ...]} from the answers workbooks (empty answers are problems)."""
    answers: Dict[str, List[str]] = {}
    for p in paths:
        header, records = read_xlsx_records(p)
        qcol = next((c for c in ("QuestionID", "question_id") if c in header), None)
        if qcol is None or "Answer" not in header:
            raise ValueError(f"{p}: expected columns QuestionID/question_id and Answer, found {header} "
                             "(an empty header usually means a reader that cannot open Strict OOXML)")
        for rec in records:
            if not clean_text(rec.get("Answer")):
                problems.add(p, f"row {rec['_row']}", "empty answer")
                continue
            answers.setdefault(rec[qcol].strip(), []).append(rec["Answer"])
    return answers


def _mas_split(split, inputs, problems: Problems):
    questions, where = {}, {}  # a problem with a question is named at its line
    for p in inputs[f"{split}_questions"]:
        questions.update(_read_qid_lines(p, problems, where))
    summaries = {}
    for p in inputs[f"{split}_summaries"]:
        summaries.update(_read_qid_lines(p, problems))
    answers = _mas_answers(inputs[f"{split}_answers"], problems)
    out = []
    for qid, question in questions.items():
        path, line = where[qid]
        if qid not in summaries:
            problems.add(path, line, f"question {qid}: no reference summary")
            continue
        if qid not in answers:
            problems.add(path, line, f"question {qid}: no answers in the answers workbook")
            continue
        ex = check_pair(Example("\n".join([question] + answers[qid]), summaries[qid], qid), problems, path, line,
                        f"question {qid}")
        if ex:
            out.append(ex)
    return out


def mediqa_mas(inputs, problems: Problems, **_):
    """MEDIQA 2021 Task 2: train on MEDIQA-AnS (question + section and question + page per
    answer: 2 x 552 = 1,104), validate/test on the task's questions, answers workbook and
    multi-answer summaries (abstractive unless ``--mas-summary extractive``)."""
    splits = {}
    if inputs.get("train"):
        splits["train"] = [e for p in inputs["train"] for e in _ans_examples(p, problems)]
    for split in ("valid", "test"):
        roles = [f"{split}_questions", f"{split}_summaries", f"{split}_answers"]
        if all(inputs.get(r) for r in roles):
            splits[split] = _mas_split(split, inputs, problems)
        elif any(inputs.get(r) for r in roles):
            missing = [r for r in roles if not inputs.get(r)]
            raise ValueError(f"mediqa_mas {split}: missing input(s) for {', '.join(missing)}")
    return splits


READERS = {
    "covid_dialog": covid_dialog,
    "meqsum": meqsum,
    "mediqa_qs": mediqa_qs,
    "mediqa_mas": mediqa_mas,
    "mediqa_ans": mediqa_ans,
    "icliniq": icliniq,
    "healthcaremagic": healthcaremagic,
}


# --- input roles --------------------------------------------------------------------------------
def classify(dataset: str, path: str, mas_summary: str = "abstractive") -> Optional[str]:
    """Which input a file is, from its name (the names upstream publishes), or None."""
    name = os.path.basename(path).lower()
    if dataset in ("covid_dialog", "icliniq", "healthcaremagic"):
        return "dialogs" if name.endswith(".txt") else None
    if dataset == "meqsum":
        return "train" if name.endswith(".xlsx") else None
    if dataset == "mediqa_qs":
        if not name.endswith(".xlsx"):
            return None
        if "validation" in name:
            return "valid"
        if "test" in name:
            return "test"
        return "train"  # MeQSum
    if dataset == "mediqa_ans":
        if not name.endswith(".json"):
            return None
        if "bioasq" in name:
            return "train"
        if "medinfo" in name:
            return "valid"
        return "test"  # question_driven_answer_summarization_primary_dataset.json
    if dataset == "mediqa_mas":
        if name.endswith(".json"):
            return "train"
        split = "valid" if "validation" in name else "test" if "test" in name else None
        if split is None:
            return None
        if name.endswith(".xlsx") and "answers" in name:
            return f"{split}_answers"
        if "question" in name:
            return f"{split}_questions"
        wanted = "abstrative" if mas_summary == "abstractive" else "extractive"
        if "summar" in name and (wanted in name or mas_summary.replace("ive", "") in name):
            return f"{split}_summaries"
        return "ignored"  # the other summary flavour
    raise ValueError(f"unknown dataset {dataset!r}")
