"""The same models on a CUDA GPU: equal to the CPU, trainable, resumable, drawable.

Skipped on machines without CUDA (CI has none); run on a GPU machine with
``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from helpers import free_port, random_sketches

from sketchrnn.data import datasets_from_sketchset
from sketchrnn.datasets import ImageSketchDataset, to_device
from sketchrnn.generate import decode, sample
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.models import SketchEmbedNet, SketchEmbedNetConfig
from sketchrnn.models.checkpoint import load_checkpoint
from sketchrnn.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchrnn.nn.diff_raster import absolute_bounds, rasterize_differentiable
from sketchrnn.train import Trainer
from sketchrnn.train_config import TrainConfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
]


def walks(n: int = 48, seed: int = 0) -> SketchSet:
    splits = ["train"] * (n - 8) + ["valid"] * 8
    return SketchSet(random_sketches(n, seed), ["a", "b"] * (n // 2), splits)


@pytest.fixture(scope="module")
def data():
    return datasets_from_sketchset(walks(), name="walks")


def sketch_rnn(data, cell: str, **overrides) -> SketchRNN:
    torch.manual_seed(0)
    values = dict(
        enc_hidden=16, dec_hidden=32, z_size=8, num_mixtures=3, cell=cell,
        recurrent_dropout=0.0, max_seq_len=data.train.max_len,
    )  # fmt: skip
    return SketchRNN(SketchRNNConfig(**{**values, **overrides}))


@pytest.mark.parametrize("cell", ["lstm", "layernorm", "hyper"])
def test_losses_and_gradients_on_cuda_equal_the_cpu(data, cell):
    model = sketch_rnn(data, cell, num_classes=2)
    batch = data.train.batch(np.arange(8))
    results = []
    for device in ("cpu", "cuda"):
        m = model.to(device)
        m.zero_grad()
        losses = m.losses(to_device(batch, device), use_mean=True)
        (losses["L_R"] + losses["L_KL"]).backward()
        grads = {k: p.grad.detach().cpu().clone() for k, p in m.named_parameters()}
        results.append(({k: v.detach().cpu() for k, v in losses.items()}, grads))
    (cpu_losses, cpu_grads), (gpu_losses, gpu_grads) = results
    for k in cpu_losses:
        torch.testing.assert_close(gpu_losses[k], cpu_losses[k], rtol=1e-4, atol=1e-5)
    for k in cpu_grads:
        torch.testing.assert_close(gpu_grads[k], cpu_grads[k], rtol=1e-3, atol=1e-4)


def train_config(out_dir, **overrides) -> TrainConfig:
    values = dict(
        batch_size=8, max_steps=6, eval_every=3, save_every=3, log_every=1, augment=True,
        drop_prob=0.1, progress=False, out_dir=str(out_dir), device="cuda",
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def test_training_on_cuda_lowers_the_loss_saves_and_resumes(data, tmp_path):
    model = sketch_rnn(data, "layernorm", recurrent_dropout=0.1)
    straight = Trainer(model, train_config(tmp_path / "a", max_steps=40), data.train, data.valid)
    before = straight.validate()["L_R"]
    result = straight.fit()
    assert result["step"] == 40 and next(model.parameters()).is_cuda
    assert straight.validate()["L_R"] < before

    # 6 steps straight == 3 steps, stop, resume, 3 steps (on the GPU, to float rounding).
    a = Trainer(sketch_rnn(data, "layernorm", recurrent_dropout=0.1), train_config(tmp_path / "b"),
                data.train, data.valid)  # fmt: skip
    a.fit()
    half = train_config(tmp_path / "c", max_steps=3)
    Trainer(sketch_rnn(data, "layernorm", recurrent_dropout=0.1), half, data.train).fit()
    resumed = Trainer.from_checkpoint(train_config(tmp_path / "c"), data.train, data.valid)
    resumed.fit()
    wa = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"]
    wb = load_checkpoint(tmp_path / "c" / "checkpoint.pt")["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)


def test_drawing_on_cuda_matches_the_cpu_when_greedy(data):
    model = sketch_rnn(data, "hyper").eval()
    model.set_units(scale_factor=1.0)
    z = torch.randn(3, model.config.z_size, generator=torch.Generator().manual_seed(0))
    cpu = decode(model, z, temperature=0.0)
    gpu = decode(model.to("cuda"), z.cuda(), temperature=0.0)
    assert len(cpu) == len(gpu) == 3
    for a, b in zip(cpu, gpu, strict=True):
        n = min(len(a), len(b), 5)  # float rounding may part the paths after a while
        np.testing.assert_allclose(a[:n], b[:n], rtol=1e-3, atol=1e-3)
    drawn = sample(model, 16, temperature=0.5, seed=0)
    assert len(drawn) == 16 and all(s.shape[1] == 3 for s in drawn)
    again = sample(model, 16, temperature=0.5, seed=0)  # seeded: the same drawings
    assert all(np.array_equal(a, b) for a, b in zip(drawn, again, strict=True))


def test_differentiable_raster_on_cuda_equals_the_cpu():
    g = torch.Generator().manual_seed(0)
    offsets = torch.randn(4, 12, 2, generator=g, dtype=torch.float64) * 3
    pen_down = torch.rand(4, 12, generator=g) > 0.2
    lengths = torch.tensor([12, 9, 5, 12])
    bounds = absolute_bounds(offsets, lengths)
    images = []
    for device in ("cpu", "cuda"):
        x = offsets.to(device).detach().requires_grad_(True)
        img = rasterize_differentiable(x, pen_down.to(device), bounds.to(device), size=28)
        (img * torch.linspace(0, 1, 28, device=device, dtype=img.dtype)).sum().backward()
        images.append((img.detach().cpu(), x.grad.cpu()))
    torch.testing.assert_close(images[1][0], images[0][0])
    torch.testing.assert_close(images[1][1], images[0][1])


def test_sketchembednet_trains_on_cuda(data, tmp_path):
    torch.manual_seed(0)
    config = SketchEmbedNetConfig(
        image_size=16, z_size=8, dec_hidden=24, num_mixtures=3, cell="hyper", max_seq_len=16,
        alpha_max=0.5, alpha_every=2,
    )  # fmt: skip
    model = SketchEmbedNet(config)
    sets = datasets_from_sketchset(walks(), max_len=16, split_fractions=(0.8, 0.2, 0.0))
    train, valid = ImageSketchDataset(sets.train, 16), ImageSketchDataset(sets.valid, 16)
    trainer = Trainer(model, train_config(tmp_path, max_steps=8, augment=False, drop_prob=0.0),
                      train, valid)  # fmt: skip
    result = trainer.fit()
    assert result["step"] == 8 and next(model.parameters()).is_cuda
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) > 8  # train rows, with the pixel loss switched on by step 2
    z = model.embed(train.batch(np.arange(4)).images.cuda())
    assert z.shape == (4, 8) and torch.isfinite(z).all()


def test_sync_batch_norm_runs_on_nccl():
    """What a multi-GPU Trainer turns the Conv4's batch norms into, run under nccl (one rank:
    a one-GPU machine cannot host two)."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = SketchEmbedNet(
            SketchEmbedNetConfig(image_size=28, z_size=8, dec_hidden=16, num_mixtures=2,
                                 cell="lstm", max_seq_len=8)
        )  # fmt: skip
        plain = model.encoder.state_dict()
        synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model).cuda()
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
        assert synced.encoder.state_dict().keys() == plain.keys()
        images = torch.rand(6, 1, 28, 28, device="cuda")
        mu, _ = synced.encode(images)
        mu.sum().backward()
        assert torch.isfinite(mu).all()
    finally:
        dist.destroy_process_group()
