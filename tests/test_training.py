"""CPU pretraining with fairseq's own trainer: the loss falls, two gloo ranks really share
the work, and a run killed with SIGKILL resumes to exactly the losses of an unbroken run."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import VENV_BIN, run, tiny_train_cmd

TRAIN_LINE = re.compile(r"\| train_inner \| .*?loss=([0-9.]+).*?wpb=([0-9.]+), bsz=([0-9.]+), num_updates=(\d+)")


def train_losses(log):
    """{update: loss string} from fairseq's train_inner log lines (log interval 1)."""
    return {int(m.group(4)): m.group(1) for m in TRAIN_LINE.finditer(log)}


def test_loss_falls(tiny_run):
    _, log = tiny_run
    losses = train_losses(log)
    assert sorted(losses) == list(range(1, 41))
    first = sum(float(losses[u]) for u in range(1, 6)) / 5
    last = sum(float(losses[u]) for u in range(36, 41)) / 5
    assert last < first - 0.5, (first, last)  # base-2 loss, starts near log2(vocab)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_double_the_batch(pubmed_bin, tmp_path):
    common = ["--batch-size", "4", "--max-update", "4", "--total-num-update", "4", "--disable-validation",
              "--no-save"]
    single = run(tiny_train_cmd(pubmed_bin, tmp_path / "single", *common, max_update=4))
    assert single.returncode == 0, single.stdout[-2000:]
    port = free_port()
    env = dict(os.environ, PYTHONWARNINGS="ignore", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    procs = []
    for rank in (0, 1):
        cmd = tiny_train_cmd(
            pubmed_bin, tmp_path / "ddp", *common, "--distributed-world-size", "2", "--distributed-rank", str(rank),
            "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-no-spawn",
            "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", max_update=4,
        )
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    for rank, log in enumerate(logs):
        assert f"distributed init (rank {rank})" in log
    bsz_single = {int(m.group(4)): float(m.group(3)) for m in TRAIN_LINE.finditer(single.stdout)}
    bsz_ddp = {int(m.group(4)): float(m.group(3)) for m in TRAIN_LINE.finditer(logs[0])}
    assert bsz_single and set(bsz_single) == set(bsz_ddp)
    for u in bsz_single:
        assert bsz_single[u] == 4 and bsz_ddp[u] == 8  # the batch summed over both ranks


def test_resume_after_sigkill_replays_the_same_losses(pubmed_bin, tmp_path):
    total, kill_at = 60, 10
    args = ["--save-interval-updates", str(kill_at), "--no-epoch-checkpoints", "--disable-validation"]
    full = run(tiny_train_cmd(pubmed_bin, tmp_path / "full", *args, max_update=total))
    assert full.returncode == 0, full.stdout[-2000:]
    reference = train_losses(full.stdout)
    assert sorted(reference) == list(range(1, total + 1))

    # The same run, killed with SIGKILL (no chance to clean up) once its first
    # mid-epoch checkpoint is completely written.
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    cmd = tiny_train_cmd(pubmed_bin, tmp_path / "broken", *args, max_update=total)
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if re.search(rf"Saved checkpoint .* @ {kill_at} updates", log_path.read_text()):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the run ended or hung before saving its checkpoint:\n" + log_path.read_text()[-2000:])
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = train_losses(log_path.read_text())
    assert kill_at <= max(first) < total, "the kill must interrupt the run"

    resumed = run(cmd)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"@ {kill_at} updates" in resumed.stdout.split("Loaded checkpoint")[1].splitlines()[0]
    after = train_losses(resumed.stdout)
    assert sorted(after) == list(range(kill_at + 1, total + 1))
    assert after == {u: reference[u] for u in after}
    assert {u: first[u] for u in range(1, kill_at + 1)} == {u: reference[u] for u in range(1, kill_at + 1)}
