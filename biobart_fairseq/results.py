"""One results record per run: ``SAVE_DIR/results.json``, written by every recipe through
:func:`write` (the only writer) and read back by ``biobart-tables``.

A record says what was run and what came out, in the units of the paper's tables:

* ``metrics``: ROUGE-1/2/L x 100, BLEU (0-100), BERTScore F1 (0-1, as the paper prints it),
  Recall@1/@5 x 100, entity-level micro F1 x 100; ``scales`` names the unit of each one and
  ``metric_details`` says how it was computed (BERTScore model, number of test items, folds);
* ``paper_row``: the row of the paper's tables the run stands for (bart-base, biobart-base,
  bart-large, biobart-large, ti, ti+sp; null = none); for a pretraining run, the row of the models
  fine-tuned from its output;
* ``model``: the weights the run started from (path, sha256 of the file);
* ``checkpoint``: the checkpoint that was scored (path, sha256, training settings read from it);
* ``decoding``, ``settings``, ``command``: how it was produced; ``versions``: fairseq, torch,
  this plugin, Python, and the plugin's git commit when it runs from a checkout;
* ``speed`` (where measured): the decoding rate, ``{"items", "unit", "seconds", "items_per_s"}``
  as :meth:`biobart_fairseq.progress.Progress.summary` gives it (for the seq2seq recipes, read
  from fairseq-generate's closing "Translated N sentences ... in S s" line);
* ``truncated`` (seq2seq): per split, the sources/targets longer than the model's positions, as
  ``biobart-binarize-seq2seq`` counted them in its ``stats.json``.

This module imports neither torch nor fairseq at import time: recipes call it once per run and
``biobart-tables`` reads hundreds of records.
"""

import argparse
import datetime
import hashlib
import json
import os
import pickle
import platform
import re
import subprocess
import sys
import zipfile
from importlib import metadata

from .errors import os_error

SCHEMA = "biobart-results/1"
KINDS = ("seq2seq", "el", "ner", "pretrain")
PAPER_ROWS = ("bart-base", "biobart-base", "bart-large", "biobart-large", "ti", "ti+sp")

# metric -> unit, as in the paper's tables (Tables 2-6)
SCALES = {
    "rouge1": "F-measure x 100", "rouge2": "F-measure x 100", "rougeL": "F-measure x 100",
    "rougeLsum": "F-measure x 100", "bleu": "corpus BLEU (sacrebleu), 0-100",
    "bertscore_f1": "mean F1, 0-1 (the paper prints it this way)",
    "recall@1": "% of mentions (x 100)", "recall@5": "% of mentions (x 100)",
    "f1": "entity-level micro F1 x 100", "precision": "entity-level micro precision x 100",
    "recall": "entity-level micro recall x 100", "valid_loss": "cross-entropy, bits per token (base 2)",
}

REQUIRED = {
    "schema": str, "kind": str, "dataset": str, "split": str, "model": dict, "checkpoint": dict,
    "metrics": dict, "scales": dict, "metric_details": dict, "decoding": dict, "settings": dict,
    "versions": dict, "command": str, "created": str,
}


class ResultsError(ValueError):
    """A scorer output or record that cannot be used; the message names the file."""


# --- reading the scorers' outputs -------------------------------------------------------------------
def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ResultsError(os_error(e)) from None
    try:
        obj = json.loads(text.strip().splitlines()[-1]) if text.strip() else None
    except json.JSONDecodeError:
        obj = None
    if obj is None:  # a pretty-printed file (several lines) rather than one JSON line
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ResultsError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return obj


def seq2seq_metrics(scores_path, bertscore_model=None):
    """biobart-score's ``--json`` output -> (metrics, details).  ROUGE and BLEU are already on
    the paper's 0-100 scale there; BERTScore F1 stays 0-1 as in the paper."""
    s = _load_json(scores_path)
    metrics = {k: float(s[k]) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "bertscore_f1") if k in s}
    if not metrics:
        raise ResultsError(f"{scores_path}: no ROUGE/BLEU/BERTScore keys (is it biobart-score --json output?)")
    details = {"n": s.get("n"), "scorer": "biobart-score"}
    if "bertscore_f1" in metrics:  # biobart-score records its model; older files leave it to the caller
        details["bertscore_model"] = s.get("bertscore_model") or bertscore_model or "unknown"
    return metrics, details


