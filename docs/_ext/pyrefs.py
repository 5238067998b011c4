"""Resolve the docstrings' Python cross-references the way Python resolves the names.

A docstring says :class:`SketchModel` where its module imported ``SketchModel`` from
``sketchrnn.models.interface``; Sphinx looks only for ``<this module>.SketchModel`` and gives
up. This extension looks the name up in the referring module (and class), as Python would, and
links to the page of the module that defines the object. A name that exists but has no page (a
private helper, an undocumented constant, ``torch.Tensor``: there is no network to fetch other
projects' inventories) is shown as code, unlinked. A name that does not exist at all is left
unresolved, so that the build (nitpicky, warnings as errors) fails on it: a docstring that
names something gone is wrong.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import sys
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

_MISSING = object()


def _attr_chain(scope: Any, names: list[str]) -> Any:
    for name in names:
        try:
            scope = inspect.getattr_static(scope, name)
        except AttributeError:
            try:
                scope = getattr(scope, name)
            except Exception:
                return _MISSING
    return scope


def _module(name: str) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except Exception:
        return _MISSING


def lookup(target: str, modname: str | None, classname: str | None) -> Any:
    """The object ``target`` names in module ``modname`` (inside class ``classname``, if
    given), or a full dotted path; ``_MISSING`` when there is none."""
    parts = target.split(".")
    scopes: list[Any] = []
    module = _module(modname) if modname else _MISSING
    if module is not _MISSING:
        if classname:
            scopes.append(_attr_chain(module, classname.split(".")))
        scopes.append(module)
    scopes.append(builtins)
    scopes.append(_module("sketchrnn"))  # ``data.make_batch``: a module of the package
    for scope in scopes:
        if scope is not _MISSING and (obj := _attr_chain(scope, parts)) is not _MISSING:
            return obj
    for i in range(len(parts), 0, -1):
        module = _module(".".join(parts[:i]))
        if module is not _MISSING:
            return _attr_chain(module, parts[i:])
    return _MISSING


def _identity(obj: Any) -> Any:
    """What stays the same object however it was reached (a classmethod through getattr is
    a new bound method each time; its function is not)."""
    for attr in ("__func__", "fget"):
        if hasattr(obj, attr) and not inspect.isclass(obj):
            obj = getattr(obj, attr)
    return obj


def _documented(app: Sphinx, env: BuildEnvironment) -> dict[int, str]:
    """id(object) -> full name, for every object the Python domain holds a page entry for.

    Kept on the application, not the environment: the environment is pickled between builds,
    and ids mean nothing in another process."""
    cache: dict[int, str] | None = getattr(app, "_pyrefs_documented", None)
    if cache is None:
        cache = {}
        for name, entry in env.domains["py"].objects.items():
            if entry.aliased:
                continue
            obj = lookup(name, None, None)
            # Values such as 100 or None are shared by many names: only things with an
            # identity of their own (modules, classes, functions, properties) are matched.
            if obj is not _MISSING and (
                inspect.ismodule(obj)
                or inspect.isclass(obj)
                or callable(obj)
                or isinstance(obj, property | classmethod | staticmethod)
            ):
                cache.setdefault(id(_identity(obj)), name)
        app._pyrefs_documented = cache  # type: ignore[attr-defined]
    return cache


def _resolve(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    obj = lookup(target, node.get("py:module"), node.get("py:class"))
    if obj is _MISSING:
        # Loosely written (``strokes.augment`` where the module did not import ``strokes``):
        # accepted when exactly one documented object's name ends so.
        ends = [n for n in env.domains["py"].objects if n.endswith("." + target)]
        if len(ends) != 1:
            return None  # nitpicky: reported as a reference to nothing (or to several)
        obj = lookup(ends[0], None, None)
    name = _documented(app, env).get(id(_identity(obj)))
    if name is None and "." not in target and node.get("py:module"):
        # A constant: documented under the same name in the module that defines it?
        for full in env.domains["py"].objects:
            if full.rsplit(".", 1)[-1] == target and lookup(full, None, None) is obj:
                name = full
                break
    if name is None:
        return contnode  # it exists but has no page here: code, unlinked
    domain = env.domains["py"]
    for role in (node["reftype"], "obj"):
        ref = domain.resolve_xref(env, node["refdoc"], app.builder, role, name, node, contnode)
        if ref is not None:
            return ref
    return contnode


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
