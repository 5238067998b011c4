"""The judge's files, by name: downloaded once into the models cache, checked by digest.

``doodlenet`` (the only judge today) is ml5's DoodleNet (MIT): a 345-class Quick, Draw!
classifier in TensorFlow.js layers format, three files under :data:`DOODLENET_URL`
(``$SKETCHRNN_JUDGE_URL`` overrides the base URL, for a mirror or a test server). They are
fetched with the project's resumable, atomic download (:func:`sketchrnn.io.download.fetch_file`)
into ``<models cache>/doodlenet/`` (:func:`sketchrnn.models.zoo.models_cache_dir`) and each
is kept only if its SHA-256 is the one pinned here, so a changed upstream file is an error
naming it, not a different judge.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from sketchrnn.io.download import DownloadError, fetch_file

__all__ = [
    "DOODLENET_URL",
    "JUDGE_FILES",
    "JudgeDownloadError",
    "judge_url",
    "judge_cache_dir",
    "download_judge",
    "resolve_judge",
]

#: Where ml5 itself loads DoodleNet from (its ``imageClassifier('DoodleNet')``).
DOODLENET_URL = "https://cdn.jsdelivr.net/gh/ml5js/ml5-data-and-models@master/models/doodlenet/"
#: name -> {file: SHA-256}: the files of each judge and their digests.
JUDGE_FILES: dict[str, dict[str, str]] = {
    "doodlenet": {
        "model.json": "b652eae4c567f2fff69c37b2f365f8622ad2712d88d32c7ac9187700266c0e46",
        "group1-shard1of1.bin": "91111f7bb89a7c41983e75d53f33c26b997d77d08a5c2801cbf51f07c443df83",
        "class_names.txt": "1bd82a29940199b411bf0ea54f3a1ee894c9f97bcffc674a369f037a770cbf5c",
    }
}


class JudgeDownloadError(DownloadError):
    """A judge file that could not be downloaded or is not the pinned file (one line naming
    the file and the URL)."""


def judge_url(name: str = "doodlenet") -> str:
    """The base URL of judge ``name``'s files: ``$SKETCHRNN_JUDGE_URL`` if set, else the
    official one (ending in ``/``)."""
    _check_name(name)
    return (os.environ.get("SKETCHRNN_JUDGE_URL") or DOODLENET_URL).rstrip("/") + "/"


def judge_cache_dir(name: str = "doodlenet") -> Path:
    """``<models cache>/<name>``, beside the official sketch-rnn models."""
    from sketchrnn.models.zoo import models_cache_dir

    _check_name(name)
    return models_cache_dir() / name


def _check_name(name: str) -> None:
    if name not in JUDGE_FILES:
        raise ValueError(f"{name!r} is not a judge; the judges are: {', '.join(JUDGE_FILES)}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_judge(name: str = "doodlenet", *, progress: bool = True, quiet: bool = False) -> Path:
    """The cached folder of judge ``name`` with all its files, fetching the missing ones (one
    line on stderr each unless ``quiet``). A file whose digest is not the pinned one is not
    kept: :class:`JudgeDownloadError` names it and its URL."""
    folder = judge_cache_dir(name)
    base = judge_url(name)
    for file, digest in JUDGE_FILES[name].items():
        target = folder / file
        if target.is_file():
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise JudgeDownloadError(
                f"judge {name}: the cache folder {folder} is not writable ({e.strerror or e}); "
                "set SKETCHRNN_CACHE_DIR to another folder"
            ) from None
        url = base + file
        if not quiet:
            print(f"sketchrnn: downloading judge {name} {file} from {url}", file=sys.stderr)

        def check(part: Path, digest: str = digest) -> str | None:
            found = _sha256(part)
            return None if found == digest else f"not the pinned file (SHA-256 {found[:16]}...)"

        try:
            fetch_file(url, target, check=check, label=f"{name}/{file}", progress=progress)
        except DownloadError as e:
            raise JudgeDownloadError(f"judge {name}: {e}") from None
        except OSError as e:
            raise JudgeDownloadError(
                f"judge {name}: {url}: cannot save ({e.strerror or e})"
            ) from None
    return folder


def resolve_judge(spec: str | os.PathLike = "doodlenet", *, progress: bool = True) -> Path:
    """The ``model.json`` of a judge: ``spec`` a judge name (downloaded on first use), a
    folder holding ``model.json`` and ``class_names.txt``, or a ``model.json`` itself."""
    text = os.fspath(spec)
    if text in JUDGE_FILES:
        return download_judge(text, progress=progress) / "model.json"
    path = Path(text)
    if path.is_dir():
        path = path / "model.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{text}: no such judge (a name: {', '.join(JUDGE_FILES)}; or a folder with "
            "model.json and class_names.txt)"
        )
    return path
