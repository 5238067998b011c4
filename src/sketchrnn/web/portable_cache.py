"""The served models in portable form, for the page to draw with in the visitor's browser.

Each served model is exported once with :func:`sketchrnn.models.onnx_export.export_portable`
(ONNX graphs and a manifest, docs/portable-models.md) into the model cache,
``<models cache>/portable/NAME-KEY/``, and kept there for the next start. ``KEY``
(:func:`portable_key`) is a digest of everything the export depends on: the model's weights,
config and units, the format version and the exporter's own code. So a folder never changes
once written (the server sends its files as immutable) and a retrained model, or a changed
exporter, gets a new folder rather than a stale one. Old folders are left for the user to
delete (the cache is theirs).

An export takes seconds to a minute of CPU (it also checks the graphs against PyTorch), so
exports run one at a time, in the thread that asks first; others asking for the same model
wait for it. A model that cannot be exported (the ``onnx`` extra missing, a model kind the
format does not hold) is remembered with the reason, which the page shows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path
from typing import Any

from sketchrnn import __version__
from sketchrnn.models.zoo import models_cache_dir
from sketchrnn.web.drawing import ServedModel

__all__ = ["PortableStore", "PortableUnavailable", "portable_key", "portable_cache_dir"]

# The code an exported folder comes from: a change in any of them changes every key.
_EXPORTER_MODULES = ("onnx_export.py", "onnx_graphs.py", "portable_format.py", "portable.py")


class PortableUnavailable(RuntimeError):
    """A served model that has no portable form: the message says why (one line)."""


def portable_cache_dir() -> Path:
    """Where exported models are kept: ``portable/`` in the model cache
    (:func:`sketchrnn.models.zoo.models_cache_dir`)."""
    return models_cache_dir() / "portable"


def _exporter_digest() -> str:
    models = Path(__file__).resolve().parents[1] / "models"
    digest = hashlib.sha256(__version__.encode())
    for name in _EXPORTER_MODULES:
        try:
            digest.update((models / name).read_bytes())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()


def portable_key(model: Any) -> str:
    """16 hex digits naming the export of ``model``: a SHA-256 of its class, config (units
    included), every tensor of its state dict (name, dtype, shape, bytes) and the exporter's
    code (:data:`_EXPORTER_MODULES` and the package version)."""
    import torch

    digest = hashlib.sha256(_exporter_digest().encode())
    digest.update(type(model).__name__.encode())
    config: Any = getattr(model, "config", None)
    as_dict = config.to_dict() if hasattr(config, "to_dict") else repr(config)
    digest.update(json.dumps(as_dict, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.dtype == torch.bfloat16:
            t = t.float()
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]


class PortableStore:
    """The portable folders of served models under ``root`` (default
    :func:`portable_cache_dir`), exported on first use."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else portable_cache_dir()
        self._keys: dict[int, str] = {}  # id(model) -> key (weights are not hashed twice)
        self._failed: dict[str, str] = {}  # key -> why it cannot be exported
        self._export_lock = threading.Lock()  # one export at a time: each takes the CPU
        self._keys_lock = threading.Lock()

    def key(self, served: ServedModel) -> str:
        """:func:`portable_key` of the served model, computed once."""
        with self._keys_lock:
            key = self._keys.get(id(served.model))
            if key is None:
                key = self._keys[id(served.model)] = portable_key(served.model)
            return key

    def folder_name(self, served: ServedModel) -> str:
        """``NAME-KEY``: the folder of the served model's export (and its URL's last part)."""
        return f"{served.name}-{self.key(served)}"

    def ready(self, served: ServedModel) -> Path | None:
        """The exported folder if it is there already (nothing is exported here)."""
        folder = self.root / self.folder_name(served)
        return folder if (folder / "manifest.json").is_file() else None

    def problem(self, served: ServedModel) -> str | None:
        """Why the served model has no portable form, if an export failed or cannot start."""
        try:
            from sketchrnn.models.onnx_export import export_problem
        except ImportError as e:  # the onnx extra is missing: say what to install
            why = f"no portable form for the browser ({e}): pip install 'sketchrnn[web]'"
            return f"{served.name}: {why}"
        return self._failed.get(self.key(served)) or export_problem(served.model)

    def export(self, served: ServedModel) -> Path:
        """The served model's portable folder, exported now if it is not in the cache
        (blocking: call it from a worker thread). :class:`PortableUnavailable` with the
        reason when it cannot be."""
        done = self.ready(served)
        if done is not None:
            return done
        problem = self.problem(served)
        if problem:
            raise PortableUnavailable(problem)
        with self._export_lock:
            done = self.ready(served)  # another thread may have exported it meanwhile
            if done is not None:
                return done
            folder = self.root / self.folder_name(served)
            try:
                from sketchrnn.models.onnx_export import export_portable

                if folder.exists():  # a folder without its manifest: never finished
                    shutil.rmtree(folder)
                export_portable(served.model, folder, name=served.name)
            except Exception as e:  # the reason is shown on the page; the server goes on
                why = f"{served.name}: no portable form for the browser ({e})"
                self._failed[self.key(served)] = why
                raise PortableUnavailable(why) from e
            return folder

    def manifest(self, served: ServedModel) -> dict[str, Any]:
        """The exported manifest of the served model (exporting it first if need be)."""
        folder = self.export(served)
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
