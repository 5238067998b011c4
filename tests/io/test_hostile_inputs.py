"""Hostile input for every reader, generated here: no binary corpus is committed.

Each case is a file built by this module and the reader it is fed to: truncations at several
offsets and seeded bit flips of a valid file, deep nesting, lying headers and zip directories,
decompression bombs (small on disk), NaN/inf/1e30, empty and single-point drawings, wrong
types. Every case must either read fine or raise :class:`SketchFileError` (never another
exception, a crash or a hang) with a one-line message naming the file; cases marked
``must_fail`` must raise it. Each case must finish in ``CASE_SECONDS`` and grow the peak
memory by less than ``CASE_RSS_MB``.

All cases run in one worker subprocess whose address space is capped (``RLIMIT_AS``), so a
bomb that gets through fails with MemoryError there instead of swapping the test machine;
a worker that crashes (a segfault in a C extension) or hangs is restarted after the case.

Writers are covered at the end: a write that fails leaves no file behind.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import resource
import select
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

CASE_SECONDS = 5.0
CASE_RSS_MB = 512
ADDRESS_SPACE = 3 << 30
HANG_SECONDS = 60.0


@dataclass
class Case:
    id: str
    reader: str
    build: Callable[[Path], Path]
    must_fail: bool
    env: dict[str, str] = field(default_factory=dict)


CASES: list[Case] = []


def case(reader: str, name: str, must_fail: bool = True, **env: str):
    def register(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
        CASES.append(Case(f"{reader}-{name}", reader, build, must_fail, env))
        return build

    return register


# ----------------------------------------------------------------------------- zip helpers


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _deflate_zeros(n_bytes: int, head: bytes = b"") -> tuple[bytes, int, int]:
    """``(deflate data, crc, size)`` of ``head`` then ``n_bytes`` zeros, made without
    compressing them all: independent full-flushed blocks of 1 MiB of zeros, repeated."""
    chunk = 1 << 20
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)]
    block_c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = block_c.compress(bytes(chunk)) + block_c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    zeros = bytes(chunk)
    full, rest = divmod(n_bytes, chunk)
    parts.append(block * full)
    for _ in range(full):
        crc = zlib.crc32(zeros, crc)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts.append(tail.compress(bytes(rest)) + tail.flush())
    crc = zlib.crc32(bytes(rest), crc)
    return b"".join(parts), crc, len(head) + n_bytes


def _raw_zip(path: Path, members: list[dict]) -> Path:
    """Write a zip by hand, so that its directory can say anything: each member is
    ``name``, ``data`` (as stored), ``size`` (declared), ``crc``, and optionally ``method``
    (8 deflate), ``flags``, ``csize`` (declared compressed size)."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m["name"].encode()
        method, flags = m.get("method", 8), m.get("flags", 0)
        csize = m.get("csize", len(m["data"]))
        offset = len(out)
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0, m["crc"], csize, m["size"],
            len(name), 0,
        )  # fmt: skip
        out += name + m["data"]
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0, m["crc"], csize,
            m["size"], len(name), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        central += name
    start = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                       len(central), start, 0)  # fmt: skip
    path.write_bytes(bytes(out))
    return path


def _member(name: str, data: bytes, **overrides) -> dict:
    member = {"name": name, "data": _deflate(data), "size": len(data), "crc": zlib.crc32(data)}
    member.update(overrides)
    return member


def _zip(path: Path, files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_header(shape: tuple, descr: str = "<i2", version: tuple[int, int] = (1, 0)) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buffer, header)
    else:
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def _objects(*items) -> np.ndarray:
    column = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        column[i] = item
    return column


