"""Data loading at scale: today's loader (``load_datasets``) beside the packed store.

For each data set, two fresh subprocesses per loader:

* **cold**: the data files are first evicted from the page cache
  (``posix_fadvise(DONTNEED)``), then the time (imports excluded) to open (``load_datasets`` /
  ``store_datasets``, ``max_len=250``) and to the first batch (the first of
  ``train.batches(100, augment=True)``, which includes the epoch's permutation);
* **warm**: the same with the files in the page cache, then the process's peak RSS
  (``VmHWM``) and the batching speed with augmentation at batch 100: in the process
  (``train.batch`` in a loop, as the Trainer calls it) and through a DataLoader with 1 and 2
  worker processes (:func:`sketchrnn.store.batch_loader`; forked workers), with the summed
  PSS of the process and its workers (shared pages counted once) while they run, and the
  CPU time per batch of all of them (wall-clock speed moves with other jobs on the machine).

**Content verification** (a third fresh subprocess per store; cold then warm cache, the best
of two): the time of :meth:`sketchrnn.store.PackedStore.verify` after the open (the XXH3-128
digest of the points file, the index arrays' digests being checked by the open: what
``sketchrnn data verify`` adds to the open and what the Trainer adds before its first step),
beside the time to just read the same file in the same process (the reference: verification
can be no faster than the disk or the page cache);
and the speed of XXH3-128 against hashlib's sha256 and blake2b on the first 512 MiB of the
points file, in memory.

Data sets: the shipped sketch-rnn files (``../shared/data/sketchrnn/*.npz``, packed into one
store); synthetic sets of int16 sketches of 20-100 points, generated streaming. Up to
``--today-max`` sketches (default 1M) a synthetic ``.npz`` is written, read by today's
loader and packed with :func:`sketchrnn.store.pack` (its time is printed). Beyond that only
the packed store is built (by :class:`sketchrnn.store.StoreWriter`, chunk by chunk, 345
classes) and measured: today's loader would need about 5 GiB per million sketches.

Usage::

    python benchmarks/data_scale.py                          # shipped files, 1M and 10M
    python benchmarks/data_scale.py --sizes 1000000          # shipped files and 1M only
    python benchmarks/data_scale.py --workdir /tmp/ds --fresh --batches 300

Generated files go to ``--workdir`` (default ``/tmp/sketchrnn-data-scale``), kept between runs.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(
    os.environ.get("SKETCHRNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared/data")
)
BATCH = 100
MAX_LEN = 250
CHUNK = 100_000  # sketches generated at a time
CLASSES = 345  # classes of the synthetic stores built chunk by chunk (as all of Quick, Draw!)

# ----------------------------------------------------------------------------- synthetic data


def synthetic_chunks(n: int, seed: int = 0, chunk: int = CHUNK):
    """``(points int16 (P, 3), lengths (k,), split codes (k,))`` for ``n`` sketches, chunk by
    chunk: 20-100 points, offsets ~ N(0, 15) rounded, a pen lift after 1 point in 10 and after
    the last; splits train/valid/test 80/10/10 at random."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        lengths = rng.integers(20, 101, k)
        total = int(lengths.sum())
        points = np.empty((total, 3), dtype=np.int16)
        points[:, 0:2] = np.clip(np.round(rng.normal(0.0, 15.0, (total, 2))), -999, 999)
        points[:, 2] = rng.random(total) < 0.1
        points[np.cumsum(lengths) - 1, 2] = 1
        codes = np.searchsorted([0.8, 0.9], rng.random(k), side="right").astype(np.uint8)
        yield points, lengths, codes


