"""sketch-rnn ``.npz`` files: keys ``train``/``valid``/``test``, each an object array of stroke-3.

These files hold *object* arrays, which numpy stores as pickles. Unpickling an untrusted file
can run any code, so this reader never calls ``np.load(allow_pickle=True)``: it opens the zip
members itself and unpickles object arrays with :class:`_NumpyOnlyUnpickler`, which admits only
the few globals that rebuild numpy arrays and refuses everything else before it can run. Even
those are stand-ins: the arrays are built here from checked pieces (shape, a whitelisted dtype,
data whose length matches), never by numpy's own ``__setstate__`` on data from the file (which
crashes the process on an object array whose list is shorter than its shape).

Bounded memory: each member is checked against the zip directory before inflating (see
:mod:`sketchrnn.io.archive`; ``SKETCHRNN_NPZ_MAX_MEMBER_BYTES`` caps one member,
``SKETCHRNN_MAX_INFLATE_BYTES`` the file), a numeric ``.npy`` header must declare exactly the
bytes the member holds, and numeric arrays are inflated straight into their final buffer.

Optional extra keys, written by :func:`write_npz` and honoured by :func:`read_npz` (plain numpy
arrays, no pickle; sketch-rnn's own loader ignores them):

* ``scale_factor``: a single number, the data's offset standard deviation.
* ``<split>_labels``: unicode, one class name per sketch, written only when the labels are not
  all the file's stem.
* ``<split>_key_id`` (uint64), ``<split>_countrycode`` (unicode), ``<split>_timestamp``
  (float64 unix seconds), ``<split>_recognized`` (bool): Quick, Draw! metadata, written when
  every sketch has that field (see :data:`sketchrnn.io.sketchset.META_FIELDS`).
"""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path
from typing import IO, Any

import numpy as np

from sketchrnn.io.archive import Archive
from sketchrnn.io.files import MAX_ABS_OFFSET, SketchFileError, atomic_path, env_limit
from sketchrnn.io.sketchset import META_FIELDS, SPLITS, SketchSet
from sketchrnn.strokes import SketchError, validate_stroke3

__all__ = ["read_npz", "write_npz", "read_npy_member"]

_INT16_MAX = np.iinfo(np.int16).max
_INT16_MIN = np.iinfo(np.int16).min
_MAX_DIMS = 32


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``: Python 3 pickles of ``bytes`` at protocol 2 (as in
    ``kanji.rdp100.npz``) call ``_codecs.encode(text, "latin1")``; allow only that codec."""
    if not isinstance(text, str) or not isinstance(encoding, str) or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode called with unexpected arguments")
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"forbidden codec {encoding!r} in _codecs.encode")
    return text.encode("latin1", errors)


class _ForbiddenGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class _Global:
    """What a pickle's GLOBAL opcode gets: a callable stand-in that cannot be changed (BUILD on
    it is refused), so a pickle cannot touch the reader's own functions."""

    __slots__ = ("_call", "_name")

    def __init__(self, name: str, call: Any = None):
        self._name = name
        self._call = call

    def __call__(self, *args: Any) -> Any:
        if self._call is None:
            raise pickle.UnpicklingError(f"{self._name} may not be called")
        return self._call(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"the pickle tries to change {self._name}")

    def __reduce__(self) -> Any:  # pragma: no cover - never pickled
        raise TypeError("not picklable")


# dtypes an array inside a sketch file may have: numbers, booleans, strings, objects.
_DTYPE_SPEC = re.compile(r"^(?:[iu][1248]|f[248]|b1|O8|O4|[US][1-9][0-9]{0,8})$")


class _PendingDtype:
    """A dtype named by the pickle, checked: a whitelisted spec, and a state (byte order etc.)
    equal to what numpy itself pickles for that dtype."""

    __slots__ = ("dtype", "_built")

    def __init__(self, spec: Any, align: Any = False, copy: Any = True):
        if isinstance(spec, bytes):
            spec = spec.decode("latin1")
        if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
            raise pickle.UnpicklingError(f"dtype {spec!r} is not a number or object type")
        self.dtype = np.dtype(spec)
        self._built = False

    def __setstate__(self, state: Any) -> None:
        if self._built:
            raise pickle.UnpicklingError("dtype state set twice")
        self._built = True
        if not isinstance(state, tuple) or len(state) != 8 or state[1] not in ("<", ">", "|"):
            raise pickle.UnpicklingError(f"unexpected dtype state {state!r:.80}")
        dtype = self.dtype.newbyteorder(state[1]) if state[1] != "|" else self.dtype
        if tuple(state[2:]) != tuple(dtype.__reduce__()[2][2:]):
            raise pickle.UnpicklingError(f"unexpected dtype state {state!r:.80}")
        self.dtype = dtype


