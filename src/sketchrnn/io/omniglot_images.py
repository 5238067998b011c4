"""Omniglot character images and the two few-shot splits built on them.

The data folder (``omniglot/`` under the shared data) holds:

- ``images_background.npz`` and ``images_evaluation.npz``: ``images`` bool ``(C, 20, 105, 105)``
  and ``labels`` int ``(C, 20)``. Row ``k`` of the background file is character id ``k + 1``;
  row ``k`` of the evaluation file is character id ``965 + k`` (ids continue after the 964
  background characters). In the raw arrays ``True`` is the white paper and ``False`` the ink.
- ``alphabets.tsv``: ``set first_id last_id alphabet``, the 50 alphabets with their id ranges.
- ``vinyals_splits/{train,val,trainval,test}.txt``: lines ``alphabet/characterNN/rotDEG``.

``characterNN`` is the 1-based index of a character within its alphabet, so its id is
``first_id + NN - 1``. This was checked against the original Omniglot PNG files (named
``IIII_DD.png``, ``IIII`` the character id, ``DD`` the drawer): all 5840 images of the 10
alphabets in ``images_background_small{1,2}.zip`` sit at ``images[id - 1, DD - 1]``.

Images come back as float32 with ink = 1 and paper = 0, resized with Pillow (box filter:
each output pixel is the fraction of ink it covers) to ``image_size`` (28 by default).

This module reads only numpy arrays (``allow_pickle=False``) and text: nothing is unpickled.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from sketchrnn.io.archive import Archive
from sketchrnn.io.files import SketchFileError
from sketchrnn.io.npy import read_npy_member

__all__ = [
    "OMNIGLOT_RAW_SIZE",
    "OMNIGLOT_DRAWERS",
    "OmniglotAlphabet",
    "OmniglotSplit",
    "read_alphabets",
    "read_split_file",
    "load_character_images",
    "load_omniglot_split",
    "resize_ink_images",
]

OMNIGLOT_RAW_SIZE = 105
OMNIGLOT_DRAWERS = 20
VINYALS_SPLITS = ("train", "val", "trainval", "test")
SplitName = Literal["train", "val", "trainval", "test", "lake"]
_SUBSET_FILES = {"background": "images_background.npz", "evaluation": "images_evaluation.npz"}
_ALLOWED_ROTATIONS = (0, 90, 180, 270)
_MAX_MEMBER_BYTES = 16 << 20  # a 105x105 PNG or a class_labels.txt is a few hundred bytes


@dataclass(frozen=True)
class OmniglotAlphabet:
    """One row of ``alphabets.tsv``: character ids ``first_id..last_id`` (inclusive)."""

    name: str
    subset: str  # "background" or "evaluation"
    first_id: int
    last_id: int

    @property
    def n_characters(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass
class OmniglotSplit:
    """The classes of a few-shot split.

    ``images[label]`` is float32 ``(20, image_size, image_size)``, ink = 1, one image per
    drawer; ``alphabet_of[label]`` names the alphabet the class comes from (the grouping the
    Lake split samples episodes within). Labels keep the split file's order.
    """

    images: dict[str, np.ndarray]
    alphabet_of: dict[str, str]

    def __len__(self) -> int:
        return len(self.images)


def read_alphabets(path: str | os.PathLike) -> list[OmniglotAlphabet]:
    """Read ``alphabets.tsv`` (header ``set first_id last_id alphabet``), in file order."""
    path = Path(path)
    lines = _read_text_lines(path)
    if not lines or lines[0].split("\t") != ["set", "first_id", "last_id", "alphabet"]:
        raise SketchFileError(path, "expected the header 'set first_id last_id alphabet'", 1)
    alphabets = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise SketchFileError(
                path, f"expected 4 tab-separated fields, got {len(fields)}", line_no
            )
        subset, first, last, name = fields
        if subset not in _SUBSET_FILES:
            raise SketchFileError(
                path, f"set must be background or evaluation, not {subset!r}", line_no
            )
        try:
            first_id, last_id = int(first), int(last)
        except ValueError:
            raise SketchFileError(
                path, f"ids must be integers: {first!r}, {last!r}", line_no
            ) from None
        if not 1 <= first_id <= last_id:
            raise SketchFileError(path, f"bad id range {first_id}..{last_id}", line_no)
        alphabets.append(OmniglotAlphabet(name, subset, first_id, last_id))
    if not alphabets:
        raise SketchFileError(path, "no alphabets listed")
    return alphabets


def read_split_file(path: str | os.PathLike) -> list[tuple[str, int, int]]:
    """Read a Vinyals split file: ``(alphabet, character_index, degrees)`` per line, in order.

    ``character_index`` is 1-based within the alphabet; ``degrees`` is 0, 90, 180 or 270.
    """
    path = Path(path)
    entries = []
    for line_no, line in enumerate(_read_text_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.strip().split("/")
        if (
            len(parts) != 3
            or not parts[1].startswith("character")
            or not parts[1][len("character") :].isdigit()
            or not parts[2].startswith("rot")
            or not parts[2][len("rot") :].isdigit()
        ):
            raise SketchFileError(
                path, f"expected 'alphabet/characterNN/rotDEG', got {line.strip()!r}", line_no
            )
        degrees = int(parts[2][len("rot") :])
        if degrees not in _ALLOWED_ROTATIONS:
            raise SketchFileError(
                path, f"rotation must be 0, 90, 180 or 270, not {degrees}", line_no
            )
        entries.append((parts[0], int(parts[1][len("character") :]), degrees))
    if not entries:
        raise SketchFileError(path, "the split file lists no characters")
    return entries


def load_character_images(
    path: str | os.PathLike, expected_characters: int | None = None
) -> np.ndarray:
    """The raw ``images`` array of an Omniglot npz: bool ``(C, 20, 105, 105)``, True = paper.

    Nothing is unpickled, and the archive is read within the limits of
    :mod:`sketchrnn.io.archive`; a file that is not such an npz raises SketchFileError.
    """
    path = Path(path)
    if not path.is_file():
        raise SketchFileError(path, "file not found")
    with Archive(path, "a readable numpy .npz file") as archive:
        names = archive.namelist()
        if "images.npy" not in names:
            found = sorted(n.removesuffix(".npy") for n in names)[:20]
            raise SketchFileError(path, f"no 'images' array (found {found})")
        # Never unpickled: an object array is refused, and the header must match the data.
        images = read_npy_member(archive, "images.npy", allow_objects=False, kinds="b")
    expected = (OMNIGLOT_DRAWERS, OMNIGLOT_RAW_SIZE, OMNIGLOT_RAW_SIZE)
    if images.ndim != 4 or images.shape[1:] != expected:
        raise SketchFileError(
            path, f"'images' must have shape (C, 20, 105, 105), got {images.shape}"
        )
    if images.dtype != np.bool_:
        raise SketchFileError(path, f"'images' must be bool, got {images.dtype}")
    if expected_characters is not None and images.shape[0] != expected_characters:
        raise SketchFileError(
            path, f"expected {expected_characters} characters, found {images.shape[0]}"
        )
    return images


def resize_ink_images(raw: np.ndarray, image_size: int = 28) -> np.ndarray:
    """Raw bool images ``(..., 105, 105)`` (True = paper) to float32 ink images.

    Returns ``(..., image_size, image_size)`` with ink = 1, paper = 0. The box filter makes each
    output pixel the fraction of its area covered by ink, so thin strokes survive downscaling.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    ink = ~np.asarray(raw, dtype=bool)
    flat = ink.reshape(-1, *ink.shape[-2:])
    if ink.shape[-2:] == (image_size, image_size):
        return ink.astype(np.float32)
    out = np.empty((flat.shape[0], image_size, image_size), dtype=np.float32)
    for i, image in enumerate(flat):
        pil = Image.fromarray(image.astype(np.float32), mode="F")
        out[i] = np.asarray(pil.resize((image_size, image_size), Image.Resampling.BOX))
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(*ink.shape[:-2], image_size, image_size)


