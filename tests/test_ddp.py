"""Distributed training on 2 CPU processes (gloo) against one process on the whole batch."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import free_port

from sketchrnn.data import datasets_from_sketchset
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig

pytestmark = pytest.mark.slow  # see pyproject: `make test` skips these

WORLD = 2
STEPS = 3

# name -> (model overrides, train overrides). "exact": no randomness that depends on how the
# batch is split (decoder-only: no z noise; no dropout, no augmentation), so 2 ranks on half
# batches must equal 1 process on the whole batch. "vae": dropout, augmentation and z noise
# differ per rank, but DDP must still keep the ranks' weights identical.
CASES = {
    "exact": (dict(conditional=False, recurrent_dropout=0.0), dict(augment=False)),
    "vae": (dict(conditional=True, recurrent_dropout=0.1), dict(augment=True)),
}


def make_data():
    rng = np.random.default_rng(0)
    strokes = []
    for _ in range(24):
        k = int(rng.integers(4, 9))
        s3 = np.zeros((k, 3), dtype=np.float32)
        s3[:, :2] = rng.integers(-10, 11, size=(k, 2))
        s3[-1, 2] = 1
        strokes.append(s3)
    return datasets_from_sketchset(SketchSet(strokes, [], ["train"] * 24), name="walks")


def make_model(data, overrides) -> SketchRNN:
    torch.manual_seed(0)
    config = SketchRNNConfig(
        enc_hidden=8,
        dec_hidden=12,
        z_size=4,
        num_mixtures=2,
        cell="lstm",
        max_seq_len=data.train.max_len,
        **overrides,
    )
    return SketchRNN(config)


def make_config(out_dir, overrides) -> TrainConfig:
    return TrainConfig(
        batch_size=8,
        max_steps=STEPS,
        eval_every=0,
        save_every=0,
        log_every=1,
        progress=False,
        out_dir=str(out_dir),
        device="cpu",
        **overrides,
    )


def worker(rank: int, port: int, tmp: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    data = make_data()
    trainers = []
    for name, (model_overrides, train_overrides) in CASES.items():
        model = make_model(data, model_overrides)
        if rank == 1:  # different starting weights: DDP must broadcast rank 0's
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        out_dir = os.path.join(tmp, f"{name}-out-rank{rank}")
        trainer = Trainer(model, make_config(out_dir, train_overrides), data.train)
        assert trainer.ctx.world_size == WORLD and dist.is_initialized()
        assert trainer.local_batch_size == 4
        trainer.fit()
        torch.save(model.state_dict(), os.path.join(tmp, f"{name}-rank{rank}.pt"))
        trainers.append(trainer)
    trainers[0].close()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(free_port(), str(tmp)), nprocs=WORLD, join=True)
    return tmp


def load(path):
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("case", list(CASES))
def test_ranks_keep_identical_weights(ddp_results, case):
    zero = load(ddp_results / f"{case}-rank0.pt")
    one = load(ddp_results / f"{case}-rank1.pt")
    start = make_model(make_data(), CASES[case][0]).state_dict()
    for name in zero:
        assert torch.equal(zero[name], one[name]), name
    assert any(not torch.equal(zero[k], start[k]) for k in zero)  # and they did train


def test_two_ranks_match_one_process_on_the_combined_batch(ddp_results, tmp_path):
    data = make_data()
    model_overrides, train_overrides = CASES["exact"]
    model = make_model(data, model_overrides)
    trainer = Trainer(model, make_config(tmp_path, train_overrides), data.train)
    assert trainer.ctx.world_size == 1
    trainer.fit()
    distributed = load(ddp_results / "exact-rank0.pt")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(distributed[name], value, rtol=0, atol=1e-6, msg=name)


def test_only_rank_zero_writes_files(ddp_results):
    for case in CASES:
        assert (ddp_results / f"{case}-out-rank0" / "checkpoint.pt").exists()
        assert (ddp_results / f"{case}-out-rank0" / "log.csv").exists()
        assert not (ddp_results / f"{case}-out-rank1").exists()