def write_synthetic_npz(path: Path, n: int) -> None:
    """A sketch-rnn ``.npz`` (object arrays of int16 stroke-3, keys train/valid/test)."""
    parts: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    for points, lengths, codes in synthetic_chunks(n):
        sketches = np.split(points, np.cumsum(lengths)[:-1])
        for s, c in zip(sketches, codes, strict=True):
            parts[int(c)].append(s.copy())
    arrays = {}
    for code, name in enumerate(("train", "valid", "test")):
        column = np.empty(len(parts[code]), dtype=object)
        column[:] = parts[code]
        arrays[name] = column
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def write_synthetic_store(path: Path, n: int) -> float:
    """The store of ``n`` synthetic sketches written chunk by chunk; returns seconds."""
    from sketchrnn.store import StoreWriter

    started = time.perf_counter()
    per_class = -(-n // CLASSES)
    chunks = list(range(0, n, per_class))
    writer = StoreWriter(path, {"synthetic": n, "seed": 0, "chunk": per_class}, overwrite=True)
    try:
        for i, (points, lengths, codes) in enumerate(synthetic_chunks(n, chunk=per_class)):
            if i < writer.completed:
                continue
            labels = np.zeros(len(lengths), dtype=np.int64)
            entry = {"path": f"synthetic:class{i:03d}", "first_sketch": chunks[i]}
            writer.append(entry, points, lengths, [f"class{i:03d}"], labels, codes)
        writer.finish()
    finally:
        writer.close()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- measuring


def _evict(paths: list[str]) -> None:
    """Drop the files' pages from the page cache (clean pages; no root needed)."""
    for p in paths:
        files = [Path(p)] if Path(p).is_file() else [f for f in Path(p).iterdir() if f.is_file()]
        for f in files:
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _warm(paths: list[str]) -> None:
    """Read the files once (into the page cache, not into this process's RSS)."""
    for p in paths:
        files = [Path(p)] if Path(p).is_file() else [f for f in Path(p).iterdir() if f.is_file()]
        for f in files:
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def _pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children() -> list[int]:
    pids = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def _peak_rss_mib() -> float:
    """This process's peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries that across
    ``exec`` from the forking parent, so a child of a big parent would report the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of the processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def _read_all(paths: list[Path]) -> float:
    """Seconds to read the files once, in 16 MiB chunks (no hashing: the reference)."""
    buffer = bytearray(16 << 20)
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
    return time.perf_counter() - started


def measure_verify(store_path: str) -> dict:
    """Verification of one store against plain reading, cold then warm, in this process."""
    from sketchrnn.store import open_store
    from sketchrnn.store.manifest import ARRAY_FILES

    files = [Path(store_path) / ARRAY_FILES["points"]]
    out: dict = {"load": os.getloadavg()[0], "bytes": sum(f.stat().st_size for f in files)}
    for mode in ("cold", "warm"):
        # Interleaved, twice each, the best kept: the machine is shared and its load moves.
        for what in ("read", "verify") * 2:
            if mode == "cold":
                _evict([store_path])
            else:
                _warm([store_path])
            # The open checks the index arrays' digests: verify() then reads the points.
            store = open_store(store_path)
            started, cpu = time.perf_counter(), time.process_time()
            if what == "verify":
                store.verify()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                if seconds < out.get(f"{mode}_verify_s", math.inf):
                    out[f"{mode}_verify_s"], out[f"{mode}_verify_cpu_s"] = seconds, cpu
            else:
                seconds = _read_all(files)
                out[f"{mode}_read_s"] = min(seconds, out.get(f"{mode}_read_s", math.inf))
            del store
    return out


def hash_speeds(path: Path, limit: int = 512 << 20) -> dict[str, float]:
    """GB/s of each hash over the first ``limit`` bytes of ``path``, held in memory."""
    import hashlib

    import xxhash

    with open(path, "rb") as f:
        data = memoryview(f.read(limit))
    speeds = {}
    for name, new in (
        ("xxh3_128 (chosen)", xxhash.xxh3_128),
        ("sha256", hashlib.sha256),
        ("blake2b", hashlib.blake2b),
    ):
        started = time.perf_counter()
        h = new()
        for a in range(0, len(data), 16 << 20):
            h.update(data[a : a + (16 << 20)])
        h.hexdigest()
        speeds[name] = len(data) / (time.perf_counter() - started) / 1e9
    return speeds


def measure(kind: str, paths: list[str], mode: str, batches: int, drop_prob: float) -> dict:
    """One loader on one data set, in this (fresh) process."""
    import torch

    if kind == "verify":
        return measure_verify(paths[0])

    torch.set_num_threads(1)
    if mode == "cold":
        _evict(paths)
    else:
        _warm(paths)
    from sketchrnn.data import load_datasets
    from sketchrnn.store import batch_loader, store_datasets

    out: dict = {"kind": kind, "mode": mode, "load": os.getloadavg()[0]}
    # Imports excluded (the same for both loaders); CPU time beside wall time, which moves
    # with other jobs on the machine.
    started, cpu = time.perf_counter(), time.process_time()
    if kind == "today":
        data = load_datasets(paths, max_len=MAX_LEN)
    else:
        data = store_datasets(paths[0], max_len=MAX_LEN)
    out["open_s"] = time.perf_counter() - started
    train = data.train
    started = time.perf_counter()
    first = next(iter(train.batches(BATCH, seed=0, epoch=0, augment=True, drop_prob=drop_prob)))
    out["first_batch_s"] = time.perf_counter() - started
    out["open_first_cpu_s"] = time.process_time() - cpu
    out["train_sketches"] = len(train)
    out["rss_open_mib"] = _peak_rss_mib()
    assert first.strokes.shape == (BATCH, train.max_len + 1, 5)
    if mode == "cold":
        return out
    # In the process, as the Trainer calls train.batch().
    it = train.batches(BATCH, seed=0, epoch=1, augment=True, drop_prob=drop_prob)
    count = min(batches, train.num_batches(BATCH))
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        next(it)
    out["w0_batches_s"] = count / (time.perf_counter() - started)
    out["w0_cpu_ms"] = (time.process_time() - cpu) / count * 1e3
    for workers in (1, 2):
        loader = batch_loader(
            train, BATCH, num_workers=workers, seed=0, epoch=2, augment=True, drop_prob=drop_prob
        )
        warmup = 4 * workers
        pss = 0.0
        it = iter(loader)
        for _ in range(warmup):
            next(it)
        pids = [os.getpid(), *_children()]
        started, cpu = time.perf_counter(), _cpu_s(pids)
        for k in range(count):
            next(it)
            if k == count // 2:
                pss = _pss_mib(pids)
        out[f"w{workers}_batches_s"] = count / (time.perf_counter() - started)
        out[f"w{workers}_cpu_ms"] = (_cpu_s(pids) - cpu) / count * 1e3
        out[f"w{workers}_pss_mib"] = pss
        del it, loader
    out["rss_peak_mib"] = _peak_rss_mib()
    return out


def run_measure(kind, paths, mode, batches, drop_prob) -> dict:
    cmd = [sys.executable, __file__, "--measure", kind, "--mode", mode]
    cmd += ["--batches", str(batches), "--drop-prob", str(drop_prob), "--", *paths]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"measurement failed: {' '.join(cmd)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the table


def _size_mib(paths: list[str]) -> float:
    total = 0
    for p in paths:
        path = Path(p)
        total += (
            path.stat().st_size
            if path.is_file()
            else sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        )
    return total / 2**20


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    metrics = [
        ("load average when measured (warm)", "load", ".1f", "lower"),
        ("data on disk (MiB)", "disk_mib", ",.0f", "lower"),
        ("open, cold cache (s)", "cold_open_s", ".3f", "lower"),
        ("first batch, cold cache (s)", "cold_first_batch_s", ".3f", "lower"),
        ("open, warm cache (s)", "open_s", ".3f", "lower"),
        ("first batch, warm cache (s)", "first_batch_s", ".3f", "lower"),
        ("open + first batch, CPU s (warm)", "open_first_cpu_s", ".3f", "lower"),
        ("peak RSS after open + batch (MiB)", "rss_open_mib", ",.0f", "lower"),
        ("peak RSS, whole run (MiB)", "rss_peak_mib", ",.0f", "lower"),
        ("PSS main + 2 workers (MiB)", "w2_pss_mib", ",.0f", "lower"),
        ("CPU ms/batch in process", "w0_cpu_ms", ".2f", "lower"),
        ("CPU ms/batch, 1 worker (all procs)", "w1_cpu_ms", ".2f", "lower"),
        ("CPU ms/batch, 2 workers (all procs)", "w2_cpu_ms", ".2f", "lower"),
        ("batches/s in process", "w0_batches_s", ",.1f", "higher"),
        ("sketches/s in process", "w0_sketches_s", ",.0f", "higher"),
        ("batches/s 1 worker", "w1_batches_s", ",.1f", "higher"),
        ("sketches/s 1 worker", "w1_sketches_s", ",.0f", "higher"),
        ("batches/s 2 workers", "w2_batches_s", ",.1f", "higher"),
        ("sketches/s 2 workers", "w2_sketches_s", ",.0f", "higher"),
    ]
    for row in rows:
        for side in ("today", "packed"):
            r = row.get(side)
            if r:
                for w in (0, 1, 2):
                    r[f"w{w}_sketches_s"] = r[f"w{w}_batches_s"] * BATCH
    for row in rows:
        print(f"\n## {row['name']}  ({row['sketches']:,} sketches, {row['train']:,} train)")
        if row.get("note"):
            print(f"   {row['note']}")
        print(f"| {'measure':36s} | {'today':>12s} | {'packed':>12s} | {'today/packed':>12s} |")
        print(f"|{'-' * 38}|{'-' * 14}|{'-' * 14}|{'-' * 14}|")
        for label, key, spec, _better in metrics:
            a = (row.get("today") or {}).get(key)
            b = (row.get("packed") or {}).get(key)
            ratio = a / b if a is not None and b else None
            print(f"| {label:36s} | {_fmt(a, spec):>12s} | {_fmt(b, spec):>12s} | "
                  f"{_fmt(ratio, '.2f'):>12s} |")  # fmt: skip
        p = row["packed"]
        bound = 1.2 * row["packed_disk_mib"] + 300
        checks = [
            ("open + first batch <= 2 s (cold)", p["cold_open_s"] + p["cold_first_batch_s"], 2.0),
            ("open + first batch <= 2 s (warm)", p["open_s"] + p["first_batch_s"], 2.0),
            ("open + first batch <= 2 s (warm, CPU time)", p["open_first_cpu_s"], 2.0),
            ("peak RSS <= 1.2 x store + 300 MiB", p["rss_peak_mib"], bound),
            ("PSS, 2 workers <= 1.2 x store + 300 MiB", p["w2_pss_mib"], bound),
        ]
        for label, value, limit in checks:
            verdict = "ok" if value <= limit else "MISSED"
            print(f"   target {label}: {value:,.2f} vs {limit:,.2f}: {verdict}")
        speed = max(p["w1_sketches_s"], p["w2_sketches_s"], p["w0_sketches_s"])
        verdict = "ok" if speed >= 20_000 else "MISSED"
        print(f"   target >= 20,000 sketches/s: {speed:,.0f} (best of 0/1/2 workers): {verdict}")
        per_cpu = 1e3 * BATCH / p["w0_cpu_ms"]
        print(f"   sketches per CPU second in process: {per_cpu:,.0f}")
        v = row.get("verify")
        if v:
            print(
                f"\n   verifying the points' digest after the open ({v['bytes'] / 2**20:,.0f} MiB; "
                f"load {v['load']:.1f}): what `data verify` adds to the open, and training "
                "before its first step"
            )
            print(f"   | {'cache':5s} | {'verify (s)':>10s} | {'CPU (s)':>8s} | "
                  f"{'read only (s)':>13s} | {'verify/read':>11s} |")  # fmt: skip
            for mode in ("cold", "warm"):
                a, b = v[f"{mode}_verify_s"], v[f"{mode}_read_s"]
                print(f"   | {mode:5s} | {a:10.2f} | {v[f'{mode}_verify_cpu_s']:8.2f} | "
                      f"{b:13.2f} | {a / b:11.2f} |")  # fmt: skip


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--today-max", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="/tmp/sketchrnn-data-scale")
    parser.add_argument("--fresh", action="store_true", help="regenerate the data")
    parser.add_argument("--no-shipped", action="store_true")
    parser.add_argument("--batches", type=int, default=400, help="batches timed per setting")
    parser.add_argument("--drop-prob", type=float, default=0.0)
    parser.add_argument("--measure", choices=["today", "packed", "verify"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["cold", "warm"], default="warm", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # The synthetic 1M .npz has a 300 MiB member, over the reader's default guard against
    # zip bombs; these files are our own (children inherit the setting).
    os.environ.setdefault("SKETCHRNN_NPZ_MAX_MEMBER_BYTES", str(16 << 30))
    if args.measure:
        result = measure(args.measure, args.paths, args.mode, args.batches, args.drop_prob)
        print(json.dumps(result))
        return

    from sketchrnn.io.files import SketchFileError
    from sketchrnn.store import open_store, pack

    def stale(store: Path) -> bool:
        """Missing, or written by an older sketchrnn (another store format): rebuild it."""
        try:
            open_store(store)
        except SketchFileError as e:
            if store.exists():
                print(f"rebuilding {store}: {e}", flush=True)
            return True
        return False

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    datasets = []  # (name, today paths or None, store path, note)
    if not args.no_shipped:
        shipped = sorted(glob.glob(str(SHARED / "sketchrnn" / "*.npz")))
        if shipped:
            store = work / "shipped.store"
            if args.fresh or stale(store):
                report = pack(shipped, store, overwrite=True, progress=False)
                print(f"packed the shipped files: {report}", flush=True)
            names = ", ".join(Path(p).name for p in shipped)
            datasets.append(("shipped files", shipped, store, names))
        else:
            print(f"no shipped files under {SHARED / 'sketchrnn'}: skipped", flush=True)
    for n in args.sizes:
        store = work / f"synthetic-{n}.store"
        if n <= args.today_max:
            npz = work / f"synthetic-{n}.npz"
            if args.fresh or not npz.exists():
                started = time.perf_counter()
                write_synthetic_npz(npz, n)
                print(f"wrote {npz} in {time.perf_counter() - started:.0f} s", flush=True)
            if args.fresh or stale(store):
                report = pack([npz], store, overwrite=True, progress=False)
                print(f"pack([{npz.name}]): {report}", flush=True)
            note = f"today: {npz.name}; packed: pack() of that file"
            datasets.append((f"synthetic {n:,}", [str(npz)], store, note))
        else:
            if args.fresh or stale(store):
                seconds = write_synthetic_store(store, n)
                print(f"wrote {store} chunk by chunk in {seconds:.0f} s", flush=True)
            note = (
                f"packed only ({CLASSES} classes, written by StoreWriter chunk by chunk); "
                "today's loader is not run at this size (about 5 GiB of RAM per 1M sketches)"
            )
            datasets.append((f"synthetic {n:,}", None, store, note))

    rows = []
    for name, today_paths, store, note in datasets:
        opened = open_store(store)
        row = {
            "name": name,
            "note": note,
            "sketches": len(opened),
            "train": int((opened.splits == 0).sum()),
            "packed_disk_mib": _size_mib([str(store)]),
        }
        del opened
        for side, paths in (("today", today_paths), ("packed", [str(store)])):
            if paths is None:
                continue
            print(f"measuring {side} on {name} ...", flush=True)
            cold = run_measure(side, paths, "cold", args.batches, args.drop_prob)
            warm = run_measure(side, paths, "warm", args.batches, args.drop_prob)
            warm["cold_open_s"] = cold["open_s"]
            warm["cold_first_batch_s"] = cold["first_batch_s"]
            warm["disk_mib"] = _size_mib(paths)
            row[side] = warm
        print(f"measuring verification on {name} ...", flush=True)
        row["verify"] = run_measure("verify", [str(store)], "warm", 0, 0.0)
        rows.append(row)
    load = os.getloadavg()[0]
    print(
        f"\nload average {load:.1f} on {os.cpu_count()} CPUs at the end (other jobs share the "
        "machine: wall-clock speeds move with them, CPU ms/batch much less)"
    )
    print(
        f"batch {BATCH}, max_len {MAX_LEN}, augmentation on (scale U(0.9, 1.1), drop_prob "
        f"{args.drop_prob}), {args.batches} batches timed per setting, {os.cpu_count()} CPUs"
    )
    print_table(rows)
    biggest = max((d[2] for d in datasets), key=lambda p: (p / "points.npy").stat().st_size)
    speeds = hash_speeds(biggest / "points.npy")
    print(f"\nhash speeds on the first 512 MiB of {biggest / 'points.npy'} (in memory, 1 thread):")
    for name, gbs in speeds.items():
        print(f"   {name:18s} {gbs:6.2f} GB/s")


if __name__ == "__main__":
    main()