class _PendingArray:
    """An array the pickle is building: ``_reconstruct`` makes it empty, BUILD fills it from
    a checked state (shape, dtype, order, data)."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise pickle.UnpicklingError("array state set twice")
        self.array = _array_from_state(state)


def _array_from_state(state: Any) -> np.ndarray:
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise pickle.UnpicklingError("unexpected array state")
    if len(state) == 5:
        if state[0] != 1:
            raise pickle.UnpicklingError(f"unexpected array state version {state[0]!r:.20}")
        state = state[1:]
    shape, dtype, fortran, data = state
    if (
        not isinstance(shape, tuple)
        or len(shape) > _MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise pickle.UnpicklingError(f"array shape {shape!r:.80} is not a tuple of sizes")
    if not isinstance(dtype, _PendingDtype):
        raise pickle.UnpicklingError("array dtype is not a numpy dtype")
    if fortran not in (0, 1):  # also True / False
        raise pickle.UnpicklingError("array order flag is not a boolean")
    order = "F" if fortran else "C"
    count = math.prod(shape)
    dt = dtype.dtype
    if dt.hasobject:
        if not isinstance(data, list) or len(data) != count:
            got = f"{len(data)} items" if isinstance(data, list) else type(data).__name__
            raise pickle.UnpicklingError(f"object array of {count} items holds {got}")
        out = np.empty(count, dtype=object)
        for i, item in enumerate(data):
            if isinstance(item, _PendingArray):
                if item.array is None:
                    raise pickle.UnpicklingError("an inner array has no data")
                item = item.array
            out[i] = item
        return out.reshape(shape, order=order)  # type: ignore[call-overload]
    if isinstance(data, str):  # Python 2 pickles read with encoding="latin1"
        data = data.encode("latin1")
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError(f"array data is {type(data).__name__}, not bytes")
    if len(data) != count * dt.itemsize:
        raise pickle.UnpicklingError(
            f"array data holds {len(data)} bytes, its shape {shape} of {dt} needs "
            f"{count * dt.itemsize}"
        )
    flat = np.frombuffer(data, dtype=dt, count=count)
    return flat.reshape(shape, order=order).copy(order="K")  # type: ignore[call-overload]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (object arrays of numeric arrays included) and nothing else.

    At most ``max_arrays`` arrays may be built (a pickle of many tiny arrays would otherwise
    take far more memory than its bytes)."""

    def __init__(self, file: IO[bytes], max_arrays: int):
        super().__init__(file, encoding="latin1")
        self._arrays_left = max_arrays
        self._globals = {
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): _Global("numpy.dtype", _PendingDtype),
            ("numpy.core.multiarray", "_reconstruct"): _Global("_reconstruct", self._reconstruct),
            ("numpy._core.multiarray", "_reconstruct"): _Global("_reconstruct", self._reconstruct),
            ("_codecs", "encode"): _Global("_codecs.encode", _latin1_encode),
        }

    def _reconstruct(self, subtype: Any, shape: Any, code: Any) -> _PendingArray:
        # numpy pickles every array as _reconstruct(ndarray, (0,), b"b") and then BUILD.
        if subtype is not _NDARRAY or shape != (0,) or code not in (b"b", "b"):
            raise pickle.UnpicklingError("_reconstruct called with unexpected arguments")
        self._arrays_left -= 1
        if self._arrays_left < 0:
            raise pickle.UnpicklingError("far more arrays than the member's size allows")
        return _PendingArray()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


_NDARRAY = _Global("numpy.ndarray")


class _Counting:
    """Read-through wrapper that counts the bytes read (to know where a .npy header ends)."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.count += len(data)
        return data


def _read_header(path: Path, key: str, stream: IO[bytes]) -> tuple[tuple, bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header_bytes)`` of a .npy stream."""
    counting = _Counting(stream)
    try:
        version = np.lib.format.read_magic(counting)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(counting)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(counting)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except SketchFileError:
        raise
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError, OverflowError) as e:
        raise SketchFileError(
            path, f"member {key!r} is not a valid .npy array ({type(e).__name__}: {e})"
        ) from None
    shape, fortran_order, dtype = header
    return tuple(shape), bool(fortran_order), dtype, counting.count


