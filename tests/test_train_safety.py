"""Training is reproducible and crash-safe: the seed decides everything, damaged checkpoints
are refused, killed writes are cleaned up, a resumed run (after a clean stop or ``kill -9``)
matches an unbroken one row for row and bit for bit, and a run folder has one trainer."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import random_sketches

from sketchrnn.cli import main
from sketchrnn.data import datasets_from_sketchset
from sketchrnn.io.npz import write_npz
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models.checkpoint import (
    CheckpointError,
    DamagedCheckpointError,
    content_checksum,
    load_checkpoint,
    verify_checkpoint_file,
)
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.run_folder import PREVIOUS_CHECKPOINT_NAME, RunLock, RunLockedError, lock_run_folder
from sketchrnn.train import Trainer, TrainingError, new_model
from sketchrnn.train_config import TrainConfig

# ----------------------------------------------------------------------------- fixtures


def walks(n: int = 40) -> SketchSet:
    """Random-walk sketches: 32 train, 4 valid, 4 test, two classes."""
    splits = ["train"] * 32 + ["valid"] * 4 + ["test"] * 4
    labels = ["a" if i % 2 else "b" for i in range(n)]
    return SketchSet(random_sketches(n, seed=0), labels, splits[:n])


@pytest.fixture(scope="module")
def data():
    return datasets_from_sketchset(walks(), name="walks")


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "walks.npz"
    write_npz(path, walks())
    return path


def tiny_config(data) -> SketchRNNConfig:
    return SketchRNNConfig(
        enc_hidden=8,
        dec_hidden=16,
        z_size=4,
        num_mixtures=2,
        recurrent_dropout=0.1,
        max_seq_len=data.train.max_len,
    )


def train_config(out_dir, **overrides) -> TrainConfig:
    settings = dict(
        batch_size=8,
        max_steps=6,
        eval_every=3,
        save_every=3,
        log_every=2,
        drop_prob=0.1,
        progress=False,
        out_dir=str(out_dir) if out_dir is not None else None,
        device="cpu",
    )
    return TrainConfig(**{**settings, **overrides})


def trainer(data, out_dir, seed: int = 0, resume: bool = False, **overrides) -> Trainer:
    cfg = train_config(out_dir, seed=seed, **overrides)
    model = new_model(SketchRNN, tiny_config(data), seed)
    return Trainer(model, cfg, data.train, data.valid, resume=resume)


def cli_args(npz: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "sketch-rnn", "--data", str(npz), "--out", str(out),
        "--preset", "small", "--enc-hidden", "8", "--dec-hidden", "16", "--z-size", "4",
        "--num-mixtures", "2", "--batch-size", "8", "--eval-every", "3", "--log-every", "1",
        "--drop-prob", "0.1", "--no-progress", "--device", "cpu", *extra,
    ]  # fmt: skip


def assert_same_values(a, b, where: str = "") -> None:
    """Bitwise equality of nested dicts/lists of tensors and plain values."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            assert_same_values(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_values(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), where  # NaN == NaN here


def final_state(out: Path) -> dict:
    state = load_checkpoint(out)
    return {k: state[k] for k in ("model", "optimizer", "step", "best_valid_loss")}