def el_metrics(paths):
    """biobart-el-eval ``--results`` file(s) -> (metrics x 100, details).  Several files are
    folds (AskAPatient's 10): the paper reports their unweighted mean."""
    runs = [_load_json(p) for p in paths]
    for p, r in zip(paths, runs):
        if not any(k.startswith("R@") for k in r):
            raise ResultsError(f"{p}: no R@k keys (is it biobart-el-eval --results output?)")
    keys = [k for k in runs[0] if k.startswith("R@")]
    for p, r in zip(paths, runs):
        if [k for k in r if k.startswith("R@")] != keys:
            raise ResultsError(f"{p}: R@k keys {sorted(k for k in r if k.startswith('R@'))} differ from {paths[0]}'s")
    # the unweighted mean over folds (as biobart-el-eval --average), once every fold has the same R@k keys
    metrics = {f"recall@{k[2:]}": 100.0 * sum(float(r[k]) for r in runs) / len(runs) for k in keys}
    details = {"n": sum(int(r.get("n", 0)) for r in runs), "scorer": "biobart-el-eval",
               "match": "a gold CUI among the top-k names' CUIs"}
    if len(runs) > 1:
        details["folds"] = len(runs)
    if all("outputs_not_in_kb" in r for r in runs):
        details["outputs_not_in_kb"] = sum(r["outputs_not_in_kb"] for r in runs)
    return metrics, details


# "Translated 80 sentences (2,841 tokens) in 93.2s (0.86 sentences/s, 30.48 tokens/s)"
_TRANSLATED = re.compile(r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in ([\d.]+)s "
                         r"\(([\d.]+) sentences/s, ([\d.]+) tokens/s\)")


def generate_speed(path):
    """The decoding rate of a fairseq-generate output (its closing "Translated ..." line), in
    :meth:`Progress.summary`'s form plus tokens; None (and a warning) when the line is absent."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            found = _TRANSLATED.findall(f.read())
    except OSError as e:
        raise ResultsError(os_error(e)) from None
    if not found:
        print(f"biobart-results: warning: {path}: no 'Translated N sentences' line; no speed recorded", file=sys.stderr)
        return None
    n, tokens, seconds, per_s, tokens_per_s = found[-1]
    return {"items": int(n.replace(",", "")), "unit": "sentence", "seconds": float(seconds),
            "items_per_s": float(per_s), "tokens": int(tokens.replace(",", "")),
            "tokens_per_s": float(tokens_per_s), "measured_by": "fairseq-generate"}


def scorer_speed(path):
    """The ``speed`` a scorer wrote into its JSON output (biobart-el-eval, biobart-ner-score), or None."""
    speed = _load_json(path).get("speed")
    return speed if isinstance(speed, dict) else None


def truncation(stats_path):
    """``biobart-binarize-seq2seq``'s ``stats.json`` -> its ``truncated`` record (per split)."""
    stats = _load_json(stats_path)
    if not isinstance(stats.get("truncated"), dict):
        raise ResultsError(f"{stats_path}: no 'truncated' counts (binarized before they were counted? "
                           "run biobart-binarize-seq2seq again)")
    return stats["truncated"]


def truncation_note(truncated, split="test"):
    """One line when ``split`` has sources or targets longer than the model's positions, else None."""
    t = (truncated or {}).get(split)
    if not t or not (t.get("source") or t.get("target")):
        return None
    parts = []
    if t.get("source"):
        parts.append(f"{t['source']} {split} source(s) longer than {t['max_source_positions']} positions "
                     f"(up to {t['longest_source']}) were cut to their first {t['max_source_positions'] - 1} "
                     "tokens (--truncate-source)")
    if t.get("target"):
        parts.append(f"{t['target']} {split} target(s) longer than {t['max_target_positions']} positions")
    return "note: " + "; ".join(parts)


def ner_metrics(path):
    """biobart-ner-score ``--output-json`` -> (micro P/R/F1 x 100, details)."""
    s = _load_json(path)
    if "f1" not in s:
        raise ResultsError(f"{path}: no 'f1' key (is it biobart-ner-score output?)")
    metrics = {k: 100.0 * float(s[k]) for k in ("f1", "precision", "recall") if k in s}
    details = {"scorer": "biobart-ner-score", "match": "exact type and words, micro over entities"}
    details.update({k: s[k] for k in ("tp", "pred", "gold") if k in s})
    return metrics, details


