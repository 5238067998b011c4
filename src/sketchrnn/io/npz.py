"""sketch-rnn ``.npz`` files: keys ``train``/``valid``/``test``, each an object array of stroke-3.

These files hold *object* arrays, which numpy stores as pickles. Unpickling an untrusted file
can run any code, so this reader never calls ``np.load(allow_pickle=True)``: it reads each
member with :func:`sketchrnn.io.npy.read_npy_member`, which admits only what rebuilds numpy
arrays, within bounded memory.

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

import os
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn.io.archive import Archive
from sketchrnn.io.files import MAX_ABS_OFFSET, SketchFileError, atomic_path
from sketchrnn.io.npy import read_npy_member
from sketchrnn.io.sketchset import META_FIELDS, SPLITS, SketchSet
from sketchrnn.strokes import SketchError, validate_stroke3

__all__ = ["read_npz", "write_npz"]

_INT16_MAX = np.iinfo(np.int16).max
_INT16_MIN = np.iinfo(np.int16).min


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
