"""Two "nodes" on this machine: two ``torchrun --nnodes 2`` launches joined by a c10d
rendezvous on 127.0.0.1, one process each, train from one packed store with the real
``sketchrnn train`` command, and must end with the parameters of one process trained on the
combined batch (the README's "Training on a cluster" runs the same command).

The single process and the two nodes start from the same weights: a 0-step run writes
``checkpoint.pt`` and both continue it with ``--resume`` (the command has no seed for the
initial weights; rank 0's weights are what DDP broadcasts). As in ``test_ddp.py`` the model is
decoder-only with no dropout and no augmentation, so nothing random depends on how the batch
is split over the ranks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import free_port, random_sketches

from sketchrnn.io.formats import write_sketches
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.store import pack

pytestmark = pytest.mark.slow  # see pyproject: `make test` skips these

STEPS = 3
TIMEOUT_S = 240  # per launch; torchrun's own rendezvous gives up sooner (JOIN_TIMEOUT_S)
JOIN_TIMEOUT_S = 120


def train_args(store: Path, out: Path, steps: int) -> list[str]:
    """``sketchrnn train`` of a tiny decoder-only sketch-rnn, the same for every process."""
    return [
        "train", "sketch-rnn", "--data", str(store), "--out", str(out), "--steps", str(steps),
        "--decoder-only", "--recurrent-dropout", "0", "--no-augment", "--cell", "lstm",
        "--dec-hidden", "12", "--num-mixtures", "2",
        "--batch-size", "8", "--eval-every", "0", "--save-every", "0", "--log-every", "1",
        "--no-progress", "--device", "cpu",
    ]  # fmt: skip


def torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def environment() -> dict[str, str]:
    # One thread per process: two nodes share this machine's cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def launch_nodes(nodes: int, port: int, args: list[str], root: Path) -> list[str]:
    """``nodes`` torchrun launches, each from its own folder ("machine"), all joining one
    c10d rendezvous at ``127.0.0.1:port``; waits for all (killing all on a timeout) and
    returns each one's stdout + stderr."""
    procs, logs = [], []
    for rank in range(nodes):
        cwd = root / f"node{rank}"
        cwd.mkdir()
        log = open(cwd / "output.txt", "w+")  # noqa: SIM115 (a file, not a pipe: never fills)
        cmd = torchrun() + [
            "--nnodes", str(nodes), "--nproc-per-node", "1", "--node-rank", str(rank),
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
            "--rdzv-id", "sketchrnn-multinode-test",
            "--rdzv-conf", f"join_timeout={JOIN_TIMEOUT_S}", "--max-restarts", "0",
            "-m", "sketchrnn.cli", *args,
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=cwd,
                env=environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills its workers
            )
        )
        logs.append(log)
    try:
        for p in procs:
            p.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for rank, (p, text) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"node {rank} exited with {p.returncode}:\n{text}"
    return outputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One store on "shared storage"; a 0-step run; the same 3 steps continued by one process
    and by two nodes."""
    root = tmp_path_factory.mktemp("multinode")
    sketches = random_sketches(48, seed=0, lengths=(4, 12))
    write_sketches(
        root / "walks.npz", SketchSet(sketches, ["walk"] * 48, ["train"] * 40 + ["valid"] * 8)
    )
    store = root / "shared" / "walks.store"
    store.parent.mkdir()
    pack([root / "walks.npz"], store, progress=False)

    run([sys.executable, "-m", "sketchrnn.cli", *train_args(store, root / "init", 0)], root)
    for name in ("single", "nodes"):
        (root / name).mkdir()
        shutil.copy(root / "init" / "checkpoint.pt", root / name / "checkpoint.pt")
    single = [*train_args(store, root / "single", STEPS), "--resume"]
    run([sys.executable, "-m", "sketchrnn.cli", *single], root)
    outputs = launch_nodes(
        2, free_port(), [*train_args(store, root / "nodes", STEPS), "--resume"], root
    )
    return root, outputs


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_two_nodes_match_one_process_on_the_combined_batch(runs):
    root, outputs = runs
    single = weights(root / "single" / "checkpoint.pt")
    nodes = weights(root / "nodes" / "checkpoint.pt")
    start = weights(root / "init" / "checkpoint.pt")
    assert nodes.keys() == single.keys()
    for name, value in single.items():
        torch.testing.assert_close(nodes[name], value, rtol=0, atol=1e-6, msg=name)
    assert any(not torch.equal(single[k], start[k]) for k in single)  # and they did train


def test_both_nodes_trained_as_one_job(runs):
    root, outputs = runs
    # Each node read the same store; only the one that became rank 0 reports (and writes).
    assert all("data: 40 train / 8 valid / 0 test sketches" in text for text in outputs)
    assert sum(f"trained {STEPS} steps" in text for text in outputs) == 1
    rows = [r.split(",") for r in (root / "nodes" / "log.csv").read_text().splitlines()[1:]]
    assert [step for step, split, *_ in rows if split == "train"] == ["1", "2", "3"]
    assert not (root / "node0" / "runs").exists() and not (root / "node1" / "runs").exists()