def _sketch(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.zeros((n, 3), dtype=np.int16)
    s[:, 0:2] = rng.integers(-20, 20, size=(n, 2))
    s[rng.random(n) < 0.3, 2] = 1
    s[-1, 2] = 1
    return s


def _truncations(data: bytes) -> list[int]:
    n = len(data)
    return sorted({max(1, int(n * f)) for f in (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)} - {n})


def _flip(data: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    position = int(rng.integers(len(out)))
    out[position] ^= 1 << int(rng.integers(8))
    return bytes(out)


def _mutations(reader: str, base: Callable[[Path], Path], suffix: str, flips: int,
               truncation_fails: bool) -> None:  # fmt: skip
    """Truncations at several offsets and ``flips`` seeded single-bit flips of ``base``."""

    def valid(tmp: Path) -> bytes:
        return base(tmp / f"base{suffix}").read_bytes()

    with tempfile.TemporaryDirectory() as scratch:
        cuts = _truncations(valid(Path(scratch)))
    for cut in cuts:

        def truncated(path: Path, cut=cut) -> Path:
            path.write_bytes(valid(path.parent)[:cut])
            return path

        case(reader, f"truncated-at-{cut}", must_fail=truncation_fails)(truncated)
    for seed in range(flips):

        def flipped(path: Path, seed=seed) -> Path:
            path.write_bytes(_flip(valid(path.parent), seed))
            return path

        case(reader, f"bit-flip-{seed}", must_fail=False)(flipped)


# ----------------------------------------------------------------------------- npz


def _base_npz(path: Path) -> Path:
    np.savez_compressed(
        path,
        train=_objects(*(_sketch(8 + i, i) for i in range(6))),
        valid=_objects(_sketch(5, 10), _sketch(7, 11)),
        test=_objects(_sketch(9, 12)),
    )
    return path


_mutations("npz", _base_npz, ".npz", flips=14, truncation_fails=True)


def _npz_members(path: Path, members: dict[str, bytes], stored: bool = False) -> Path:
    return _zip(path, members, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)


@case("npz", "header-shape-6-TiB")
def _(path):
    return _npz_members(path, {"train.npy": _npy_header((3 << 40, 1, 3)) + bytes(200)})


@case("npz", "header-shape-1e12-sketches")
def _(path):
    return _npz_members(path, {"train.npy": _npy_header((10**12, 100, 3)) + bytes(64)})


@case("npz", "header-declares-less-than-the-data")
def _(path):
    return _npz_members(path, {"train.npy": _npy_header((2, 4, 3)) + bytes(4096)})


@case("npz", "header-v2-huge-header-length")
def _(path):
    return _npz_members(path, {"train.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31)})


@case("npz", "header-deeply-nested-shape")
def _(path):
    header = "{'descr': '<i2', 'fortran_order': False, 'shape': " + "(" * 5000 + ")" * 5000 + "}"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header.encode() + b"\n"
    return _npz_members(path, {"train.npy": data})


@case("npz", "header-not-a-literal")
def _(path):
    header = "{'descr': __import__('os').system('true'), 'shape': (1,)}"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header.encode() + b"\n"
    return _npz_members(path, {"train.npy": data})


@case("npz", "header-negative-shape")
def _(path):
    header = "{'descr': '<i2', 'fortran_order': False, 'shape': (-1, 3, 3), }"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header.encode() + b"\n"
    return _npz_members(path, {"train.npy": data + bytes(18)})


@case("npz", "header-void-dtype")
def _(path):
    return _npz_members(path, {"train.npy": _npy_header((10**9,), "|V0")})


def _pickled(payload: bytes, shape: tuple = (3,)) -> bytes:
    return _npy_header(shape, "|O") + payload


def _object_array_pickle(n_shape: int, items: list) -> bytes:
    """What numpy pickles for an object array, with the outer shape set to ``n_shape``."""
    column = _objects(*items)
    state = list(column.__reduce__()[2])
    state[1] = (n_shape,)

    class Forged:
        def __reduce__(self):
            return (column.__reduce__()[0], column.__reduce__()[1], tuple(state))

    return pickle.dumps(Forged(), protocol=3)


@case("npz", "pickle-object-list-shorter-than-its-shape")
def _(path):
    # numpy's own __setstate__ reads past the list here: a segfault in np.load(allow_pickle).
    payload = _object_array_pickle(1000, [_sketch(4)])
    return _npz_members(path, {"train.npy": _pickled(payload, (1000,))})


@case("npz", "pickle-reconstruct-huge-shape")
def _(path):
    g = b"cnumpy.core.multiarray\n_reconstruct\n"
    payload = b"\x80\x02" + g + b"cnumpy\nndarray\nJ\x00\x00\x00\x10\x85U\x01b\x87R."
    return _npz_members(path, {"train.npy": _pickled(payload, (1,))})


@case("npz", "pickle-binbytes8-asks-for-4-EiB")
def _(path):
    payload = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"tiny"
    return _npz_members(path, {"train.npy": _pickled(payload)})


@case("npz", "pickle-binbytes-asks-for-2-GiB")
def _(path):
    payload = b"\x80\x03B" + struct.pack("<I", 0x7FFFFFF0) + b"tiny"
    return _npz_members(path, {"train.npy": _pickled(payload)})


@case("npz", "pickle-void-dtype")
def _(path):
    payload = b"\x80\x02cnumpy\ndtype\nX\x0a\x00\x00\x00V100000000K\x00K\x01\x87R."
    return _npz_members(path, {"train.npy": _pickled(payload, (1,))})


@case("npz", "pickle-build-on-a-global")
def _(path):
    payload = b"\x80\x02cnumpy\ndtype\n}X\x03\x00\x00\x00abcK\x01sb."
    return _npz_members(path, {"train.npy": _pickled(payload, (1,))})


@case("npz", "pickle-array-data-shorter-than-shape")
def _(path):
    inner = _sketch(50)
    state = list(inner.__reduce__()[2])
    state[4] = state[4][:10]

    class Forged:
        def __reduce__(self):
            return (inner.__reduce__()[0], inner.__reduce__()[1], tuple(state))

    payload = pickle.dumps(_objects(Forged()), protocol=3)
    return _npz_members(path, {"train.npy": _pickled(payload, (1,))})


class _System:
    def __reduce__(self):
        return (os.system, ("true",))


@case("npz", "pickle-calls-os-system")
def _(path):
    return _npz_members(path, {"train.npy": _pickled(pickle.dumps(_System(), protocol=2), (1,))})


@case("npz", "pickle-eval-inside-an-object-array")
def _(path):
    return _npz_members(path, {"valid.npy": _npy(_objects(_sketch(3), _System()))})


@case("npz", "pickle-object-items-are-ints")
def _(path):
    return _npz_members(path, {"train.npy": _npy(_objects(1, 2, 3))})


@case("npz", "pickle-object-item-nested-100k-deep")
def _(path):
    payload = b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b"."
    return _npz_members(path, {"train.npy": _pickled(payload, (1,))})


@case("npz", "pickle-long-of-5000-digits")
def _(path):
    payload = b"\x80\x02L" + b"9" * 5000 + b"L\n."
    return _npz_members(path, {"train.npy": _pickled(payload, (1,))})


@case("npz", "pickle-memo-get-of-nothing")
def _(path):
    return _npz_members(path, {"train.npy": _pickled(b"\x80\x02h\x07.", (1,))})


@case("npz", "pickle-truncated")
def _(path):
    payload = _npy(_objects(_sketch(30), _sketch(40)))
    return _npz_members(path, {"train.npy": payload[: len(payload) - 40]})


@case("npz", "pickle-trailing-bytes-after-stop")
def _(path):
    return _npz_members(path, {"train.npy": _npy(_objects(_sketch(3))) + b"junk"})


@case("npz", "pickle-complex-dtype-item")
def _(path):
    return _npz_members(path, {"train.npy": _npy(_objects(np.zeros((3, 3), np.complex64)))})


@case("npz", "deflate-bomb-declared-over-the-member-cap")
def _(path):
    data, crc, size = _deflate_zeros(600 << 20, _npy_header((100 << 20, 1, 3)))
    return _raw_zip(path, [{"name": "train.npy", "data": data, "crc": crc, "size": size}])


@case("npz", "deflate-bomb-just-under-a-64-MiB-cap", must_fail=False,
      SKETCHRNN_NPZ_MAX_MEMBER_BYTES=str(64 << 20))  # fmt: skip
def _(path):
    # 1 M sketches of 10 zero rows: a legal file of all-zero drawings, 60 MiB inflated from
    # 60 KB. Read within the memory bound (or refused); never several times its size.
    data, crc, size = _deflate_zeros(60 << 20, _npy_header((1 << 20, 10, 3)))
    return _raw_zip(path, [{"name": "train.npy", "data": data, "crc": crc, "size": size}])


@case("npz", "deflate-bomb-1-D-zeros-under-the-cap", must_fail=True,
      SKETCHRNN_NPZ_MAX_MEMBER_BYTES=str(64 << 20))  # fmt: skip
def _(path):
    data, crc, size = _deflate_zeros(60 << 20, _npy_header((30 << 20,)))
    return _raw_zip(path, [{"name": "train.npy", "data": data, "crc": crc, "size": size}])


@case("npz", "members-over-the-archive-inflate-cap", SKETCHRNN_MAX_INFLATE_BYTES=str(1 << 20))
def _(path):
    block = _npy(np.zeros((20_000, 3, 3), np.int16))  # 360 KB each, 1 MiB in all
    return _npz_members(path, {"train.npy": block, "valid.npy": block, "test.npy": block})


@case("npz", "directory-declares-more-than-deflate-can")
def _(path):
    return _raw_zip(path, [_member("train.npy", _npy(_objects(_sketch(3))), size=1 << 30)])


@case("npz", "directory-declares-less-than-the-data")
def _(path):
    return _raw_zip(path, [_member("train.npy", _npy(_objects(_sketch(30))), size=100)])


@case("npz", "directory-wrong-crc")
def _(path):
    return _raw_zip(path, [_member("train.npy", _npy(_objects(_sketch(3))), crc=1234)])


@case("npz", "stored-member-sizes-differ")
def _(path):
    data = _npy(_objects(_sketch(3)))
    return _raw_zip(
        path,
        [{"name": "train.npy", "data": data, "size": 1 << 28, "crc": 0, "method": 0}],
    )


@case("npz", "bzip2-member")
def _(path):
    return _zip(path, {"train.npy": _npy(_objects(_sketch(3)))}, zipfile.ZIP_BZIP2)


@case("npz", "lzma-member")
def _(path):
    return _zip(path, {"train.npy": _npy(_objects(_sketch(3)))}, zipfile.ZIP_LZMA)


@case("npz", "encrypted-flag")
def _(path):
    return _raw_zip(path, [_member("train.npy", _npy(_objects(_sketch(3))), flags=1)])


@case("npz", "compressed-data-past-the-end-of-file")
def _(path):
    return _raw_zip(path, [_member("train.npy", _npy(_objects(_sketch(3))), csize=1 << 30)])


@case("npz", "unknown-compression-method")
def _(path):
    return _raw_zip(path, [_member("train.npy", _npy(_objects(_sketch(3))), method=99)])


@case("npz", "empty-zip")
def _(path):
    return _zip(path, {})


@case("npz", "not-a-zip")
def _(path):
    path.write_text("train,valid,test\n1,2,3\n")
    return path


@case("npz", "duplicate-member-names", must_fail=False)
def _(path):
    with pytest.warns(UserWarning):
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("train.npy", _npy(_objects(_sketch(3))))
            zf.writestr("train.npy", _npy(_objects(_sketch(4))))
    return path


def _npz_with(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _float_sketch(value: float) -> np.ndarray:
    s = _sketch(4).astype(np.float64)
    s[1, 0] = value
    return s


_HUGE = [("nan", np.nan), ("inf", np.inf), ("minus-inf", -np.inf), ("1e30", 1e30),
         ("minus-1e30", -1e30), ("1e39-overflows-float32", 1e39)]  # fmt: skip
for _name, _value in _HUGE:
    case("npz", f"coordinate-{_name}")(
        lambda path, v=_value: _npz_with(path, train=_objects(_sketch(3), _float_sketch(v)))
    )


@case("npz", "3-D-block-with-nan")
def _(path):
    block = np.zeros((4, 5, 3))
    block[2, 1, 1] = np.nan
    return _npz_with(path, train=block)


@case("npz", "empty-sketch")
def _(path):
    return _npz_with(path, train=_objects(_sketch(3), np.zeros((0, 3), np.int16)))


@case("npz", "single-point-sketch", must_fail=False)
def _(path):
    return _npz_with(path, train=_objects(_sketch(3), np.array([[1, 2, 1]], np.int16)))


for _name, _item in [
    ("bool-array", np.ones((3, 3), bool)),
    ("string-array", np.array([["a", "b", "c"]])),
    ("two-columns", np.zeros((4, 2), np.int16)),
    ("four-columns", np.zeros((4, 4), np.int16)),
    ("one-dimensional", np.zeros(6, np.int16)),
    ("pen-value-2", np.array([[1, 1, 2], [1, 1, 1]], np.int16)),
    ("item-none", None),
    ("item-dict", {"x": 1}),
    ("item-list", [[1, 2, 1]]),
]:
    case("npz", f"wrong-type-{_name}")(
        lambda path, item=_item: _npz_with(path, train=_objects(_sketch(3), item))
    )


for _name, _value in [("nan", np.nan), ("negative", -1.0), ("string", np.array("big")),
                      ("array", np.ones(3))]:  # fmt: skip
    case("npz", f"scale-factor-{_name}")(
        lambda path, v=_value: _npz_with(path, train=_objects(_sketch(3)), scale_factor=v)
    )


@case("npz", "labels-wrong-length")
def _(path):
    return _npz_with(path, train=_objects(_sketch(3), _sketch(4)), train_labels=np.array(["a"]))


@case("npz", "labels-are-numbers")
def _(path):
    return _npz_with(path, train=_objects(_sketch(3)), train_labels=np.array([7]))


@case("npz", "key-ids-are-floats")
def _(path):
    return _npz_with(path, train=_objects(_sketch(3)), train_key_id=np.array([1.5]))


@case("npz", "timestamps-nan")
def _(path):
    return _npz_with(path, train=_objects(_sketch(3)), train_timestamp=np.array([np.nan]))


# ----------------------------------------------------------------------------- ndjson


def _record(**fields) -> dict:
    record = {
        "word": "cat",
        "countrycode": "US",
        "timestamp": "2017-03-27 00:14:57.31033 UTC",
        "recognized": True,
        "key_id": "5201136883597312",
        "drawing": [[[0, 10, 20, 30], [0, 5, 0, 9]], [[40, 41], [50, 60]]],
    }
    record.update(fields)
    return record


def _ndjson(path: Path, *lines: str | dict) -> Path:
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def _base_ndjson(path: Path) -> Path:
    return _ndjson(path, *(_record(key_id=str(k), drawing=[[[k, 10, 20], [0, k, 9]]])
                           for k in range(6)))  # fmt: skip


_mutations("ndjson", _base_ndjson, ".ndjson", flips=12, truncation_fails=False)


def _ndjson_case(name: str, line: str | dict, must_fail: bool = True, reader: str = "ndjson"):
    case(reader, name, must_fail)(lambda path: _ndjson(path, _record(), line))


_ndjson_case("drawing-nested-100k-deep", '{"drawing": ' + "[" * 100_000 + "]" * 100_000 + "}")
_ndjson_case("drawing-nested-200k-deep", '{"drawing": ' + "[" * 200_000 + "]" * 200_000 + "}")
_ndjson_case("line-nested-150k-deep", "[" * 150_000 + "]" * 150_000)
_ndjson_case("word-nested-120k-deep", '{"word": ' + '{"a":' * 120_000 + "1" + "}" * 120_001)
_ndjson_case("line-of-17-MiB", '{"drawing": [[[' + "1," * (17 << 19) + "1], [1]]]}")
_ndjson_case("whitespace-line-of-17-MiB", " " * (17 << 20))
for _literal in ("NaN", "Infinity", "-Infinity", "1e999", "1e30", "-2e7"):
    _ndjson_case(
        f"coordinate-{_literal}",
        json.dumps(_record()).replace('"drawing": [[[0, 10', f'"drawing": [[[0, {_literal}'),
    )
_ndjson_case("integer-of-5000-digits", '{"drawing": [[[' + "9" * 5000 + ", 1], [1, 2]]]}")
_ndjson_case("empty-drawing", _record(drawing=[]))
_ndjson_case("empty-strokes-only", _record(drawing=[[[], []], [[], []]]))
_ndjson_case("single-point", _record(drawing=[[[5], [5]]]))
_ndjson_case("300k-points", _record(drawing=[[list(range(300_000)), [0] * 300_000]]))
for _name, _fields in [
    ("drawing-string", {"drawing": "abc"}),
    ("drawing-object", {"drawing": {"x": [1]}}),
    ("drawing-missing", {"drawing": None}),
    ("stroke-object", {"drawing": [{"x": [1, 2], "y": [1, 2]}]}),
    ("stroke-flat", {"drawing": [[1, 2]]}),
    ("coordinates-strings", {"drawing": [[["1", "2"], ["3", "4"]]]}),
    ("coordinates-booleans", {"drawing": [[[True, False], [True, True]]]}),
    ("coordinates-null", {"drawing": [[[None, 1], [1, 2]]]}),
    ("coordinates-nested", {"drawing": [[[[1], [2]], [[3], [4]]]]}),
    ("x-y-lengths-differ", {"drawing": [[[1, 2, 3], [1, 2]]]}),
    ("four-rows", {"drawing": [[[1, 2], [1, 2], [1, 2], [1, 2]]]}),
    ("word-number", {"word": 7}),
    ("key-id-negative", {"key_id": -5}),
    ("key-id-float", {"key_id": 1.5}),
    ("key-id-2-to-the-64", {"key_id": str(2**64)}),
    ("key-id-unicode-digits", {"key_id": "\u0661\u0662"}),
    ("timestamp-garbage", {"timestamp": "soon"}),
    ("timestamp-negative", {"timestamp": -1}),
    ("timestamp-1e300", {"timestamp": 1e300}),
    ("timestamp-object", {"timestamp": {"s": 1}}),
    ("recognized-yes", {"recognized": "yes"}),
    ("recognized-2", {"recognized": 2}),
    ("countrycode-number", {"countrycode": 5}),
    ("split-bogus", {"split": "holdout"}),
]:
    _ndjson_case(f"wrong-type-{_name}", _record(**_fields))
_ndjson_case("word-null-falls-back-to-the-file-name", _record(word=None), must_fail=False)
_ndjson_case("record-is-a-list", "[1, 2, 3]")
_ndjson_case("record-is-a-number", "42")
_ndjson_case("record-is-a-string", '"cat"')
_ndjson_case("record-is-null", "null")
_ndjson_case("unterminated-string", '{"word": "cat')
_ndjson_case("nul-bytes", "\0" * 100)


@case("ndjson", "not-utf-8")
def _(path):
    path.write_bytes(json.dumps(_record(word="caf\u00e9"), ensure_ascii=False).encode("latin-1"))
    return path


@case("ndjson", "utf-16", must_fail=False)
def _(path):
    path.write_bytes(json.dumps(_record()).encode("utf-16"))
    return path


@case("ndjson", "only-blank-lines")
def _(path):
    path.write_text("\n  \n\t\n" * 100)
    return path


_BAD_LINES = ["[" * 50_000, '{"drawing": [[[1], [1]]]}', "NaN", _record(drawing="x"),
              _record(key_id="abc"), "\xff garbage"]  # fmt: skip


@case("ndjson-skip", "good-and-bad-lines-skipping-the-bad", must_fail=False)
def _(path):
    return _ndjson(path, _record(), *_BAD_LINES, _record(key_id="7"))


@case("ndjson-skip", "only-bad-lines-skipping-them")
def _(path):
    return _ndjson(path, *_BAD_LINES)


@case("ndjson-skip", "line-of-17-MiB-skipped", must_fail=False)
def _(path):
    return _ndjson(path, _record(), " " * (17 << 20) + "x", _record())


def _raw_record(n: int = 30, seed: int = 0, **fields) -> dict:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0, 5, n)) + 300
    y = np.cumsum(rng.normal(0, 5, n)) + 300
    t = np.arange(n) * 16
    return _record(drawing=[[x.tolist(), y.tolist(), t.tolist()]], **fields)


def _base_raw(path: Path) -> Path:
    return _ndjson(path, *(_raw_record(40, s) for s in range(3)))


_mutations("ndjson-raw", _base_raw, ".ndjson", flips=8, truncation_fails=False)


def _raw_case(name: str, record: dict, must_fail: bool = True) -> None:
    case("ndjson-raw", name, must_fail)(lambda path: _ndjson(path, _raw_record(), record))


_zig = [0.0, 1e5] * 1000
_raw_case("zigzag-resample-bomb", _record(drawing=[[_zig, _zig, list(range(2000))]]))
_raw_case("times-shorter", _record(drawing=[[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0, 1]]]))
_raw_case("all-points-coincide", _record(drawing=[[[5.5] * 3, [2.0] * 3, [0, 1, 2]]]))
_raw_case("coordinate-1e7", _record(drawing=[[[0.0, 1e7], [0.0, 1.0], [0, 1]]]))
_raw_case("nan-time", _record(drawing=[[[0.0, 9.0], [0.0, 1.0], [0, float("nan")]]]), False)
_raw_case("mixed-raw-and-simplified", _record(drawing=[[[0, 1], [0, 1]], [[0, 1], [0, 1], [0, 1]]]))
_raw_case(
    "150k-points-straight-line",
    _record(drawing=[[list(range(150_000)), list(range(150_000)), list(range(150_000))]]),
    must_fail=False,
)


# ----------------------------------------------------------------------------- .bin

_BIN_HEADER = struct.Struct("<Q2sBIH")


def _bin_record(
    key_id: int = 1,
    country: bytes = b"US",
    recognized: int = 1,
    timestamp: int = 1490573697,
    strokes: tuple = ((0, 10, 255), (5, 6, 7)),
) -> bytes:
    out = _BIN_HEADER.pack(key_id, country, recognized, timestamp, len(strokes) // 2)
    for xs, ys in zip(strokes[0::2], strokes[1::2], strict=True):
        out += struct.pack("<H", len(xs)) + bytes(xs) + bytes(ys)
    return out


def _base_bin(path: Path) -> Path:
    path.write_bytes(b"".join(_bin_record(key_id=k) for k in range(5)))
    return path


_mutations("bin", _base_bin, ".bin", flips=12, truncation_fails=True)


def _bin_case(name: str, data: bytes, must_fail: bool = True) -> None:
    case("bin", name, must_fail)(lambda path: _write(path, _bin_record() + data))


_bin_case("65535-strokes-declared-none-present", _BIN_HEADER.pack(1, b"US", 1, 0, 65535))
_bin_case("65535-points-declared", _BIN_HEADER.pack(1, b"US", 1, 0, 1) + b"\xff\xff" + bytes(9))
_bin_case("country-not-ascii", _bin_record(country=b"\xff\xfe"))
_bin_case("recognized-7", _bin_record(recognized=7))
_bin_case("no-strokes", _BIN_HEADER.pack(1, b"US", 1, 0, 0))
_bin_case("single-point", _bin_record(strokes=((3,), (4,))))
_bin_case("empty-strokes-only", _bin_record(strokes=((), (), (), ())))
for _n in (1, 7, 17):
    _bin_case(f"{_n}-trailing-garbage-bytes", b"\x01" * _n)


# ----------------------------------------------------------------------------- svg

_SVG = (
    '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    '<path d="M10,10 L50,50 C60,60 70,20 90,90"/><circle cx="50" cy="50" r="20"/>'
    '<polyline points="1,1 5,9 9,1"/></svg>\n'
)


def _base_svg(path: Path) -> Path:
    path.write_text(_SVG)
    return path


_mutations("svg", _base_svg, ".svg", flips=8, truncation_fails=False)


def _svg_case(name: str, text: str, must_fail: bool = True, **env: str) -> None:
    case("svg", name, must_fail, **env)(lambda path: _write(path, text))


_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lollollollollollollollollollol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + ']><svg xmlns="http://www.w3.org/2000/svg"><text>&j;</text><path d="M0,0 L1,1"/></svg>'
)
_svg_case("billion-laughs", _LAUGHS)
_svg_case(
    "external-entity",
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0 L1,1"/><text>&x;</text></svg>',
)
_svg_case(
    "groups-nested-100k-deep",
    '<svg xmlns="http://www.w3.org/2000/svg">' + "<g>" * 100_000 + '<path d="M0,0 L9,9"/>'
    + "</g>" * 100_000 + "</svg>",
    must_fail=False,
)  # fmt: skip
_svg_case(
    "300k-segments",
    '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0' + " L1,2 3,4" * 150_000 + '"/></svg>',
)
_svg_case(
    "300k-elements",
    '<svg xmlns="http://www.w3.org/2000/svg">' + "<g/>" * 300_000 + '<path d="M0,0 L1,1"/></svg>',
)
_svg_case(
    "40k-lines-in-1-MiB-of-path-data",
    '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0' + " L1,2 3,4" * 40_000 + '"/></svg>',
    must_fail=False,
)
_svg_case(
    "arcs-of-radius-1e6",
    '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0'
    + " A1e6,1e6 0 1 1 0,1 A1e6,1e6 0 1 1 0,0" * 40 + '"/></svg>',
)  # fmt: skip
_svg_case(
    "arc-of-radius-1e308",
    '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0 A1e308,1e308 0 1 1 1e308,1"/></svg>',
    must_fail=False,
)
_svg_case(
    "nan-coordinates",
    '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0 L nan,nan"/></svg>',
    must_fail=False,
)
_svg_case(
    "nan-transform",
    '<svg xmlns="http://www.w3.org/2000/svg"><g transform="matrix(nan,0,0,1,0,0)">'
    '<path d="M0,0 L5,5"/></g></svg>',
    must_fail=False,
)
_svg_case("not-svg-root", "<html><body>hi</body></html>")
_svg_case("empty-svg", '<svg xmlns="http://www.w3.org/2000/svg"></svg>')
_svg_case("text-only", '<svg xmlns="http://www.w3.org/2000/svg"><text>cat</text></svg>')
_svg_case("not-xml", "this is not < xml at all &")
_svg_case("bad-path-data", '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0 Q"/></svg>')
_SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg">'
for _name, _transform in [("scale-1e19", "scale(1e19)"), ("scale-1e30", "scale(1e30)"),
                          ("scale-1e300", "scale(1e300)"), ("translate-1e308", "translate(1e308)"),
                          ("matrix-3e38", "matrix(3e38,0,0,3e38,0,0)")]:  # fmt: skip
    _svg_case(
        f"huge-transform-{_name}",
        f'{_SVG_OPEN}<g transform="{_transform}"><path d="M0,0 L5,5 L9,2"/></g></svg>',
    )
_svg_case(
    "nested-transforms-multiplying-to-1e40",
    _SVG_OPEN + '<g transform="scale(1e10)">' * 4 + '<path d="M0,0 L5,5"/>' + "</g>" * 4 + "</svg>",
)
_svg_case("single-point-path", f'{_SVG_OPEN}<path d="M5,5 L5,5"/></svg>', must_fail=False)
_svg_case("file-over-the-size-cap", _SVG + "<!--" + "x" * 5000 + "-->",
          SKETCHRNN_MAX_SVG_BYTES="4096")  # fmt: skip


# ----------------------------------------------------------------------------- omniglot zip

_STROKE_TEXT = "START\n10.5,-20.5,0\n12,-25,16\n15,-30,33\nBREAK\n40,-40,60\n41,-48,77\nBREAK\n"


def _base_omniglot(path: Path) -> Path:
    files = {
        f"strokes/Latin/character{c:02d}/{c:04d}_{d:02d}.txt": _STROKE_TEXT.encode()
        for c in (1, 2)
        for d in (1, 2)
    }
    return _zip(path, files)


_mutations("omniglot-zip", _base_omniglot, ".zip", flips=16, truncation_fails=True)

_NAME = "strokes/Latin/character01/0001_01.txt"


def _omniglot_case(name: str, text: bytes, must_fail: bool = True) -> None:
    case("omniglot-zip", name, must_fail)(lambda path: _zip(path, {_NAME: text}))


@case("omniglot-zip", "874-KB-zip-of-repeated-stroke-lines")
def _(path):
    text = b"START\n" + b"12.5,-34.5,1234\n" * (1 << 16)  # 1 MiB a file, 1.5 KB compressed
    packed = _deflate(text)
    members = [
        {"name": f"s/Latin/character{i // 20 + 1:02d}/{i + 1:04d}_{i % 20 + 1:02d}.txt",
         "data": packed, "size": len(text), "crc": zlib.crc32(text)}
        for i in range(500)
    ]  # fmt: skip
    return _raw_zip(path, members)


@case("omniglot-zip", "member-declared-64-MiB")
def _(path):
    data, crc, size = _deflate_zeros(64 << 20, b"START\n")
    return _raw_zip(path, [{"name": _NAME, "data": data, "crc": crc, "size": size}])


@case("omniglot-zip", "directory-declares-less-than-the-data")
def _(path):
    return _raw_zip(path, [_member(_NAME, _STROKE_TEXT.encode() * 50, size=20)])


@case("omniglot-zip", "directory-wrong-crc")
def _(path):
    return _raw_zip(path, [_member(_NAME, _STROKE_TEXT.encode(), crc=99)])


@case("omniglot-zip", "bzip2-member")
def _(path):
    return _zip(path, {_NAME: _STROKE_TEXT.encode()}, zipfile.ZIP_BZIP2)


@case("omniglot-zip", "encrypted-flag")
def _(path):
    return _raw_zip(path, [_member(_NAME, _STROKE_TEXT.encode(), flags=1)])


@case("omniglot-zip", "flipped-bit-in-deflate-data")
def _(path):
    member = _member(_NAME, _STROKE_TEXT.encode() * 20)
    data = bytearray(member["data"])
    data[len(data) // 3] ^= 0x10
    member["data"] = bytes(data)
    return _raw_zip(path, [member])


@case("omniglot-zip", "200001-points", must_fail=True)
def _(path):
    rng = np.random.default_rng(0)
    numbers = rng.integers(0, 99, size=(200_001, 3))
    text = "START\n" + "".join(f"{x},{-y},{t}\n" for x, y, t in numbers.tolist()) + "BREAK\n"
    return _zip(path, {_NAME: text.encode()})


_omniglot_case("not-utf-8", b"START\n1,2,3\n\xff\xfe\n")
_omniglot_case("nan-value", b"START\n1,nan,3\nBREAK\n")
_omniglot_case("1e400-value", b"START\n1,1e400,3\nBREAK\n")
_omniglot_case("missing-start", b"1,2,3\nBREAK\n")
_omniglot_case("two-fields", b"START\n1,2\nBREAK\n")
_omniglot_case("no-points", b"START\nBREAK\nBREAK\n")
_omniglot_case("second-start", b"START\n1,2,3\nSTART\n")
_omniglot_case("nul-bytes", b"START\n" + b"\0" * 1000)
for _value in ("1e39", "-1e39", "3e38", "1e30", "1000001"):
    _omniglot_case(f"coordinate-{_value}", f"START\n1,2,3\n5,{_value},7\nBREAK\n".encode())
_omniglot_case("offset-overflowing-float32", b"START\n1,3e38,3\n5,-3e38,7\nBREAK\n")
_omniglot_case("single-point", b"START\n1,2,3\nBREAK\n", must_fail=False)


@case("omniglot-zip", "no-stroke-files")
def _(path):
    return _zip(path, {"readme.txt": b"hello", "a/b/notes.md": b"x"})


@case("omniglot-zip", "names-with-dot-dot", must_fail=False)
def _(path):
    return _zip(path, {"../../Latin/character01/0001_01.txt": _STROKE_TEXT.encode()})


# ----------------------------------------------------------------------------- omniglot images


def _base_images(path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez_compressed(path, images=rng.random((2, 20, 105, 105)) > 0.1, labels=np.zeros(2))
    return path


_mutations("omniglot-images", _base_images, ".npz", flips=10, truncation_fails=True)


@case("omniglot-images", "header-shape-far-larger-than-data")
def _(path):
    return _npz_members(path, {"images.npy": _npy_header((10**6, 20, 105, 105), "|b1")})


@case("omniglot-images", "object-array")
def _(path):
    return _npz_with(path, images=_objects(_System()))


@case("omniglot-images", "int8-images")
def _(path):
    return _npz_with(path, images=np.zeros((1, 20, 105, 105), np.int8))


@case("omniglot-images", "wrong-shape")
def _(path):
    return _npz_with(path, images=np.zeros((1, 20, 28, 28), bool))


@case("omniglot-images", "declared-2-GiB")
def _(path):
    return _raw_zip(path, [_member("images.npy", _npy_header((1,), "|b1") + b"\x01", size=2 << 30)])


@case("omniglot-images", "zero-bomb-over-a-32-MiB-cap",
      SKETCHRNN_NPZ_MAX_MEMBER_BYTES=str(32 << 20))  # fmt: skip
def _(path):
    header = _npy_header((300, 20, 105, 105), "|b1")
    data, crc, size = _deflate_zeros(300 * 20 * 105 * 105, header)
    return _raw_zip(path, [{"name": "images.npy", "data": data, "crc": crc, "size": size}])


# ----------------------------------------------------------------------------- one-shot runs


def _png(paper: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(paper).save(buffer, format="PNG")
    return buffer.getvalue()


def _runs(path: Path, png: Callable[[int], bytes] | None = None, labels: bytes | None = None):
    rng = np.random.default_rng(0)
    files = {}
    lines = []
    for k in (1, 2):
        image = _png(rng.random((105, 105)) > 0.1) if png is None else png(k)
        files[f"run01/training/class{k:02d}.png"] = image
        files[f"run01/test/item{k:02d}.png"] = image
        lines.append(f"run01/test/item{k:02d}.png run01/training/class{k:02d}.png")
    files["run01/class_labels.txt"] = labels if labels is not None else "\n".join(lines).encode()
    return _zip(path, files)


_mutations("one-shot-runs", _runs, ".zip", flips=5, truncation_fails=True)


@case("one-shot-runs", "png-declares-60000-by-60000")
def _(path):
    small = _png(np.ones((105, 105), bool))
    # the IHDR width and height sit at bytes 16-24; the CRC after them is left wrong
    huge = small[:16] + struct.pack(">II", 60_000, 60_000) + small[24:]
    return _runs(path, png=lambda k: huge)


@case("one-shot-runs", "png-garbage")
def _(path):
    return _runs(path, png=lambda k: b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)


@case("one-shot-runs", "labels-not-utf-8")
def _(path):
    return _runs(path, labels=b"\xff\xfe\xfd")


@case("one-shot-runs", "labels-declared-100-MiB")
def _(path):
    good = _runs(path)
    with zipfile.ZipFile(good) as zf:
        members = [_member(i.filename, zf.read(i)) for i in zf.infolist()]
    members[-1]["size"] = 100 << 20
    return _raw_zip(path, members)


# ----------------------------------------------------------------------------- magenta json


def _shapes(hidden: int) -> list[list[int]]:
    return [[hidden, 123], [123], [5, 4 * hidden], [hidden, 4 * hidden], [4 * hidden]]


def _model(hidden: int = 4, **info) -> list:
    import base64

    rng = np.random.default_rng(0)
    shapes = _shapes(hidden)
    weights = [
        base64.b64encode(rng.integers(-3000, 3000, size=int(np.prod(s))).astype("<i2").tobytes())
        .decode()
        for s in shapes
    ]  # fmt: skip
    meta = {"mode": 2, "version": 6, "max_seq_len": 250, "name": "cat", "scale_factor": 40.5}
    meta.update(info)
    return [meta, shapes, weights]


def _base_model(path: Path) -> Path:
    path.write_text(json.dumps(_model()))
    return path


_mutations("magenta", _base_model, ".gen.json", flips=8, truncation_fails=True)


def _model_case(name: str, text: str, must_fail: bool = True, **env: str) -> None:
    case("magenta", name, must_fail, **env)(lambda path: _write(path, text))


_model_case("nested-100k-deep", "[" * 100_000 + "]" * 100_000)
_model_case("nested-200k-deep", "[" * 200_000 + "]" * 200_000)
_model_case("info-nested-150k-deep", '[{"a":' * 150_000 + "1" + "}]" * 150_000)
_model_case(
    "integer-of-5000-digits",
    json.dumps(_model()).replace('"max_seq_len": 250', '"max_seq_len": ' + "9" * 5000),
)
_model_case("scale-factor-nan", json.dumps(_model(scale_factor=float("nan"))))
_model_case("scale-factor-negative", json.dumps(_model(scale_factor=-2.0)))
_model_case("max-seq-len-1e12", json.dumps(_model(max_seq_len=10**12)))
_model_case("hidden-10-to-the-7", json.dumps([_model()[0], _shapes(10**7), _model()[2]]))
_model_case("shape-10-to-the-30", json.dumps([_model()[0], _shapes(10**30), _model()[2]]))
_model_case("negative-shape", json.dumps([_model()[0], _shapes(-4), _model()[2]]))
_model_case("info-is-a-list", json.dumps([[1, 2], _model()[1], _model()[2]]))
_model_case("weights-are-numbers", json.dumps([_model()[0], _model()[1], [1, 2, 3, 4, 5]]))
_model_case("weights-not-base64", json.dumps([_model()[0], _model()[1], ["!!!"] * 5]))
_model_case("empty-list", "[]")
_model_case("not-json", "this is no model")
_model_case("file-over-the-size-cap", json.dumps(_model()), SKETCHRNN_MAX_JSON_BYTES="1000")
for _sf in (1e308, 1e30, 1e7, 1e-7, 1e-308, 5e-324):
    _model_case(f"scale-factor-{_sf:g}", json.dumps(_model(scale_factor=_sf)))
_model_case("scale-factor-true", json.dumps(_model(scale_factor=True)))
_model_case("scale-factor-string", json.dumps(_model(scale_factor="40")))


# ----------------------------------------------------------------------------- the worker

_SUFFIX = {
    "npz": ".npz", "ndjson": ".ndjson", "ndjson-skip": ".ndjson", "ndjson-raw": ".ndjson",
    "bin": ".bin", "svg": ".svg", "omniglot-zip": ".zip", "omniglot-images": ".npz",
    "one-shot-runs": ".zip", "magenta": ".gen.json",
}  # fmt: skip

WORKER = r"""
import json, os, resource, sys, time
import numpy, PIL.Image, svgpathtools
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.formats import read_sketches
from sketchrnn.io.magenta_json import read_magenta_json
from sketchrnn.io.omniglot_images import load_character_images, load_one_shot_runs

READERS = {
    "ndjson-skip": lambda p: read_sketches(p, skip_invalid=True),
    "omniglot-images": load_character_images,
    "one-shot-runs": load_one_shot_runs,
    "magenta": read_magenta_json,
}

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

for line in sys.stdin:
    case = json.loads(line)
    saved = {k: os.environ.get(k) for k in case["env"]}
    os.environ.update(case["env"])
    before, start = peak_mb(), time.perf_counter()
    result = {"id": case["id"]}
    try:
        READERS.get(case["reader"], read_sketches)(case["path"])
        result["outcome"] = "ok"
    except SketchFileError as e:
        result.update(outcome="error", message=str(e))
    except BaseException as e:
        result.update(outcome="exception", type=type(e).__name__, message=str(e)[:300])
    result["seconds"] = time.perf_counter() - start
    result["rss_mb"] = peak_mb() - before
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    print(json.dumps(result), flush=True)
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_cases(cases: list[tuple[Case, Path]], pythonpath: str | None = None) -> dict[str, dict]:
    """Run every ``(case, path)`` in a memory-capped worker; a case the worker dies on (or
    hangs on for ``HANG_SECONDS``) is recorded as such, and the rest run in a new worker."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    results: dict[str, dict] = {}
    pending = list(cases)
    while pending:
        with tempfile.TemporaryFile("w+") as stdin, tempfile.TemporaryFile() as stderr:
            for c, path in pending:
                stdin.write(json.dumps({"id": c.id, "reader": c.reader, "path": str(path),
                                        "env": c.env}) + "\n")  # fmt: skip
            stdin.seek(0)
            proc = subprocess.Popen(
                [sys.executable, "-c", WORKER], stdin=stdin, stdout=subprocess.PIPE,
                stderr=stderr, env=env, preexec_fn=_limit_memory,
            )  # fmt: skip
            assert proc.stdout is not None
            done = 0
            buffer = b""
            deadline = time.monotonic() + HANG_SECONDS * 3  # the first case waits for imports
            while done < len(pending):
                wait = deadline - time.monotonic()
                ready = select.select([proc.stdout], [], [], max(wait, 0))[0] if wait > 0 else []
                chunk = os.read(proc.stdout.fileno(), 1 << 16) if ready else b""
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    result = json.loads(line)
                    results[result["id"]] = result
                    done += 1
                    deadline = time.monotonic() + HANG_SECONDS
            if done < len(pending):
                proc.kill()
                proc.wait()
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-300:]
                why = "hang" if proc.returncode in (-9, None) and wait <= 0 else "crash"
                results[pending[done][0].id] = {
                    "outcome": why, "returncode": proc.returncode, "message": tail,
                }  # fmt: skip
                pending = pending[done + 1 :]
            else:
                proc.wait()
                pending = []
    return results


def build_cases(folder: Path) -> list[tuple[Case, Path]]:
    built = []
    for i, c in enumerate(CASES):
        sub = folder / f"{i:03d}"
        sub.mkdir()
        path = c.build(sub / f"input{_SUFFIX[c.reader]}")
        assert isinstance(path, Path) and path.is_file(), (c.id, path)
        built.append((c, path))
    return built


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    built = build_cases(tmp_path_factory.mktemp("hostile"))
    return {c.id: (path, r) for (c, path), r in zip(built, _ordered(built), strict=True)}


def _ordered(built):
    found = run_cases(built)
    return [found[c.id] for c, _ in built]


def test_there_are_enough_cases_for_every_reader():
    by_reader: dict[str, int] = {}
    for c in CASES:
        reader = c.reader.removesuffix("-skip")
        by_reader[reader] = by_reader.get(reader, 0) + 1
    assert len(CASES) >= 150 and len({c.id for c in CASES}) == len(CASES)
    assert set(by_reader) == set(_SUFFIX) - {"ndjson-skip"}, by_reader
    assert min(by_reader.values()) >= 10, by_reader


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_reads_or_fails_cleanly_in_bounded_time_and_memory(c: Case, results):
    path, r = results[c.id]
    assert r["outcome"] not in ("crash", "hang"), f"{r['outcome']} ({r.get('returncode')})"
    assert r["outcome"] != "exception", f"{r['type']}: {r['message']}"
    if c.must_fail:
        assert r["outcome"] == "error", "read a file that must be refused"
    if r["outcome"] == "error":
        message = r["message"]
        assert "\n" not in message and "\r" not in message, message
        assert str(path) in message, message
        assert "root:" not in message  # nothing read from /etc/passwd
    assert r["seconds"] < CASE_SECONDS, f"took {r['seconds']:.1f} s"
    assert r["rss_mb"] < CASE_RSS_MB, f"peak memory grew by {r['rss_mb']:.0f} MB"


# ----------------------------------------------------------------------------- writers

_GOOD = np.array([[1, 2, 0], [3, 4, 1], [5, 6, 1]], np.float32)


def _bad_set(kind: str):
    from sketchrnn.io.sketchset import SketchSet

    s = _GOOD.copy()
    if kind == "nan":
        s[1, 0] = np.nan
    elif kind == "inf":
        s[1, 1] = np.inf
    elif kind == "empty":
        s = np.zeros((0, 3), np.float32)
    elif kind == "two-columns":
        s = s[:, :2]
    elif kind == "pen-2":
        s[0, 2] = 2
    elif kind == "none":
        return SketchSet()
    return SketchSet([_GOOD, s], ["a", "a"])


WRITE_CASES = [
    (fmt, kind) for fmt in (".npz", ".ndjson", ".bin", ".svg", ".png")
    for kind in ("nan", "inf", "empty", "two-columns", "pen-2", "none")
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "kind"), WRITE_CASES)
def test_a_failed_write_is_one_clear_error_and_leaves_no_file(tmp_path, fmt, kind):
    from sketchrnn.io.files import SketchFileError
    from sketchrnn.io.formats import write_sketches

    path = tmp_path / f"out{fmt}"
    with pytest.raises(SketchFileError) as err:
        write_sketches(path, _bad_set(kind))
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def _metadata_set(**meta):
    from sketchrnn.io.sketchset import SketchSet

    return SketchSet([_GOOD], ["cat"], metadata=[meta])


@pytest.mark.parametrize(
    ("name", "sketches", "message"),
    [
        ("out.bin", _metadata_set(countrycode="USA"), "longer than 2"),
        ("out.bin", _metadata_set(countrycode="\u00e9"), "not ASCII"),
        ("out.bin", _metadata_set(timestamp=2**33), "does not fit uint32"),
        ("out.ndjson", _metadata_set(timestamp=1e20), "not a date"),
        ("out.ndjson", _metadata_set(key_id=-1), "key_id"),
        ("out.npz", _metadata_set(key_id=-1), "key_id"),
        ("out.ndjson", None, "no sketch has two points"),
        ("out.bin", None, "no sketch has two points"),
        ("out.ndjson", "far", "beyond"),
        ("out.txt", "far", "unsupported output type"),
    ],
)
def test_what_a_format_cannot_hold_is_refused_before_writing(tmp_path, name, sketches, message):
    from sketchrnn.io.files import SketchFileError
    from sketchrnn.io.formats import write_sketches
    from sketchrnn.io.sketchset import SketchSet

    if sketches is None:
        sketches = SketchSet([np.array([[1, 2, 1]], np.float32)] * 2)
    elif sketches == "far":
        sketches = SketchSet([np.array([[0, 0, 0], [3e6, 0, 1]], np.float32)])
    old = tmp_path / name
    old.write_bytes(b"the previous file")
    with pytest.raises(SketchFileError, match=message) as err:
        write_sketches(old, sketches)
    assert "\n" not in str(err.value) and str(old) in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert old.read_bytes() == b"the previous file"


# ----------------------------------------------------------------------------- through commands

# Files that read fine, or fail in a reader, followed further through the commands that use
# them: scale factors, rendering, training, drawing, embedding. Every command ends with exit 0
# or one line naming the file (exit 2), and leaves nothing behind.


def _objects_npz(path: Path, *sketches) -> Path:
    return _npz_with(path, train=_objects(*(np.asarray(s, np.int16) for s in sketches)))


def _tiny_offsets_npz(path: Path) -> Path:
    sketch = np.array([[1e-9, 2e-9, 0], [3e-9, -1e-9, 1]], np.float32)
    return _npz_with(path, train=_objects(sketch, sketch))


COMMAND_FILES: dict[str, Callable[[Path], Path]] = {
    "single-points.npz": lambda p: _objects_npz(p, [[1, 2, 1]], [[3, 4, 1]]),
    "one-repeated-point.svg": lambda p: _write(p, f'{_SVG_OPEN}<path d="M5,5 L5,5"/></svg>'),
    "one-point.zip": lambda p: _zip(p, {_NAME: b"START\n1,2,3\nBREAK\n"}),
    "tiny-offsets.npz": _tiny_offsets_npz,
    "huge-transform.svg": lambda p: _write(
        p, f'{_SVG_OPEN}<g transform="scale(1e19)"><path d="M0,0 L5,5 L9,2"/></g></svg>'
    ),
    "coordinate-1e39.zip": lambda p: _zip(p, {_NAME: b"START\n1,1e39,3\n5,6,7\nBREAK\n"}),
    "single-point.ndjson": lambda p: _ndjson(p, _record(drawing=[[[5], [5]]])),
}

_TINY_RNN = ["--enc-hidden", "8", "--dec-hidden", "8", "--z-size", "4", "--num-mixtures", "2"]
_TINY_SEN = ["--image-size", "16", "--z-size", "4", "--dec-hidden", "8", "--num-mixtures", "2",
             "--cell", "lstm"]  # fmt: skip
_TRAIN = ["--steps", "1", "--batch-size", "1", "--no-progress", "--device", "cpu"]

FILE_COMMANDS = {
    "data info": lambda f, m, o: ["data", "info", f],
    "data render": lambda f, m, o: ["data", "render", f, "--out", f"{o}/grid.png"],
    "data convert": lambda f, m, o: ["data", "convert", f, f"{o}/same.npz"],
    "evaluate": lambda f, m, o: ["evaluate", m["rnn"], "--data", f, "--split", "all"],
    "complete": lambda f, m, o: [
        "complete",
        m["rnn"],
        "--input",
        f,
        "--n",
        "2",
        "--out",
        f"{o}/done.png",
    ],  # fmt: skip
    "embed vectors": lambda f, m, o: ["embed", "vectors", m["sen"], f, "--out", f"{o}/v.npz"],
    "train sketch-rnn": lambda f, m, o: [
        "train",
        "--data",
        f,
        "--out",
        f"{o}/run",
        *_TINY_RNN,
        *_TRAIN,
    ],  # fmt: skip
    "train sketchembednet": lambda f, m, o: [
        "train",
        "sketchembednet",
        "--data",
        f,
        "--out",
        f"{o}/run",
        *_TINY_SEN,
        *_TRAIN,
    ],  # fmt: skip
}
_SLOW_COMMANDS = {"train sketch-rnn", "train sketchembednet"}


@pytest.fixture(scope="module")
def command_models(tmp_path_factory) -> dict[str, str]:
    import torch
    from helpers import save_tiny_model

    from sketchrnn.models import SketchRNN, SketchRNNConfig

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    rnn = SketchRNN(SketchRNNConfig(enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=2,
                                    cell="lstm", max_seq_len=16))  # fmt: skip
    rnn.save_pretrained(folder / "rnn", scale_factor=10.0, classes=["toy"])
    save_tiny_model(folder / "sen")
    huge = folder / "scale-1e308.gen.json"
    huge.write_text(json.dumps(_model(scale_factor=1e308)))
    good = folder / "good.ndjson"
    _ndjson(good, _record())
    return {"rnn": str(folder / "rnn"), "sen": str(folder / "sen"), "huge": str(huge),
            "good": str(good)}  # fmt: skip


def _run_command(argv: list[str], capsys) -> tuple[int, list[str]]:
    from sketchrnn.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # refused while parsing
        code = int(e.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


def _assert_clean_outcome(code: int, err: list[str], named: str, work: Path) -> None:
    assert code in (0, 2), (code, err)
    left = sorted(str(p.relative_to(work)) for p in work.rglob("*"))
    assert not [p for p in left if p.endswith(".part") or ".part" in Path(p).name], left
    if code == 2:
        errors = [line for line in err if "error" in line]
        assert len(errors) == 1 and len(err) == 1, err
        assert named in errors[0], errors[0]
        assert left == [], left  # a refused command writes nothing


_FILE_CASES = [
    pytest.param(name, command, marks=[pytest.mark.slow] if command in _SLOW_COMMANDS else [])
    for name in COMMAND_FILES
    for command in FILE_COMMANDS
]


@pytest.mark.parametrize("name, command", _FILE_CASES)
def test_hostile_files_through_every_command(name, command, command_models, tmp_path, capsys):
    path = COMMAND_FILES[name](tmp_path / name)
    work = tmp_path / "work"
    work.mkdir()
    argv = FILE_COMMANDS[command](str(path), command_models, str(work))
    code, err = _run_command(argv, capsys)
    _assert_clean_outcome(code, err, name, work)


MODEL_COMMANDS = {
    "sample": lambda m, g, o: ["sample", m, "--n", "2", "--out", f"{o}/s.png"],
    "complete": lambda m, g, o: ["complete", m, "--input", g, "--n", "2", "--out", f"{o}/c.png"],
    "evaluate": lambda m, g, o: ["evaluate", m, "--data", g, "--split", "all"],
    "export": lambda m, g, o: ["export", m, f"{o}/e.gen.json"],
    "data sample": lambda m, g, o: ["data", "sample", m, "--out", f"{o}/d.npz", "--per-model", "2"],
}


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_model_whose_scale_factor_is_1e308_is_one_line_in_every_command(
    command, command_models, tmp_path, capsys
):
    argv = MODEL_COMMANDS[command](command_models["huge"], command_models["good"], str(tmp_path))
    code, err = _run_command(argv, capsys)
    assert code == 2
    _assert_clean_outcome(code, err, "scale-1e308.gen.json", tmp_path)
    assert "scale_factor must be a number in [1e-06, 100000]" in err[0]
