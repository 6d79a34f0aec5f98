"""The data and scoring commands start without torch or fairseq; the plugin still registers itself.

Each check runs a fresh interpreter and reads its ``sys.modules`` when it exits, so a module-level
``import torch`` anywhere on a command's import path (its CLI module, data/, metrics/, results,
paper_tables) or a package ``__init__`` that registers eagerly fails the test.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, VENV_BIN

HEAVY = ("torch", "fairseq", "fairseq_cli", "transformers", "biobart_fairseq.tasks")

# Runs one installed console script (the file pip generated) and reports what was imported.
PROBE = r"""
import atexit, json, runpy, sys
atexit.register(lambda: print("\nLOADED=" + json.dumps(sorted(m for m in HEAVY if m in sys.modules)), file=sys.stderr))
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""

LIGHT_COMMANDS = ["prepare-pubmed", "prepare-seq2seq", "prepare-el", "prepare-ner", "score", "ner-score",
                  "tables", "results"]
HEAVY_COMMANDS = ["binarize", "fill-mask", "convert", "el-eval"]  # load models; light up to --help


def probe(command, *args, cwd=None):
    script = VENV_BIN / f"biobart-{command}"
    assert script.is_file(), f"{script}: console script not installed (make install)"
    res = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + PROBE, str(script), *args],
                         capture_output=True, text=True, cwd=cwd)
    loaded = json.loads(res.stderr.rsplit("LOADED=", 1)[1])
    return res, loaded


@pytest.mark.parametrize("command", LIGHT_COMMANDS + HEAVY_COMMANDS)
def test_help_imports_neither_torch_nor_fairseq(command):
    res, loaded = probe(command, "--help")
    assert res.returncode == 0, res.stderr
    assert "usage: biobart-" in res.stdout
    assert loaded == [], f"biobart-{command} --help imported {loaded}"


def test_light_commands_do_their_work_without_torch(tmp_path):
    """A real run through three light commands: PubMed XML -> sentences; scores -> results.json -> tables."""
    res, loaded = probe("prepare-pubmed", str(REPO / "examples/data/pubmed_sample/sample_baseline.xml"),
                        "-o", str(tmp_path / "text"))
    assert res.returncode == 0, res.stderr
    assert any((tmp_path / "text").iterdir()) and loaded == []

    # biobart-score's --json output (its ROUGE import alone takes seconds: nltk and scipy, not torch)
    (tmp_path / "scores.json").write_text(json.dumps({"bleu": 10.0, "n": 2, "rouge1": 50.0, "rouge2": 20.0,
                                                      "rougeL": 40.0, "rougeLsum": 45.0}))
    run_dir = tmp_path / "run"
    res, loaded = probe("results", "--kind", "seq2seq", "--dataset", "covid_dialog", "--split", "test",
                        "--scores", str(tmp_path / "scores.json"), "-o", str(run_dir / "results.json"))
    assert res.returncode == 0, res.stderr
    assert loaded == []
    res, loaded = probe("tables", str(run_dir), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert loaded == []


def test_python_dash_m_command_is_light():
    """``python -m biobart_fairseq.cli.<command>`` (the recipes' form) starts light too."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "biobart_fairseq.cli.ner_score", "--help"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "usage:" in res.stdout, res.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert "biobart_fairseq.cli" in imported  # the -m module itself runs through runpy, not an import
    assert not {"torch", "fairseq", "biobart_fairseq.tasks"} & imported


REGISTRY_CHECK = """
from fairseq.tasks import TASK_REGISTRY
from fairseq.models import ARCH_MODEL_REGISTRY
from fairseq.criterions import CRITERION_REGISTRY
from fairseq.optim import OPTIMIZER_REGISTRY
import os
print(sorted({"biomed_denoising", "biomed_translation", "biomed_entity_linking", "bartner_ner"} - set(TASK_REGISTRY)),
      sorted({"biobart_base", "biobart_large"} - set(ARCH_MODEL_REGISTRY)),
      sorted({"bartner_loss", "fused_cross_entropy"} - set(CRITERION_REGISTRY)),
      sorted({"torch_adamw"} - set(OPTIMIZER_REGISTRY)),
      os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"))
"""


def test_import_registers_everything():
    """``import biobart_fairseq`` in a program (this test process) registers every component."""
    import biobart_fairseq  # noqa: F401

    namespace = {}
    exec(REGISTRY_CHECK.replace("print(", "result = ("), namespace)
    assert namespace["result"][:4] == ([], [], [], [])


def test_light_start_registers_on_demand():
    """A command started light has registered nothing until it calls register(), which then
    registers everything and applies compat."""
    code = ("import sys, biobart_launch\nbiobart_launch.starting_command = True\n"
            "import biobart_fairseq.cli.el_eval\nbiobart_launch.starting_command = False\n"
            "assert 'biobart_fairseq.tasks' not in sys.modules and 'fairseq' not in sys.modules\n"
            "biobart_fairseq.register()\n" + REGISTRY_CHECK)
    env = dict(os.environ)
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["[]", "[]", "[]", "[]", "1"]


# One convention for errors (biobart_fairseq/errors.py): a missing input is unusable input, exit 2,
# "PROG: error: PATH: no such file[ or folder]", no traceback -- the same words from every command.
MISSING = [
    ("prepare-pubmed", ["{x}", "-o", "{out}"], "cannot open"),  # its reader names the open error
    ("prepare-seq2seq", ["--dataset", "covid_dialog", "--input", "{x}", "-o", "{out}"], "no such file or folder"),
    ("prepare-el", ["--dataset", "ncbi", "--input", "{x}", "-o", "{out}"], "no such file or folder"),
    ("prepare-ner", ["--format", "dai", "--input", "{x}", "-o", "{out}"], "no such file"),
    ("score", ["--hyp", "{x}", "--ref", "{x}", "--no-bertscore"], "no such file"),
    ("ner-score", ["--metric", "entity", "--gold", "{x}", "--pred", "{x}"], "no such file"),
    ("tables", ["{x}"], "no such file or folder"),
    ("results", ["--kind", "ner", "--dataset", "x", "--scores", "{x}", "-o", "{out}/r.json"], "no such file"),
    ("binarize", ["--train", "{x}", "-o", "{out}"], "no such file"),
]


@pytest.mark.parametrize("command,args,reason", MISSING, ids=[m[0] for m in MISSING])
def test_missing_input_is_unusable_input_everywhere(tmp_path, command, args, reason):
    x = tmp_path / "absent.txt"
    res, loaded = probe(command, *[a.format(x=x, out=tmp_path / "out") for a in args], cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert f"biobart-{command}: error: {x}: {reason}" in res.stderr
    assert "Traceback" not in res.stderr and loaded == []