def log_rows(out: Path) -> list[dict]:
    """log.csv without its timings."""
    with open(out / "log.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "sketches_per_s"} for r in csv.DictReader(f)]


# ----------------------------------------------------------------------------- the seed


def test_new_model_draws_its_weights_from_the_seed_alone():
    config = SketchRNNConfig(enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=2)
    before = torch.get_rng_state()
    a = new_model(SketchRNN, config, 0)
    torch.manual_seed(123)  # the global RNG does not matter
    b = new_model(SketchRNN, config, 0)
    c = new_model(SketchRNN, config, 1)
    assert_same_values(a.state_dict(), b.state_dict())
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    torch.manual_seed(123)
    state = torch.get_rng_state()
    new_model(SketchRNN, config, 5)
    assert torch.equal(torch.get_rng_state(), state)  # and is left as it was
    assert before.shape == state.shape


def test_the_same_command_and_seed_give_bitwise_the_same_run(npz, tmp_path, capsys):
    for i, (name, seed) in enumerate((("a", "0"), ("b", "0"), ("c", "1"))):
        torch.manual_seed(77 + i)  # whatever the global RNG holds before the command
        assert main(cli_args(npz, tmp_path / name, "--steps", "3", "--seed", seed)) == 0
    a, b, c = (final_state(tmp_path / n) for n in "abc")
    assert_same_values(a, b)
    assert log_rows(tmp_path / "a") == log_rows(tmp_path / "b")
    assert any(not torch.equal(v, c["model"][k]) for k, v in a["model"].items())


# ----------------------------------------------------------------------------- checkpoints


def member_data_ranges(path: Path) -> dict[str, tuple[int, int]]:
    """Byte range of each tensor's data inside the zip ``torch.save`` wrote."""
    raw = path.read_bytes()
    ranges = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if "/data/" not in info.filename or info.file_size == 0:
                continue
            local = info.header_offset
            name_len = int.from_bytes(raw[local + 26 : local + 28], "little")
            extra_len = int.from_bytes(raw[local + 28 : local + 30], "little")
            start = local + 30 + name_len + extra_len
            ranges[info.filename] = (start, start + info.compress_size)
    return ranges


@pytest.mark.parametrize("seed", range(4))
def test_a_flipped_byte_inside_tensor_data_is_refused_naming_the_file(data, tmp_path, seed):
    trainer(data, tmp_path, eval_every=0, save_every=2, max_steps=4).fit()
    path = tmp_path / "checkpoint.pt"
    ranges = sorted(member_data_ranges(path).values())
    rng = np.random.default_rng(seed)
    raw = bytearray(path.read_bytes())
    for _ in range(seed + 1):  # one to four damaged places
        start, end = ranges[int(rng.integers(len(ranges)))]
        raw[int(rng.integers(start, end))] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(raw))

    with pytest.raises(DamagedCheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "damaged" in str(info.value)
    with pytest.raises(DamagedCheckpointError) as info:
        trainer(data, tmp_path, max_steps=6, resume=True)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "damaged" in message
    # ... and it says that the previous checkpoint is kept (and reads fine).
    assert f"{tmp_path / PREVIOUS_CHECKPOINT_NAME} (step 2)" in message
    assert load_checkpoint(tmp_path / PREVIOUS_CHECKPOINT_NAME)["step"] == 2


def test_resuming_a_damaged_run_on_the_command_line_is_one_line(npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(cli_args(npz, out, "--steps", "6")) == 0  # checkpoints at 3 and 6
    path = out / "checkpoint.pt"
    start, end = sorted(member_data_ranges(path).values())[0]
    raw = bytearray(path.read_bytes())
    raw[(start + end) // 2] ^= 0x40
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(cli_args(npz, out, "--steps", "9", "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: the file is damaged" in err
    assert f"{out / PREVIOUS_CHECKPOINT_NAME} (step 3)" in err
    assert load_checkpoint(out / PREVIOUS_CHECKPOINT_NAME)["step"] == 3
    assert (out / "run.lock").read_text() == ""  # and the lock was let go of


def test_no_flipped_bit_anywhere_resumes_silently(data, tmp_path):
    trainer(data, tmp_path, eval_every=0, save_every=0, max_steps=1).fit()
    path = tmp_path / "checkpoint.pt"
    good, raw = load_checkpoint(path), path.read_bytes()
    rng = np.random.default_rng(0)
    damaged = tmp_path / "damaged.pt"
    for offset in rng.choice(len(raw), size=60, replace=False):
        changed = bytearray(raw)
        changed[int(offset)] ^= 1 << int(rng.integers(8))
        damaged.write_bytes(bytes(changed))
        try:
            state = load_checkpoint(damaged)
        except CheckpointError as e:
            assert str(damaged) in str(e) and "\n" not in str(e)
            continue
        assert_same_values(state, good, f"offset {offset}")  # harmless damage only


def test_a_member_marked_as_a_folder_is_damage_though_its_crc_passes(data, tmp_path):
    # A "directory" bit in the archive's central directory: every CRC still passes, but
    # torch's reader then gives that tensor as uninitialised memory (seen while testing:
    # garbage weights; in a process that had just freed the same values, those values, so
    # that the content checksum passed too).
    trainer(data, tmp_path, eval_every=0, save_every=0, max_steps=1).fit()
    path = tmp_path / "checkpoint.pt"
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
        for info in archive.infolist():
            with archive.open(info) as f:
                assert f.read() is not None  # the CRCs pass (zipfile checks them at the end)
    entry = raw.rindex(member.filename.encode()) - 46  # its entry in the central directory
    assert raw[entry : entry + 4] == b"PK\x01\x02"
    raw[entry + 38] ^= 0x10  # external attributes: MS-DOS directory
    path.write_bytes(bytes(raw))
    with pytest.raises(
        CheckpointError, match="damaged: its member .*/data/0 is marked as a folder"
    ):
        verify_checkpoint_file(path)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_an_edited_checkpoint_is_damaged_and_one_without_a_checksum_still_loads(data, tmp_path):
    trainer(data, tmp_path, eval_every=0, save_every=0, max_steps=1).fit()
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    assert state["checksum"] == content_checksum(state)
    state["step"] = 5  # edited, checksum kept
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="damaged: the values read back differ"):
        load_checkpoint(path)
    state["step"] = 1
    del state["checksum"]  # a checkpoint from before checksums
    torch.save(state, path)
    assert load_checkpoint(path)["step"] == 1
    resumed = trainer(data, tmp_path, eval_every=0, save_every=0, max_steps=2, resume=True)
    assert resumed.step == 1


def test_the_previous_checkpoint_is_kept_beside_the_latest(data, tmp_path):
    trainer(data, tmp_path, eval_every=0, save_every=2, max_steps=6).fit()
    assert load_checkpoint(tmp_path)["step"] == 6
    assert load_checkpoint(tmp_path / PREVIOUS_CHECKPOINT_NAME)["step"] == 4


# ----------------------------------------------------------------------------- killed writes


_KILLED_WRITE = """
import os, signal, sys, torch
from sketchrnn.models.checkpoint import save_checkpoint

def save(state, path):  # write part of the file, then die as under kill -9
    with open(path, "wb") as f:
        f.write(b"PK half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = save
save_checkpoint(os.path.join(sys.argv[1], "checkpoint.pt"), {"model": {}})
"""


def test_a_write_killed_midway_leaves_a_part_file_the_next_start_removes(data, tmp_path, capsys):
    out = tmp_path / "run"
    trainer(data, out, eval_every=0, save_every=0, max_steps=1).fit()
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(out)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    orphans = sorted(p.name for p in out.glob(".checkpoint.pt.*.part"))
    assert len(orphans) == 1
    (out / ".best.part").mkdir()  # a killed replacement of best/
    (out / ".log.csv.abc123.part").write_text("step\n")
    (out / ".notes.txt.part").write_text("not ours")  # a name we never write: kept
    capsys.readouterr()

    trainer(data, out, eval_every=0, save_every=0, max_steps=2, resume=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if "unfinished" in line]
    assert len(lines) == 1 and "removed 3 unfinished file(s)" in lines[0]
    assert orphans[0] in lines[0] and str(out) in lines[0]
    assert not list(out.glob(".checkpoint.pt.*.part")) and not (out / ".best.part").exists()
    assert not (out / ".log.csv.abc123.part").exists() and (out / ".notes.txt.part").exists()
    assert load_checkpoint(out)["step"] == 1  # the checkpoint itself was never touched


def test_best_is_put_back_when_its_replacement_was_killed_between_renames(data, tmp_path):
    trainer(data, tmp_path, max_steps=3).fit()
    os.replace(tmp_path / "best", tmp_path / ".best.old")
    trainer(data, tmp_path, max_steps=3, resume=True)
    assert (tmp_path / "best" / "checkpoint.pt").is_file()
    assert not (tmp_path / ".best.old").exists()


# ----------------------------------------------------------------------------- logs, batches


def test_log_rows_across_a_resume_match_an_unbroken_run(data, tmp_path):
    # Rows every 4 steps, checkpoints every 6: the row at step 8 averages steps 5-8, of
    # which 5 and 6 came before the checkpoint the run resumes from.
    settings = dict(max_steps=12, log_every=4, eval_every=6, save_every=6)
    trainer(data, tmp_path / "a", **settings).fit()

    crashing = trainer(data, tmp_path / "b", **settings)
    step = crashing.train_step

    def train_step():
        if crashing.step == 9:
            raise RuntimeError("crash")  # after the row of step 8, before a checkpoint
        return step()

    crashing.train_step = train_step
    with pytest.raises(RuntimeError, match="crash"):
        crashing.fit()
    assert load_checkpoint(tmp_path / "b")["step"] == 6
    assert [r["step"] for r in log_rows(tmp_path / "b")][-1] == "8"

    resumed = trainer(data, tmp_path / "b", resume=True, **settings)
    assert resumed.step == 6
    resumed.fit()
    assert log_rows(tmp_path / "b") == log_rows(tmp_path / "a")
    assert_same_values(final_state(tmp_path / "b"), final_state(tmp_path / "a"))


def test_batch_indices_are_the_same_permutation_drawn_once_per_epoch(data):
    t = trainer(data, None)
    assert t.batches_per_epoch == 4
    drawn = []
    real = np.random.default_rng

    def counting_rng(seed):
        drawn.append(list(seed))
        return real(seed)

    np.random.default_rng = counting_rng
    try:
        got = [t.global_batch_indices(step) for step in range(10)]
    finally:
        np.random.default_rng = real
    for step, indices in enumerate(got):
        # The indices as they were computed before the permutation was kept per epoch.
        epoch, position = divmod(step, 4)
        order = np.random.default_rng([0, epoch]).permutation(len(data.train))
        assert np.array_equal(indices, order[position * 8 : (position + 1) * 8]), step
    assert drawn == [[0, 0], [0, 1], [0, 2]]
    got[0][:] = -1  # a caller changing its batch does not change the epoch's order
    assert (t.global_batch_indices(0) >= 0).all()


# ----------------------------------------------------------------------------- the lock


def _hold_lock(out_dir: str, locked, release) -> None:
    lock = RunLock(out_dir).acquire()
    locked.set()
    release.wait(60)
    lock.release()


def _holder(out_dir: Path):
    ctx = multiprocessing.get_context("fork")
    locked, release = ctx.Event(), ctx.Event()
    process = ctx.Process(target=_hold_lock, args=(str(out_dir), locked, release))
    process.start()
    assert locked.wait(30)
    return process, release


def test_a_second_training_on_the_same_folder_fails_naming_the_holder(data, npz, tmp_path, capsys):
    out = tmp_path / "run"
    process, release = _holder(out)
    try:
        with pytest.raises(RunLockedError) as info:
            trainer(data, out)
        message = str(info.value)
        assert f"pid {process.pid} on {socket.gethostname()}" in message
        assert str(out) in message and "UTC" in message and "\n" not in message
        assert main(cli_args(npz, out, "--steps", "1")) == 2
        err = capsys.readouterr().err
        assert f"pid {process.pid}" in err and "in use" in err
        assert not (out / "checkpoint.pt").exists()
    finally:
        release.set()
        process.join(30)
    assert main(cli_args(npz, out, "--steps", "1")) == 0  # free again once it is gone
    assert (out / "run.lock").read_text() == ""  # released: no stale holder left in it


def test_a_lock_left_by_a_killed_process_is_taken_over(data, tmp_path, capsys):
    out = tmp_path / "run"
    process, _ = _holder(out)
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    capsys.readouterr()
    t = trainer(data, out, max_steps=1)
    assert f"taking over the lock left by pid {process.pid}" in capsys.readouterr().out
    t.fit()
    assert load_checkpoint(out)["step"] == 1


def test_the_lock_is_held_from_creation_to_the_end_of_fit(data, tmp_path):
    first = trainer(data, tmp_path, max_steps=1)
    with pytest.raises(RunLockedError, match=f"this process \\(pid {os.getpid()}\\)"):
        trainer(data, tmp_path)
    first.fit()
    second = trainer(data, tmp_path, max_steps=2, resume=True)  # free after fit()
    second.close()
    trainer(data, tmp_path, max_steps=2, resume=True).fit()  # and after close()


def test_a_training_that_fails_to_start_leaves_no_run_folder(data, tmp_path):
    out = tmp_path / "new"
    with pytest.raises(TrainingError, match="fewer than one batch"):
        trainer(data, out, batch_size=64)
    assert not out.exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(TrainingError, match="fewer than one batch"):
        trainer(data, tmp_path / "kept" / "new" / "deeper" / "run", batch_size=64)
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # the folders it made, not more
    assert list((tmp_path / "kept").iterdir()) == []


def test_only_rank_0_locks_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert lock_run_folder(tmp_path / "run") is None and not (tmp_path / "run").exists()
    monkeypatch.setenv("RANK", "0")
    lock = lock_run_folder(tmp_path / "run")
    assert lock is not None and lock.held
    lock.release()


# ----------------------------------------------------------------------------- resume


def test_resume_keeps_the_runs_model_settings_and_says_which_differ(npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(cli_args(npz, out, "--steps", "1")) == 0
    capsys.readouterr()
    argv = ["train", "sketch-rnn", "--data", str(npz), "--out", str(out), "--batch-size", "8",
            "--no-progress", "--device", "cpu", "--resume"]  # fmt: skip
    assert main([*argv, "--steps", "2"]) == 0
    assert "keeping the run's" not in capsys.readouterr().out  # nothing asked: nothing said
    assert main([*argv, "--steps", "3", "--preset", "magenta", "--dec-hidden", "32"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "keeping" in line]
    assert len(lines) == 1
    assert lines[0].startswith("--resume --preset magenta: keeping the run's model settings")
    assert "dec_hidden 16 (given 32)" in lines[0] and "z_size 4 (given 128)" in lines[0]
    state = load_checkpoint(out)
    assert state["step"] == 3 and state["model_config"]["dec_hidden"] == 16


_SLOW_TRAINING = """
import sys, time
import torch
torch.set_num_threads(1)  # as the tests' own process (conftest): the same arithmetic
import sketchrnn.train as train
step = train.Trainer.train_step
def slow_step(self):  # slow enough to be killed at a chosen step
    time.sleep(0.15)
    return step(self)
train.Trainer.train_step = slow_step
from sketchrnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_9_at_a_random_step_then_resume_gives_bitwise_the_unbroken_run(npz, tmp_path):
    steps = 20
    extra = ("--steps", str(steps), "--eval-every", "4", "--seed", "3")
    assert main(cli_args(npz, tmp_path / "straight", *extra)) == 0

    out = tmp_path / "killed"
    # A step after the first checkpoint (step 4), leaving the killed run seconds to go.
    kill_at = int(np.random.default_rng(14).integers(5, steps - 7))
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_TRAINING, *cli_args(npz, out, *extra)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            rows = log_rows(out) if (out / "log.csv").exists() else []
            if any(r["split"] == "train" and int(r["step"]) >= kill_at for r in rows):
                break
            time.sleep(0.01)
        assert process.poll() is None, "the training ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(30)
    state = load_checkpoint(out)
    assert 4 <= state["step"] < steps
    assert max(int(r["step"]) for r in log_rows(out)) >= kill_at  # rows the resume redoes

    assert main(cli_args(npz, out, *extra, "--resume")) == 0
    assert_same_values(final_state(out), final_state(tmp_path / "straight"))
    assert log_rows(out) == log_rows(tmp_path / "straight")
    assert not [p.name for p in out.glob(".*part")]


# ----------------------------------------------------------------------------- a run in --out


def run_files(out: Path) -> dict[str, bytes]:
    """Every file of a run folder but its lock, by relative path."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "run.lock"
    }


def test_a_finished_run_is_refused_without_resume_or_overwrite(npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(cli_args(npz, out, "--steps", "3")) == 0
    finished = run_files(out)
    assert "checkpoint.pt" in finished and "best/model.safetensors" in finished
    capsys.readouterr()

    assert main(cli_args(npz, out, "--steps", "5")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{out}: holds a training run (at step 3 of 3); continue it with --resume, " in err[0]
    assert "replace it with --overwrite" in err[0]
    assert run_files(out) == finished  # nothing of it touched
    assert (out / "run.lock").read_text() == ""  # and the lock let go of

    assert main(cli_args(npz, out, "--steps", "5", "--resume", "--overwrite")) == 2
    assert "--resume and --overwrite" in capsys.readouterr().err
    assert run_files(out) == finished


def test_overwrite_replaces_the_run_only_once_the_new_one_can_start(npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(cli_args(npz, out, "--steps", "3")) == 0
    (out / "notes.txt").write_text("mine")  # not a run file: kept
    finished = run_files(out)
    # A training that cannot start (a batch larger than the data) replaces nothing.
    assert main(cli_args(npz, out, "--steps", "2", "--overwrite", "--batch-size", "1000")) == 2
    assert "fewer than one batch" in capsys.readouterr().err
    assert run_files(out) == finished

    assert main(cli_args(npz, out, "--steps", "2", "--overwrite")) == 0
    said = capsys.readouterr().out
    assert "--overwrite: removed the earlier run's checkpoint.pt" in said
    assert main(cli_args(npz, tmp_path / "fresh", "--steps", "2")) == 0
    assert_same_values(final_state(out), final_state(tmp_path / "fresh"))
    assert log_rows(out) == log_rows(tmp_path / "fresh")  # no row of the old run left
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / PREVIOUS_CHECKPOINT_NAME).exists()  # the new run saved once, at the end


def test_a_folder_without_a_run_is_trained_into(npz, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "run.lock").write_text("")  # a training killed before its first write
    assert main(cli_args(npz, out, "--steps", "1")) == 0
    assert (out / "notes.txt").read_text() == "mine" and load_checkpoint(out)["step"] == 1


_KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
import torch
from sketchrnn.models.checkpoint import save_checkpoint
from sketchrnn.run_folder import keep_previous

def save(state, path):  # write part of the new checkpoint, then die as under kill -9
    with open(path, "wb") as f:
        f.write(b"PK half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)

out = Path(sys.argv[1])
keep_previous(out / "checkpoint.pt", out / "checkpoint.prev.pt")  # as Trainer.save does
torch.save = save
save_checkpoint(out / "checkpoint.pt", {"model": {}})
"""


def test_a_kill_inside_a_checkpoint_write_then_a_resume_leaves_nothing_behind(data, tmp_path):
    trainer(data, tmp_path, eval_every=0, save_every=2, max_steps=2).fit()
    killed = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(tmp_path)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    # The kill fell between the two: checkpoint.prev.pt is checkpoint.pt (one file, two names).
    assert os.path.samefile(tmp_path / "checkpoint.pt", tmp_path / PREVIOUS_CHECKPOINT_NAME)
    assert len(list(tmp_path.glob(".checkpoint.pt.*.part"))) == 1

    trainer(data, tmp_path, eval_every=0, save_every=2, max_steps=6, resume=True).fit()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []
    assert load_checkpoint(tmp_path)["step"] == 6
    assert load_checkpoint(tmp_path / PREVIOUS_CHECKPOINT_NAME)["step"] == 4


def test_keep_previous_of_a_file_already_kept_is_a_no_op(tmp_path):
    from sketchrnn.run_folder import keep_previous

    latest, previous = tmp_path / "checkpoint.pt", tmp_path / PREVIOUS_CHECKPOINT_NAME
    latest.write_bytes(b"step 4")
    os.link(latest, previous)
    keep_previous(latest, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]
    assert os.path.samefile(latest, previous)


# ----------------------------------------------------------------------------- saved weights


def flip_a_weight_byte(folder: Path, seed: int = 0) -> None:
    """Flip one bit inside the tensor data of ``folder/model.safetensors`` (past its header)."""
    path = folder / "model.safetensors"
    raw = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(raw[:8], "little")
    rng = np.random.default_rng(seed)
    raw[int(rng.integers(header, len(raw)))] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(raw))


@pytest.fixture
def saved_model(data, tmp_path) -> Path:
    folder = tmp_path / "model"
    new_model(SketchRNN, tiny_config(data), 0).save_pretrained(
        folder, scale_factor=10.0, classes=["a", "b"]
    )
    return folder


@pytest.mark.parametrize("seed", range(3))
def test_a_flipped_byte_in_saved_weights_is_refused_naming_the_file(saved_model, seed, capsys):
    from sketchrnn.models import load_model
    from sketchrnn.models.pretrained import ModelFileError

    meta = json.loads((saved_model / "config.json").read_text())
    assert len(meta["weights_sha256"]) == 64
    load_model(saved_model)  # reads fine as written
    flip_a_weight_byte(saved_model, seed)
    weights = saved_model / "model.safetensors"
    with pytest.raises(ModelFileError, match="damaged or replaced: its SHA-256") as info:
        load_model(saved_model)
    assert str(info.value).startswith(f"{weights}: ") and "\n" not in str(info.value)
    out = saved_model.parent / "drawn.svg"
    assert main(["sample", str(saved_model), "--n", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{weights}: damaged or replaced" in err[0]
    assert not out.exists()


def test_a_run_best_folder_is_checked_too(npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(cli_args(npz, out, "--steps", "3")) == 0
    flip_a_weight_byte(out / "best")
    drawn = tmp_path / "drawn.svg"
    assert main(["sample", str(out / "best"), "--n", "2", "--out", str(drawn)]) == 2
    assert f"{out / 'best' / 'model.safetensors'}: damaged" in capsys.readouterr().err
    assert not drawn.exists()


def test_a_folder_saved_before_digests_still_loads(saved_model):
    from sketchrnn.models import load_model

    meta = json.loads((saved_model / "config.json").read_text())
    expected = load_model(saved_model).state_dict()
    del meta["weights_sha256"]
    (saved_model / "config.json").write_text(json.dumps(meta))
    assert_same_values(load_model(saved_model).state_dict(), expected)


def test_a_digest_that_is_not_one_is_refused_naming_config_json(saved_model):
    from sketchrnn.models import load_model
    from sketchrnn.models.pretrained import ModelFileError

    meta = json.loads((saved_model / "config.json").read_text())
    meta["weights_sha256"] = "not a digest"
    (saved_model / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="config.json: weights_sha256 is not a SHA-256"):
        load_model(saved_model)


def test_the_built_in_models_record_their_digest_and_load():
    from sketchrnn.models import load_model
    from sketchrnn.models.builtin import BUILTIN_DIR
    from sketchrnn.models.pretrained import weights_digest

    folders = [d for d in sorted(BUILTIN_DIR.iterdir()) if (d / "config.json").is_file()]
    assert folders
    for folder in folders:
        meta = json.loads((folder / "config.json").read_text())
        assert meta["weights_sha256"] == weights_digest(folder / "model.safetensors"), folder
        load_model(folder)