# --- provenance ------------------------------------------------------------------------------------
def sha256_file(path, chunk=1 << 20):
    """sha256 of a file read in 1 MiB chunks (checkpoints are GBs; never held in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_ref(path):
    """{path, sha256}; sha256 is null (and a warning printed) when the file is absent."""
    if not path:
        return {"path": None, "sha256": None}
    if not os.path.isfile(path):
        print(f"biobart-results: warning: {path}: not found, its hash is recorded as null", file=sys.stderr)
        return {"path": os.path.abspath(path), "sha256": None}
    return {"path": os.path.abspath(path), "sha256": sha256_file(path)}


def cfg_get(cfg, section, key):
    sec = cfg.get(section) if isinstance(cfg, dict) else None
    if isinstance(sec, argparse.Namespace):  # fairseq keeps a legacy model's settings as a Namespace
        sec = vars(sec)
        if key == "_name":
            key = "arch" if section == "model" else key
    return sec.get(key) if isinstance(sec, dict) else None


class _Opaque:
    """Stands for any object of a class the settings do not need (tensors, meters, ...)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _SettingsUnpickler(pickle.Unpickler):
    """Unpickles a checkpoint's plain-Python parts (cfg, optimizer_history, extra_state) without
    torch: tensor storages are not read and every non-builtin class becomes _Opaque."""

    SAFE = ("builtins", "collections", "argparse", "datetime", "_codecs")

    def find_class(self, module, name):
        if module in self.SAFE or module.split(".")[0] == "numpy":
            return super().find_class(module, name)
        return _Opaque

    def persistent_load(self, pid):
        return None


def read_checkpoint_state(path):
    """The checkpoint's top-level dict, tensors left out.  torch.save's zip format is read with
    zipfile + pickle (no torch import: a recipe's last step should not cost seconds); the legacy
    format falls back to torch.load."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            with z.open(name) as f:
                return _SettingsUnpickler(f).load()
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def checkpoint_info(path):
    """Training settings and state stored in a fairseq checkpoint (no model is built)."""
    if not path or not os.path.isfile(path):
        return {}
    try:
        state = read_checkpoint_state(path)
    except Exception as e:  # noqa: BLE001  (a torn or foreign file: record why, keep the rest)
        return {"unreadable": f"{type(e).__name__}: {e}"[:300]}
    cfg = state.get("cfg") if isinstance(state.get("cfg"), dict) else {}
    hist = state.get("optimizer_history") or [{}]
    extra = state.get("extra_state") or {}
    info = {
        "task": cfg_get(cfg, "task", "_name"), "arch": cfg_get(cfg, "model", "_name"),
        "lr": cfg_get(cfg, "optimization", "lr"), "max_epoch": cfg_get(cfg, "optimization", "max_epoch"),
        "max_update": cfg_get(cfg, "optimization", "max_update"),
        "update_freq": cfg_get(cfg, "optimization", "update_freq"),
        "batch_size": cfg_get(cfg, "dataset", "batch_size"), "max_tokens": cfg_get(cfg, "dataset", "max_tokens"),
        "seed": cfg_get(cfg, "common", "seed"), "fp16": cfg_get(cfg, "common", "fp16"),
        "bf16": cfg_get(cfg, "common", "bf16"), "num_updates": hist[-1].get("num_updates"),
        "epoch": (extra.get("train_iterator") or {}).get("epoch"),
        "best_valid": extra.get("best"), "best_metric": cfg_get(cfg, "checkpoint", "best_checkpoint_metric"),
    }
    return {k: (float(v) if type(v).__module__ == "numpy" else v) for k, v in info.items()
            if v is not None and not isinstance(v, _Opaque)}


def versions():
    """Installed versions (from package metadata: importing fairseq takes seconds)."""
    def dist(*names):
        for n in names:
            try:
                return metadata.version(n)
            except metadata.PackageNotFoundError:
                continue
        return None

    out = {"fairseq": dist("fairseq-fixed", "fairseq"), "torch": dist("torch"),
           "biobart_fairseq": dist("biobart-fairseq"), "python": platform.python_version()}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            out["biobart_fairseq_git"] = head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _guess_row(model_path):
    """A paper row from the starting model's folder name (bart-base, biobart-large, ablation-TI, ...)."""
    name = os.path.basename(os.path.dirname(os.path.abspath(model_path))).lower().replace("_", "-").replace(".", "-")
    name = re.sub(r"^ablation-", "", name)
    return name if name in PAPER_ROWS else None


