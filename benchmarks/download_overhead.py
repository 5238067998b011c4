"""What the download guards cost: :func:`sketchrnn.io.download.fetch` against a bare
``urllib`` read loop, on one file served from 127.0.0.1 in the same run.

    .venv/bin/python benchmarks/download_overhead.py [--mib 128] [--repeats 5]

``fetch`` adds the ``.part`` lock, the watchdog thread (stall, minimum rate), ``read1``
chunks, the size checks, an ``fsync`` and the rename; the bare loop is ``urlopen`` +
``read(64 KiB)`` + ``write``, the download code as it was before the guards (no form check in
either). Also times the form check of a Quick, Draw! file (the safe npz reader over a real
sketch-rnn file) against reading its bytes, the price of "nothing enters the cache unless it
reads back". Best of ``--repeats`` each, interleaved; loopback speeds, not a network's.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from sketchrnn.io.download import fetch
from sketchrnn.io.quickdraw_download import check_class_file

DATA = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _bare(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
        while chunk := response.read(1 << 16):
            out.write(chunk)


def _guarded(url: str, target: Path) -> None:
    target.unlink(missing_ok=True)
    fetch(url, target, progress=False, max_bytes=1 << 40)


def _best(func: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=128, help="size of the served file")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "file.bin").write_bytes(os.urandom(args.mib << 20))
        handler = functools.partial(_Quiet, directory=str(root))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
        bare = guarded = float("inf")
        for _ in range(args.repeats):  # interleaved, so that both see the same machine
            bare = min(bare, _best(lambda: _bare(url, root / "bare.bin"), 1))
            guarded = min(guarded, _best(lambda: _guarded(url, root / "guarded.bin"), 1))
        httpd.shutdown()
    print(f"{args.mib} MiB over loopback, best of {args.repeats}:")
    print(f"  bare urllib loop   {args.mib / bare:8.1f} MiB/s")
    ratio = guarded / bare
    print(f"  fetch (guarded)    {args.mib / guarded:8.1f} MiB/s   ({ratio:.2f}x the bare time)")
    sheep = DATA / "sketchrnn" / "aaron_sheep.npz"
    if not sheep.exists():
        print(f"shared data not found: {sheep} (set SKETCHRNN_SHARED_DATA): no form check timed")
        return
    size = sheep.stat().st_size / 2**20
    read = _best(lambda: sheep.read_bytes(), args.repeats)
    check = _best(lambda: check_class_file(sheep), args.repeats)
    print(f"form check of {sheep.name} ({size:.1f} MiB, 8,000 sketches), best of {args.repeats}:")
    print(f"  read the bytes     {read * 1e3:8.1f} ms")
    print(f"  safe npz reader    {check * 1e3:8.1f} ms   ({size / check:.1f} MiB/s)")


if __name__ == "__main__":
    main()