def _read_into(stream: IO[bytes], buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream``; return how many bytes came."""
    done = 0
    while done < len(buffer):
        chunk = stream.read(min(len(buffer) - done, 1 << 22))
        if not chunk:
            break
        buffer[done : done + len(chunk)] = chunk
        done += len(chunk)
    return done


def read_npy_member(
    archive: Archive, name: str, *, allow_objects: bool = True, kinds: str = "biufU"
) -> np.ndarray:
    """One ``.npy`` member of an npz as an array, within the archive's limits.

    Numeric arrays (dtype kinds in ``kinds``) must hold exactly the bytes their header
    declares, and are inflated straight into their buffer; object arrays (only when
    ``allow_objects``, and only 1-D) are unpickled by :class:`_NumpyOnlyUnpickler`.
    """
    path = archive.path
    key = name.removesuffix(".npy")
    info = archive.getinfo(name)
    with archive.open(
        info,
        max_bytes=env_limit("SKETCHRNN_NPZ_MAX_MEMBER_BYTES"),
        limit_name="SKETCHRNN_NPZ_MAX_MEMBER_BYTES",
    ) as stream:
        shape, fortran_order, dtype, header_bytes = _read_header(path, key, stream)
        if not dtype.hasobject:
            if dtype.kind not in kinds or dtype.itemsize == 0 or dtype.names is not None:
                raise SketchFileError(path, f"member {key!r} has unsupported dtype {dtype}")
            count = math.prod(shape)
            declared = count * dtype.itemsize
            present = info.file_size - header_bytes
            if declared != present:
                raise SketchFileError(
                    path,
                    f"member {key!r}: its header declares shape {shape} of {dtype} "
                    f"({declared:,} bytes), the member holds {present:,} bytes of data",
                )
            array = np.empty(count, dtype=dtype)
            got = _read_into(stream, memoryview(array).cast("B"))  # type: ignore[arg-type]
            if got != declared or stream.read(1):
                raise SketchFileError(path, f"member {key!r} is truncated")
            if fortran_order:
                return array.reshape(shape[::-1]).transpose()
            return array.reshape(shape)
        if not allow_objects:
            raise SketchFileError(
                path, f"member {key!r} is an object array (pickle); only plain arrays are read"
            )
        if dtype != np.dtype(object) or len(shape) != 1:
            raise SketchFileError(
                path, f"member {key!r}: expected a 1-D object array, got {dtype} of shape {shape}"
            )
        max_arrays = info.file_size // 32 + 16
        try:
            result = _NumpyOnlyUnpickler(stream, max_arrays).load()
            trailing = stream.read(1)  # and reading to the end checks the CRC
        except _ForbiddenGlobal as e:
            raise SketchFileError(
                path,
                f"member {key!r} refers to the forbidden global {e.qualified_name!r}; "
                "only numpy arrays may be stored (the file was not trusted and nothing was run)",
            ) from None
        except SketchFileError:
            raise
        except MemoryError:
            raise SketchFileError(
                path, f"member {key!r} holds a damaged object array (it asks for too much memory)"
            ) from None
        except Exception as e:  # any failure inside a hostile or damaged pickle
            raise SketchFileError(
                path, f"member {key!r} holds a damaged object array ({type(e).__name__}: {e})"
            ) from None
        if trailing:
            raise SketchFileError(path, f"member {key!r} has data after its object array")
    loaded: Any = result.array if isinstance(result, _PendingArray) else result
    array = loaded
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise SketchFileError(
            path, f"member {key!r}: the pickle does not hold an array of shape {shape}"
        )
    return array


def _sketches_of(path: Path, split: str, array: np.ndarray) -> list[np.ndarray]:
    """Check a split's array and return its sketches as float32 ``(n, 3)`` arrays.

    Accepts an object array of numeric arrays, or a numeric ``(count, n, 3)`` array (what
    numpy makes of sketches that happen to share one length).
    """
    if array.dtype != object:
        if array.ndim != 3 or array.dtype.kind not in "iuf":
            raise SketchFileError(
                path,
                f"{split!r} must be a sequence of (n, 3) stroke-3 arrays, "
                f"got a {array.dtype} array of shape {array.shape}",
            )
        # One block of equal-length sketches: checked at once, then split into views.
        with np.errstate(over="ignore", invalid="ignore"):
            block = array.astype(np.float32)
        if len(block):
            _check_sketch(path, f"{split}[0..{len(block) - 1}]", block.reshape(-1, 3))
        return list(block)
    sketches = []
    for i, item in enumerate(array):
        where = f"{split}[{i}]"
        if (
            not isinstance(item, np.ndarray)
            or item.dtype == bool
            or not (np.issubdtype(item.dtype, np.integer) or np.issubdtype(item.dtype, np.floating))
        ):
            kind = f"{item.dtype} array" if isinstance(item, np.ndarray) else type(item).__name__
            raise SketchFileError(path, f"{where}: expected a numeric stroke-3 array, got {kind}")
        sketches.append(_check_sketch(path, where, item))
    return sketches


def _check_sketch(path: Path, where: str, item: np.ndarray) -> np.ndarray:
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is refused
            sketch = validate_stroke3(item, where=where)
    except SketchError as e:
        raise SketchFileError(path, str(e)) from None
    peak = float(np.abs(sketch[:, 0:2]).max())
    if peak > MAX_ABS_OFFSET:
        raise SketchFileError(
            path, f"{where}: offset {peak:g} is beyond +-{MAX_ABS_OFFSET:g} (damaged data?)"
        )
    return sketch


def _scale_factor_of(path: Path, array: np.ndarray) -> float:
    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
        raise SketchFileError(
            path, f"'scale_factor' must be a single number, got {array.dtype} {array.shape}"
        )
    value = float(array.reshape(()))
    if not np.isfinite(value) or value <= 0:
        raise SketchFileError(path, f"'scale_factor' must be positive and finite, got {value}")
    return value


def _column(path: Path, name: str, array: np.ndarray, count: int, kinds: str) -> np.ndarray:
    if array.dtype.kind not in kinds or array.shape != (count,):
        raise SketchFileError(
            path,
            f"{name!r} must hold {count} values (one per sketch) of kind {kinds!r}, "
            f"got a {array.dtype} array of shape {array.shape}",
        )
    return array


def _meta_of(path: Path, split: str, field: str, array: np.ndarray, count: int) -> list[Any]:
    name = f"{split}_{field}"
    if field == "key_id":
        return [int(v) for v in _column(path, name, array, count, "u")]
    if field == "countrycode":
        return [str(v) for v in _column(path, name, array, count, "U")]
    if field == "recognized":
        return [bool(v) for v in _column(path, name, array, count, "b")]
    values = _column(path, name, array, count, "f")
    if not (np.isfinite(values).all() and (values >= 0).all()):
        raise SketchFileError(path, f"{name!r} must hold non-negative finite unix seconds")
    return [int(v) if float(v).is_integer() else float(v) for v in values]


def read_npz(path: str | os.PathLike, label: str | None = None) -> SketchSet:
    """Read a sketch-rnn ``.npz`` file without running any code stored in it.

    Each sketch becomes a float32 stroke-3 ``(n, 3)`` array; ``splits`` come from the keys
    (any of ``train``, ``valid``, ``test`` may be absent, but not all). Labels are the file's
    ``<split>_labels`` keys when present, else ``label``, else the file stem (and the set's
    ``notes`` say so); Quick, Draw! metadata keys fill the set's ``metadata``.

    Raises :class:`SketchFileError` (naming the file, and the split and index of a bad sketch)
    for a missing, truncated or non-zip file, no split keys, members that are not sequences of
    numeric ``(n, 3)`` arrays, NaN/inf values, pickles that name anything but numpy arrays,
    headers that declare more data than the member holds, and members beyond the size limits.
    """
    path = Path(path)
    if not path.is_file():
        raise SketchFileError(path, "no such file")
    with Archive(path, "a valid .npz (zip) file") as archive:
        members = {n.removesuffix(".npy"): n for n in archive.namelist() if n.endswith(".npy")}
        present = [s for s in SPLITS if s in members]
        if not present:
            raise SketchFileError(
                path, f"no 'train', 'valid' or 'test' array; keys found: {sorted(members)[:20]}"
            )
        default_label = path.stem if label is None else label
        out = SketchSet()
        float64 = 0
        for split in present:
            array = read_npy_member(archive, members[split])
            sketches = _sketches_of(path, split, array)
            float64 += sum(
                1
                for item in (array if array.dtype == object else ())
                if item.dtype == np.float64
                and not np.array_equal(item.astype(np.float32).astype(np.float64), item)
            )
            if f"{split}_labels" in members:
                column = read_npy_member(archive, members[f"{split}_labels"], kinds="U")
                column = _column(path, f"{split}_labels", column, len(sketches), "U")
                labels = [str(s) for s in column]
            else:
                labels = [default_label] * len(sketches)
            meta: list[dict[str, Any]] = [{} for _ in sketches]
            for field in META_FIELDS:
                if f"{split}_{field}" in members:
                    column = read_npy_member(archive, members[f"{split}_{field}"])
                    for m, v in zip(
                        meta, _meta_of(path, split, field, column, len(sketches)), strict=True
                    ):
                        m[field] = v
            out.extend(SketchSet(sketches, labels, [split] * len(sketches), metadata=meta))
        if "scale_factor" in members:
            out.scale_factor = _scale_factor_of(
                path, read_npy_member(archive, members["scale_factor"], kinds="iuf")
            )
    if not any(f"{s}_labels" in members for s in present) and label is None:
        out.notes.append(
            f"{path}: no class labels in the file: sketches labelled {path.stem!r} "
            "after the file name"
        )
    if float64:
        out.notes.append(
            f"{path}: {float64} sketches hold float64 offsets that float32 cannot hold exactly: "
            "rounded to float32"
        )
    return out


def write_npz(path: str | os.PathLike, sketches: SketchSet) -> None:
    """Write ``sketches`` as a sketch-rnn ``.npz`` that :func:`read_npz` and plain numpy read.

    Offsets are stored as int16 when every value is an integer within int16's range (the
    layout of the published files), else as float32. Sketches without a split (``""``) go to
    ``train``. ``scale_factor`` is stored when set; labels are stored (as ``<split>_labels``)
    unless they all equal the file stem, so that reading the file back gives the same set;
    a metadata field (``key_id``, ...) is stored when every sketch has it. The file is written
    atomically: on any error nothing appears under ``path``.
    """
    path = Path(path)
    by_split: dict[str, list[int]] = {s: [] for s in SPLITS}
    checked = []
    for i, (stroke, split) in enumerate(zip(sketches.strokes, sketches.splits, strict=True)):
        key = split or "train"
        if key not in by_split:
            raise SketchFileError(path, f"sketch {i} has unknown split {split!r}")
        try:
            sketch = validate_stroke3(stroke, where=f"sketch {i}")
        except SketchError as e:
            raise SketchFileError(path, f"cannot write: {e}") from None
        peak = float(np.abs(sketch[:, 0:2]).max())
        if peak > MAX_ABS_OFFSET:  # read_npz would refuse it
            raise SketchFileError(
                path, f"cannot write: sketch {i}: offset {peak:g} is beyond +-{MAX_ABS_OFFSET:g}"
            )
        checked.append(sketch)
        by_split[key].append(i)

    integral = all(
        np.array_equal(s, np.round(s)) and s.min() >= _INT16_MIN and s.max() <= _INT16_MAX
        for s in checked
    )
    dtype = np.int16 if integral else np.float32
    payload: dict[str, np.ndarray] = {}
    write_labels = any(lab != path.stem for lab in sketches.labels)
    metadata = sketches.metadata
    fields = [f for f in META_FIELDS if metadata and all(f in m for m in metadata)]
    for split, idx in by_split.items():
        # Filled one by one: np.array(list_of_arrays) would make a 3-D numeric array when
        # all sketches happen to have the same length.
        column = np.empty(len(idx), dtype=object)
        for j, i in enumerate(idx):
            column[j] = checked[i].astype(dtype)
        payload[split] = column
        if write_labels:
            payload[f"{split}_labels"] = _strings(path, "label", [sketches.labels[i] for i in idx])
        for field in fields:
            values = [metadata[i][field] for i in idx]
            payload[f"{split}_{field}"] = _meta_column(path, field, values)
    if sketches.scale_factor is not None:
        payload["scale_factor"] = np.array(sketches.scale_factor, dtype=np.float64)

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **payload)  # type: ignore[arg-type]


def _strings(path: Path, what: str, values: list[str]) -> np.ndarray:
    # numpy's fixed-width strings drop trailing NUL characters: refuse what they cannot hold.
    for v in values:
        if not isinstance(v, str) or v.endswith("\0"):
            raise SketchFileError(
                path, f"cannot write {what} {v!r:.40}: npz strings cannot end in NUL"
            )
    return np.array(values, dtype=str).reshape(len(values))


def _meta_column(path: Path, field: str, values: list[Any]) -> np.ndarray:
    if field == "countrycode":
        return _strings(path, "countrycode", values)
    try:
        if field == "key_id":
            return np.array(values, dtype=np.uint64).reshape(len(values))
        if field == "recognized":
            return np.array(values, dtype=bool).reshape(len(values))
        return np.array(values, dtype=np.float64).reshape(len(values))
    except (OverflowError, ValueError, TypeError) as e:
        raise SketchFileError(path, f"cannot write {field}: {e}") from None