def resolve_paper_row(explicit, model_path):
    """The paper row a run stands for: the one given; else the row of our own pretraining run
    that produced the starting model (its results.json); else a guess from the model's folder."""
    if explicit:
        if explicit not in PAPER_ROWS:
            raise ResultsError(f"paper row {explicit!r}: expected one of {', '.join(PAPER_ROWS)}")
        return explicit
    if not model_path:
        return None
    beside = os.path.join(os.path.dirname(os.path.abspath(model_path)), "results.json")
    if os.path.isfile(beside):
        try:
            rec = _load_json(beside)
        except ResultsError:
            rec = {}
        if rec.get("kind") == "pretrain" and rec.get("paper_row") in PAPER_ROWS:
            return rec["paper_row"]
    return _guess_row(model_path)


# --- the record -------------------------------------------------------------------------------------
def _number(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_pairs(pairs, what):
    """["beam=5", "lenpen=1.0"] -> {"beam": 5, "lenpen": 1.0}."""
    out = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise ResultsError(f"{what} {p!r}: expected KEY=VALUE")
        out[key] = _number(value)
    return out


def build_record(kind, dataset, split, metrics, details, model=None, checkpoint=None, paper_row=None,
                 decoding=None, settings=None, command="", scores_files=(), speed=None, truncated=None):
    """A complete record (see the module docstring); validated before it is returned."""
    rec = {
        "schema": SCHEMA, "kind": kind, "dataset": dataset, "split": split,
        # a pretraining run's row is that of the models fine-tuned from its output: named by its folder
        "paper_row": resolve_paper_row(paper_row, checkpoint if kind == "pretrain" else model),
        "model": file_ref(model),
        "checkpoint": dict(file_ref(checkpoint), training=checkpoint_info(checkpoint)),
        "metrics": metrics, "scales": {k: SCALES[k] for k in metrics if k in SCALES},
        "metric_details": details, "decoding": decoding or {}, "settings": settings or {},
        "versions": versions(), "command": command,
        "scores_files": [os.path.abspath(p) for p in scores_files],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if speed is not None:
        rec["speed"] = speed
    if truncated is not None:
        rec["truncated"] = truncated
    problems = validate(rec)
    if problems:
        raise ResultsError("; ".join(problems))
    return rec


def validate(rec):
    """Schema problems of a record, as readable strings (empty list = valid)."""
    if not isinstance(rec, dict):
        return ["not a JSON object"]
    problems = [f"{k}: missing" for k in REQUIRED if k not in rec]
    problems += [f"{k}: expected {t.__name__}, got {type(rec[k]).__name__}"
                 for k, t in REQUIRED.items() if k in rec and not isinstance(rec[k], t)]
    if problems:
        return problems
    if rec["schema"] != SCHEMA:
        problems.append(f"schema: {rec['schema']!r}, expected {SCHEMA!r}")
    if rec["kind"] not in KINDS:
        problems.append(f"kind: {rec['kind']!r} not one of {', '.join(KINDS)}")
    if rec.get("paper_row") not in PAPER_ROWS + (None,):
        problems.append(f"paper_row: {rec['paper_row']!r} not one of {', '.join(PAPER_ROWS)} or null")
    for k, v in rec["metrics"].items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            problems.append(f"metrics.{k}: {v!r} is not a number")
        elif k not in rec["scales"]:
            problems.append(f"metrics.{k}: no entry in scales")
    for part in ("model", "checkpoint"):
        if set(rec[part]) < {"path", "sha256"}:
            problems.append(f"{part}: needs path and sha256")
        sha = rec[part].get("sha256")
        if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", str(sha)):
            problems.append(f"{part}.sha256: {sha!r} is not a sha256 hex digest")
    return problems


def write(path, rec):
    """Write a validated record atomically (a reader never sees half a file)."""
    problems = validate(rec)
    if problems:
        raise ResultsError(f"{path}: not written, invalid record: " + "; ".join(problems))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(rec, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def load(path):
    """A record from disk; ResultsError naming the file when it is not a valid record."""
    try:
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
    except OSError as e:
        raise ResultsError(os_error(e)) from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    problems = validate(rec)
    if problems:
        raise ResultsError(f"{path}: not a {SCHEMA} record: " + "; ".join(problems[:5]))
    rec["_path"] = os.path.abspath(path)
    return rec


def find(folders):
    """Every results.json under the given folders (or the files themselves), sorted."""
    found = []
    for folder in folders:
        if os.path.isfile(folder):
            found.append(os.path.abspath(folder))
            continue
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            if "results.json" in files:
                found.append(os.path.abspath(os.path.join(root, "results.json")))
    return sorted(set(found))  # a run named twice (its folder and its file) counts once
