"""sketch-rnn ``.npz`` files: keys ``train``/``valid``/``test``, each an object array of stroke-3.

These files hold *object* arrays, which numpy stores as pickles. Unpickling an untrusted file
can run any code, so this reader never calls ``np.load(allow_pickle=True)``: it opens the zip
members itself and unpickles object arrays with :class:`_NumpyOnlyUnpickler`, which admits only
the few globals that rebuild numpy arrays and refuses everything else before it can run.

Optional extra keys, written by :func:`write_npz` and honoured by :func:`read_npz`:

* ``scale_factor``: a single number, the data's offset standard deviation.
* ``train_labels``/``valid_labels``/``test_labels``: unicode arrays (no pickle) with one class
  name per sketch, written only when the labels are not all the file's stem.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn.io.files import SketchFileError, atomic_path
from sketchrnn.io.sketchset import SPLITS, SketchSet
from sketchrnn.strokes import SketchError, validate_stroke3

__all__ = ["read_npz", "write_npz"]

# A member may decompress to at most this many bytes (the zip's declared size, which zipfile
# also enforces while reading), so a small hostile file cannot exhaust memory. The largest
# Quick, Draw! sketch-rnn file (a class of 75K drawings) is a few hundred MB.
MAX_MEMBER_BYTES = int(os.environ.get("SKETCHRNN_NPZ_MAX_MEMBER_BYTES", 4 << 30))

_INT16_MAX = np.iinfo(np.int16).max
_INT16_MIN = np.iinfo(np.int16).min


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``: Python 3 pickles of ``bytes`` at protocol 2 (as in
    ``kanji.rdp100.npz``) call ``_codecs.encode(text, "latin1")``; allow only that codec."""
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"forbidden codec {encoding!r} in _codecs.encode")
    return text.encode("latin1", errors)


# numpy's array-rebuilding function, taken from what ndarray pickles itself with, because its
# module moved (numpy.core -> numpy._core) and importing it by either name warns on one version.
_reconstruct = np.zeros(0).__reduce__()[0]

# (module, name) -> the object the unpickler may hand out: exactly what ``np.save`` (pickle
# protocol 2 or 3) writes for an object array of numeric arrays, under numpy 1 and numpy 2.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("_codecs", "encode"): _latin1_encode,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (object arrays of numeric arrays included) and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _read_member(path: Path, zf: zipfile.ZipFile, member: str) -> np.ndarray:
    """One ``.npy`` member of the zip as an array, unpickling object arrays safely."""
    key = member.removesuffix(".npy")
    size = zf.getinfo(member).file_size
    if size > MAX_MEMBER_BYTES:
        raise SketchFileError(
            path,
            f"member {key!r} would decompress to {size / 2**20:,.0f} MiB, over the limit of "
            f"{MAX_MEMBER_BYTES / 2**20:,.0f} MiB (SKETCHRNN_NPZ_MAX_MEMBER_BYTES raises it)",
        )
    try:
        data = zf.read(member)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as e:
        raise SketchFileError(path, f"member {key!r} is damaged or truncated ({e})") from None
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as e:
        raise SketchFileError(path, f"member {key!r} is not a valid .npy array ({e})") from None
    if not dtype.hasobject:
        stream.seek(0)
        try:
            return np.lib.format.read_array(stream, allow_pickle=False)
        except ValueError as e:
            raise SketchFileError(path, f"member {key!r} is damaged or truncated ({e})") from None
    if dtype != np.dtype(object) or len(shape) != 1:
        raise SketchFileError(
            path, f"member {key!r}: expected a 1-D object array, got {dtype} of shape {shape}"
        )
    try:
        array = _NumpyOnlyUnpickler(stream, encoding="latin1").load()
    except _ForbiddenGlobal as e:
        raise SketchFileError(
            path,
            f"member {key!r} refers to the forbidden global {e.qualified_name!r}; "
            "only numpy arrays may be stored (the file was not trusted and nothing was run)",
        ) from None
    except Exception as e:  # any failure inside a hostile or damaged pickle
        raise SketchFileError(
            path, f"member {key!r} holds a damaged object array ({type(e).__name__}: {e})"
        ) from None
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
    if array.dtype != object and array.ndim != 3:
        raise SketchFileError(
            path,
            f"{split!r} must be a sequence of (n, 3) stroke-3 arrays, "
            f"got a {array.dtype} array of shape {array.shape}",
        )
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
        try:
            sketches.append(validate_stroke3(item, where=where))
        except SketchError as e:
            raise SketchFileError(path, str(e)) from None
    return sketches