def load_omniglot_split(
    root: str | os.PathLike, split: SplitName = "test", image_size: int = 28
) -> OmniglotSplit:
    """Load the classes of a few-shot split from the Omniglot folder ``root``.

    Vinyals splits (``"train"``, ``"val"``, ``"trainval"``, ``"test"``; Vinyals et al. 2016):
    every line ``alphabet/characterNN/rotDEG`` of the split file is its own class, the 20
    drawings of that character rotated counter-clockwise by DEG degrees (``np.rot90``). As in
    Vinyals et al., the four rotations of a character are four separate classes (a 5-way
    episode may hold one character at 0 and at 90 degrees). Labels are the file's lines.

    Lake split (``"lake"``; Lake et al. 2015, 2019): the 659 characters of the 20 evaluation
    alphabets, unrotated, labelled ``alphabet/characterNN``. Few-shot episodes on it are drawn
    within one alphabet: pass ``split.alphabet_of`` as the class groups to the episode sampler,
    which picks an alphabet per episode and all its classes from that alphabet. (The original
    runs of Lake et al. also fix which drawers give support and query images; here any of the
    20 drawers may serve either role.)
    """
    root = Path(root)
    if split not in (*VINYALS_SPLITS, "lake"):
        raise ValueError(f"unknown split {split!r}: use one of {(*VINYALS_SPLITS, 'lake')}")
    alphabets_path = root / "alphabets.tsv"
    alphabets = {a.name: a for a in read_alphabets(alphabets_path)}

    if split == "lake":
        wanted = [
            (a.name, index, 0)
            for a in alphabets.values()
            if a.subset == "evaluation"
            for index in range(1, a.n_characters + 1)
        ]
        split_path = alphabets_path
    else:
        split_path = root / "vinyals_splits" / f"{split}.txt"
        wanted = read_split_file(split_path)

    # Resolve every line to a character id before touching the (large) image files.
    resolved = []
    for line_no, (alphabet, index, degrees) in enumerate(wanted, start=1):
        if alphabet not in alphabets:
            raise SketchFileError(
                split_path, f"alphabet {alphabet!r} is not in alphabets.tsv", line_no
            )
        info = alphabets[alphabet]
        if not 1 <= index <= info.n_characters:
            raise SketchFileError(
                split_path,
                f"{alphabet} has {info.n_characters} characters, no character{index:02d}",
                line_no,
            )
        resolved.append((alphabet, index, degrees, info.subset, info.first_id + index - 1))

    # Raw images of each needed subset, resized once per character (rotations reuse them).
    first_id_of_subset = {
        subset: min(a.first_id for a in alphabets.values() if a.subset == subset)
        for subset in {r[3] for r in resolved}
    }
    resized: dict[int, np.ndarray] = {}
    for subset, first_id in first_id_of_subset.items():
        n_characters = sum(a.n_characters for a in alphabets.values() if a.subset == subset)
        raw = load_character_images(root / _SUBSET_FILES[subset], n_characters)
        needed = sorted({r[4] for r in resolved if r[3] == subset})
        for character_id in needed:
            resized[character_id] = resize_ink_images(raw[character_id - first_id], image_size)
        del raw

    images: dict[str, np.ndarray] = {}
    alphabet_of: dict[str, str] = {}
    for alphabet, index, degrees, _subset, character_id in resolved:
        label = f"{alphabet}/character{index:02d}"
        if split != "lake":
            label += f"/rot{degrees:03d}"
        # rot90 over the (height, width) axes; copy so each class owns a contiguous array.
        images[label] = np.ascontiguousarray(
            np.rot90(resized[character_id], k=degrees // 90, axes=(1, 2))
        )
        alphabet_of[label] = alphabet
    return OmniglotSplit(images, alphabet_of)


def _read_text_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise SketchFileError(path, "file not found")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SketchFileError(path, f"cannot read as UTF-8 text ({err})") from None


@dataclass
class OneShotRuns:
    """Lake et al.'s (2015) 20 original one-shot classification runs (``all_runs.zip``).

    Each run is 20-way 1-shot: 20 training images (one per class, ``runNN/training/classKK``)
    and 20 test images, one per class. ``images[class]`` is float32 ``(2, S, S)``, ink = 1:
    the class's training image, then the test image that belongs to it (from the run's
    ``class_labels.txt``). ``runs[r]`` lists run ``r``'s 20 classes.
    """

    images: dict[str, np.ndarray]
    runs: list[list[str]]


def load_one_shot_runs(path: str | os.PathLike, image_size: int = 28) -> OneShotRuns:
    """Read ``all_runs.zip`` in place (PNGs decoded from the archive, nothing extracted)."""
    path = Path(path)
    if not path.is_file():
        raise SketchFileError(path, "file not found (Lake et al.'s all_runs.zip)")
    with Archive(path) as zf:
        names = set(zf.namelist())
        run_names = sorted({n.split("/")[0] for n in names if n.endswith("class_labels.txt")})
        if not run_names:
            raise SketchFileError(path, "no runNN/class_labels.txt inside: not all_runs.zip")
        images: dict[str, np.ndarray] = {}
        runs: list[list[str]] = []
        for run in run_names:
            label_file = f"{run}/class_labels.txt"
            text = zf.read(zf.getinfo(label_file), max_bytes=_MAX_MEMBER_BYTES)
            try:
                lines = text.decode("utf-8").splitlines()
            except UnicodeDecodeError as err:
                raise SketchFileError(path, f"{label_file}: not UTF-8 text ({err})") from None
            pairs = [p for p in (line.split() for line in lines) if p]
            if any(len(p) != 2 for p in pairs):
                raise SketchFileError(path, f"{label_file}: expected 'test.png training.png'")
            test_of = {}
            for test, training in pairs:
                if training in test_of:
                    raise SketchFileError(
                        path, f"{label_file}: {training} has two test images; "
                        "a run holds one test image per class"
                    )  # fmt: skip
                test_of[training] = test
            classes = []
            for training, test in sorted(test_of.items()):
                for member in (training, test):
                    if member not in names:
                        raise SketchFileError(path, f"{label_file} names missing {member}")
                raw = np.stack(
                    [
                        _png_paper(
                            zf.read(zf.getinfo(m), max_bytes=_MAX_MEMBER_BYTES), f"{path}:{m}"
                        )
                        for m in (training, test)
                    ]
                )
                key = training.removesuffix(".png")
                images[key] = resize_ink_images(raw, image_size)
                classes.append(key)
            runs.append(classes)
    return OneShotRuns(images, runs)


def _png_paper(data: bytes, where: str) -> np.ndarray:
    """A 105x105 Omniglot PNG as bool (True = paper)."""
    try:
        opened = Image.open(io.BytesIO(data))
        # The size comes from the header: check it before decoding a single pixel.
        if opened.size != (105, 105):
            raise SketchFileError(where, f"expected a 105x105 Omniglot image, got {opened.size}")
        image = opened.convert("L")
    except SketchFileError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise SketchFileError(where, f"not a readable PNG ({type(err).__name__}: {err})") from None
    return np.asarray(image) > 127
