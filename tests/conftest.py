"""Shared fixtures: real PubMed abstracts turned into binarized data once per session."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest workers on a 2-core machine: one thread each (and in the
    # commands they start) instead of two workers fighting over two threads each.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import biobart_fairseq  # noqa: E402,F401  (registers the task, applies compat)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PUBMED_XML = SHARED_DATA / "pubmed_xml"
VENV_BIN = Path(sys.executable).parent

# fairseq-train flags for a model small enough to train in seconds on 2 CPU cores.
TINY_BART = (
    "--arch bart_base --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 "
    "--decoder-embed-dim 32 --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 "
    "--encoder-attention-heads 2 --decoder-attention-heads 2"
).split()


# Tests that share an expensive fixture run in one xdist worker, so it is built once; the heaviest
# groups start first, so the two workers finish together (`make test`: -n 2 --dist loadgroup).
HEAVY_FIRST = ("test_recipes_small", "test_tables", "test_entity_linking", "test_training", "test_convert",
               "test_fast_path", "test_el_search", "test_bartner")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        scopes = {name: fd[-1].scope for name, fd in (defs.name2fixturedefs.items() if defs else ())}
        if "tiny_run" in scopes:
            item.add_marker(pytest.mark.xdist_group("tiny_run"))
        elif any(scope in ("module", "class", "package") for scope in scopes.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))

    def rank(item):
        name = item.module.__name__
        return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)  # stable: the order within a module is kept


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from torch threads, and on a busy 2-core machine they cost 10x.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def require_pubmed():
    if not PUBMED_XML.is_dir():
        pytest.skip(f"real PubMed sample not found at {PUBMED_XML}")
    return sorted(PUBMED_XML.glob("*.xml"))


def run(cmd, **kw):
    """Run a command, returning CompletedProcess; stdout+stderr merged as text."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    env.update(kw.pop("env", {}))
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kw)


@pytest.fixture(scope="session")
def pubmed_text(tmp_path_factory):
    """train.txt / valid.txt written by biobart-prepare-pubmed from the real XML sample."""
    files = require_pubmed()
    from biobart_fairseq.cli import prepare_pubmed

    out = tmp_path_factory.mktemp("pubmed_text")
    rc = prepare_pubmed.main([str(f) for f in files] + ["-o", str(out), "--workers", "2", "--valid-docs", "20"])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def pubmed_bin(pubmed_text, tmp_path_factory):
    """The real abstracts, sentencepiece-encoded and binarized for biomed_denoising."""
    from biobart_fairseq.cli import binarize

    out = tmp_path_factory.mktemp("pubmed_bin")
    rc = binarize.main([
        "--train", str(pubmed_text / "train.txt"), "--valid", str(pubmed_text / "valid.txt"),
        "-o", str(out), "--bpe", "sentencepiece", "--vocab-size", "1000", "--workers", "2",
    ])
    assert rc == 0
    return out


def tiny_train_cmd(data, save_dir, *extra, max_update=40):
    """A short, fully seeded CPU pretraining run of a tiny BART with biomed_denoising."""
    return [
        "fairseq-train", str(data), "--user-dir", str(REPO / "biobart_fairseq"), "--task", "biomed_denoising",
        *TINY_BART, "--tokens-per-sample", "128", "--max-tokens", "1024", "--required-batch-size-multiple", "1",
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "3e-3", "--lr-scheduler", "polynomial_decay",
        "--warmup-updates", "5", "--total-num-update", str(max_update), "--max-update", str(max_update),
        "--criterion", "cross_entropy", "--cpu", "--num-workers", "0", "--seed", "7",
        "--save-dir", str(save_dir), "--log-format", "simple", "--log-interval", "1", "--no-progress-bar",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_run(pubmed_bin, tmp_path_factory):
    """(save_dir, log) of a 40-update pretraining run on the real abstracts."""
    save = tmp_path_factory.mktemp("tiny_run")
    res = run(tiny_train_cmd(pubmed_bin, save, "--no-epoch-checkpoints"))
    assert res.returncode == 0, res.stdout[-3000:]
    return save, res.stdout


@pytest.fixture(scope="session")
def gpt2_50k(tmp_path_factory):
    """A 50,265-entry GPT-2-format byte-level BPE learnt on the shared data (tests/bpe50k.py):
    dict(encoder_json=..., vocab_bpe=..., dict_txt=...), built once per session (~8 s)."""
    import bpe50k

    why = bpe50k.available()
    if why:
        pytest.skip(why)
    return bpe50k.build(tmp_path_factory.mktemp("gpt2_50k"))