def _scale_factor_of(path: Path, array: np.ndarray) -> float:
    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
        raise SketchFileError(path, f"'scale_factor' must be a single number, got {array!r}")
    value = float(array.reshape(()))
    if not np.isfinite(value) or value <= 0:
        raise SketchFileError(path, f"'scale_factor' must be positive and finite, got {value}")
    return value


def _labels_of(path: Path, split: str, array: np.ndarray, count: int) -> list[str]:
    if array.dtype.kind != "U" or array.shape != (count,):
        raise SketchFileError(
            path,
            f"'{split}_labels' must be {count} strings (one per sketch), "
            f"got a {array.dtype} array of shape {array.shape}",
        )
    return [str(s) for s in array]


def read_npz(path: str | os.PathLike, label: str | None = None) -> SketchSet:
    """Read a sketch-rnn ``.npz`` file without running any code stored in it.

    Each sketch becomes a float32 stroke-3 ``(n, 3)`` array; ``splits`` come from the keys
    (any of ``train``, ``valid``, ``test`` may be absent, but not all). Labels are the file's
    ``<split>_labels`` keys when present, else ``label``, else the file stem.

    Raises :class:`SketchFileError` (naming the file, and the split and index of a bad sketch)
    for a missing, truncated or non-zip file, no split keys, members that are not sequences of
    numeric ``(n, 3)`` arrays, NaN/inf values, and pickles that name anything but numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise SketchFileError(path, "no such file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise SketchFileError(path, f"not a valid .npz (zip) file ({e})") from None
    with zf:
        members = {n.removesuffix(".npy"): n for n in zf.namelist() if n.endswith(".npy")}
        present = [s for s in SPLITS if s in members]
        if not present:
            raise SketchFileError(
                path, f"no 'train', 'valid' or 'test' array; keys found: {sorted(members)}"
            )
        default_label = path.stem if label is None else label
        out = SketchSet()
        for split in present:
            sketches = _sketches_of(path, split, _read_member(path, zf, members[split]))
            if f"{split}_labels" in members:
                array = _read_member(path, zf, members[f"{split}_labels"])
                labels = _labels_of(path, split, array, len(sketches))
            else:
                labels = [default_label] * len(sketches)
            out.extend(SketchSet(sketches, labels, [split] * len(sketches)))
        if "scale_factor" in members:
            out.scale_factor = _scale_factor_of(
                path, _read_member(path, zf, members["scale_factor"])
            )
    return out


def write_npz(path: str | os.PathLike, sketches: SketchSet) -> None:
    """Write ``sketches`` as a sketch-rnn ``.npz`` that :func:`read_npz` and plain numpy read.

    Offsets are stored as int16 when every value is an integer within int16's range (the
    layout of the published files), else as float32. Sketches without a split (``""``) go to
    ``train``. ``scale_factor`` is stored when set; labels are stored (as ``<split>_labels``)
    unless they all equal the file stem, so that reading the file back gives the same set.
    The file is written atomically: on any error nothing appears under ``path``.
    """
    path = Path(path)
    by_split: dict[str, list[int]] = {s: [] for s in SPLITS}
    checked = []
    for i, (stroke, split) in enumerate(zip(sketches.strokes, sketches.splits, strict=True)):
        key = split or "train"
        if key not in by_split:
            raise SketchFileError(path, f"sketch {i} has unknown split {split!r}")
        try:
            checked.append(validate_stroke3(stroke, where=f"sketch {i}"))
        except SketchError as e:
            raise SketchFileError(path, f"cannot write: {e}") from None
        by_split[key].append(i)

    integral = all(
        np.array_equal(s, np.round(s)) and s.min() >= _INT16_MIN and s.max() <= _INT16_MAX
        for s in checked
    )
    dtype = np.int16 if integral else np.float32
    payload: dict[str, np.ndarray] = {}
    write_labels = any(lab != path.stem for lab in sketches.labels)
    for split, idx in by_split.items():
        # Filled one by one: np.array(list_of_arrays) would make a 3-D numeric array when
        # all sketches happen to have the same length.
        column = np.empty(len(idx), dtype=object)
        for j, i in enumerate(idx):
            column[j] = checked[i].astype(dtype)
        payload[split] = column
        if write_labels:
            payload[f"{split}_labels"] = np.array([sketches.labels[i] for i in idx], dtype=str)
    if sketches.scale_factor is not None:
        payload["scale_factor"] = np.array(sketches.scale_factor, dtype=np.float64)

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **payload)
