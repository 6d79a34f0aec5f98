"""A finished run's checkpoint without optimizer state (biobart_fairseq/checkpoints.py,
python -m biobart_fairseq.cli.strip_checkpoint): on the real 40-update pretraining run, the stripped
file is smaller by the Adam moments' bytes, loads through fairseq, has the same weights and decodes
the same fillings with the same scores; a file that is not a checkpoint is one error line."""

import shutil

import pytest
import torch

from biobart_fairseq import checkpoints as C
from biobart_fairseq.cli import strip_checkpoint

from conftest import REPO, VENV_BIN, run


def _tensor_bytes(obj, seen):
    """Bytes of the distinct tensor storages inside a nested state (shared storages once)."""
    if torch.is_tensor(obj):
        key = obj.untyped_storage().data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return obj.untyped_storage().nbytes()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v, seen) for v in obj)
    return 0


@pytest.fixture(scope="module")
def stripped(tiny_run, tmp_path_factory):
    save, _ = tiny_run
    tmp = tmp_path_factory.mktemp("strip")
    full = tmp / "checkpoint_last.pt"
    shutil.copy(save / "checkpoint_last.pt", full)
    small = tmp / "stripped" / "checkpoint_last.pt"
    small.parent.mkdir()
    assert strip_checkpoint.main([str(full), "-o", str(small)]) == 0
    return full, small


def test_smaller_by_the_optimizer_state(stripped):
    full, small = stripped
    state = torch.load(full, map_location="cpu", weights_only=False)
    adam = state["last_optimizer_state"]["state"]
    moments = _tensor_bytes(adam, set())
    # Adam keeps two fp32 moments per parameter: twice the fp32 weights it trains
    weights = _tensor_bytes({k: v for k, v in state["model"].items() if v.dtype == torch.float32}, set())
    assert moments == pytest.approx(2 * weights, rel=0.15)
    saved = full.stat().st_size - small.stat().st_size
    assert saved == pytest.approx(moments, abs=64 * 1024), (saved, moments)
    assert C.has_optimizer_state(str(full)) and not C.has_optimizer_state(str(small))
    kept = torch.load(small, map_location="cpu", weights_only=False)
    assert kept["optimizer_history"] == state["optimizer_history"] and kept["cfg"] == state["cfg"]
    assert kept["model"].keys() == state["model"].keys()
    assert all(torch.equal(kept["model"][k], state["model"][k]) for k in state["model"])
    # stripping again (in place) leaves the file as it is
    before = small.read_bytes()
    assert C.strip_optimizer_state(str(small)) == (len(before), len(before)) and small.read_bytes() == before


def test_decodes_the_same(stripped, pubmed_bin, pubmed_text):
    from biobart_fairseq import from_pretrained

    full, small = stripped
    titles = [line for line in (pubmed_text / "train.txt").read_text().splitlines() if len(line.split()) > 6][:3]
    masked = [" ".join(w if i != 2 else "<mask>" for i, w in enumerate(t.split())) for t in titles]
    outs = []
    for ckpt in (full, small):
        hub = from_pretrained(str(ckpt.parent), ckpt.name, data_dir=str(pubmed_bin))
        outs.append(hub.fill_mask(masked, topk=3, beam=3))
    assert [[t for t, _ in f] for f in outs[0]] == [[t for t, _ in f] for f in outs[1]]
    assert [[float(s) for _, s in f] for f in outs[0]] == [[float(s) for _, s in f] for f in outs[1]]


def test_not_a_checkpoint_is_one_error_line(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint\n")
    res = run([str(VENV_BIN / "python"), "-m", "biobart_fairseq.cli.strip_checkpoint", str(bad)])
    assert res.returncode == 2 and "Traceback" not in res.stdout
    assert res.stdout.strip().splitlines()[-1].startswith(f"biobart-strip-checkpoint: error: {bad}: ")
    res = run([str(VENV_BIN / "python"), "-m", "biobart_fairseq.cli.strip_checkpoint", str(tmp_path / "none.pt")])
    assert res.returncode == 2 and res.stdout.strip() == f"biobart-strip-checkpoint: error: {tmp_path / 'none.pt'}: no such file"


def _finish(save, keep, **env):
    """examples/recipe_lib.sh's end-of-training step, then whether a re-run would skip training."""
    script = (f'set -euo pipefail; source "{REPO}/examples/recipe_lib.sh"; recipe_finish_training "{save}" {keep}; '
              f'if recipe_training_done "{save}"; then echo SKIP; else echo TRAIN; fi')
    res = run(["bash", "-c", script], env=env, cwd=str(REPO))
    assert res.returncode == 0, res.stdout[-2000:]
    return res.stdout.strip().splitlines()[-1]


def test_recipes_keep_what_a_user_needs(tiny_run, tmp_path):
    save, _ = tiny_run
    for name, keep, env in (("default", "checkpoint_best.pt", {}), ("keep_last", "checkpoint_best.pt", {"KEEP_LAST": "1"}),
                            ("no_valid", "checkpoint_last.pt", {})):  # MeQSum: no validation, decodes the last
        d = tmp_path / name
        d.mkdir()
        for f in ("checkpoint_best.pt", "checkpoint_last.pt") if keep == "checkpoint_best.pt" else ("checkpoint_last.pt",):
            shutil.copy(save / f, d / f)  # without validation fairseq writes no checkpoint_best.pt
        shutil.copy(save / "checkpoint_last.pt", d / "checkpoint_1_5000.pt")  # a --save-interval-updates copy
        last = (d / "checkpoint_last.pt").read_bytes()
        decision = _finish(d, keep, **env)
        assert not (d / "checkpoint_1_5000.pt").exists()
        assert not C.has_optimizer_state(str(d / keep))
        if name == "keep_last":  # kept as it was, to train on; a re-run resumes from it (fairseq's way)
            assert (d / "checkpoint_last.pt").read_bytes() == last and decision == "TRAIN"
            assert not (d / "train.done").exists()
        else:  # only the decoded checkpoint, stripped; a re-run skips training and decodes again
            assert sorted(p.name for p in d.iterdir()) == sorted([keep, "train.done"]) and decision == "SKIP"
