"""What checking a saved model's weights digest costs: ``load_model`` of a pretrained folder
with ``weights_sha256`` in its ``config.json`` against the same folder without it, in the
same run.

    .venv/bin/python benchmarks/weights_digest.py [--preset paper] [--repeats 5]

The folder is written once (``save_pretrained``); a copy lacks the digest (a folder written
before digests existed, which loads unchecked). Best of ``--repeats`` each, interleaved, from
the page cache (the file is read once more to hash it: on a cold disk the check costs a read).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from sketchrnn.models import SketchRNN, SketchRNNConfig, load_model
from sketchrnn.models.pretrained import weights_digest


def _best(load, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper", choices=list(SketchRNNConfig.PRESETS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        checked, unchecked = Path(scratch) / "checked", Path(scratch) / "unchecked"
        model = SketchRNN(SketchRNNConfig.preset(args.preset, max_seq_len=250))
        model.save_pretrained(checked, scale_factor=40.0, classes=["cat"])
        shutil.copytree(checked, unchecked)
        meta = json.loads((unchecked / "config.json").read_text())
        del meta["weights_sha256"]
        (unchecked / "config.json").write_text(json.dumps(meta))
        size = (checked / "model.safetensors").stat().st_size
        hashing = with_check = without = float("inf")
        for _ in range(args.repeats):  # interleaved: the machine's load hits both alike
            hashing = min(hashing, _best(lambda: weights_digest(checked / "model.safetensors"), 1))
            with_check = min(with_check, _best(lambda: load_model(checked), 1))
            without = min(without, _best(lambda: load_model(unchecked), 1))
    print(f"preset {args.preset}: model.safetensors {size / 2**20:.1f} MiB")
    print(
        f"  SHA-256 of the file        {hashing * 1e3:8.1f} ms ({size / hashing / 2**20:.0f} MiB/s)"
    )
    print(f"  load_model, digest checked {with_check * 1e3:8.1f} ms")
    print(f"  load_model, no digest      {without * 1e3:8.1f} ms")
    print(f"  ratio checked / unchecked  {with_check / without:8.2f}")


if __name__ == "__main__":
    main()
