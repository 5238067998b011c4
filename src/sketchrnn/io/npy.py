"""Reading one ``.npy`` member of an ``.npz`` zip without numpy's unpickler (what
:mod:`sketchrnn.io.npz` and the Omniglot image files are read with).

Object arrays are stored as pickles, and unpickling an untrusted file can run any code, so
nothing here calls ``np.load(allow_pickle=True)``: object arrays are unpickled with
:class:`_NumpyOnlyUnpickler`, which admits only the few globals that rebuild numpy arrays and
refuses everything else before it can run. Even those are stand-ins: the arrays are built
here from checked pieces (shape, a whitelisted dtype, data whose length matches), never by
numpy's own ``__setstate__`` on data from the file (which crashes the process on an object
array whose list is shorter than its shape).

Bounded memory: each member is checked against the zip directory before inflating (see
:mod:`sketchrnn.io.archive`; ``SKETCHRNN_NPZ_MAX_MEMBER_BYTES`` caps one member,
``SKETCHRNN_MAX_INFLATE_BYTES`` the file), a numeric ``.npy`` header must declare exactly the
bytes the member holds, and numeric arrays are inflated straight into their final buffer.
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import IO, Any

import numpy as np

from sketchrnn.io.archive import Archive
from sketchrnn.io.files import SketchFileError, env_limit

__all__ = ["read_npy_member"]

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
