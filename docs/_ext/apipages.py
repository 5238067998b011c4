"""Write the API reference (docs/api/index.rst and a page per module) from the package itself.

One page per module of ``sketchrnn`` found by walking the package (modules whose name starts
with ``_`` are private): the module's docstring, a table of what it defines, then each public
class, function, exception and declared constant, documented by autodoc. A module appears in
the reference by existing; nothing lists them by hand. The pages are regenerated at every build
(docs/api/ is git-ignored; the page of a module that moved or went is deleted).

Written here rather than with autosummary's ``:recursive:``: autosummary takes
``sketchrnn.nn.pixel_loss`` for the function that ``sketchrnn/nn/__init__.py`` re-exports
under the module's name, and its first-sentence summaries cut inline literals at an
abbreviation (``incl.``) in the Sphinx release pinned here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer

PACKAGE = "sketchrnn"
FOLDER = "api"  # under the Sphinx source folder
_LONG_VALUE = 60  # a constant whose repr is longer is shown without its value


def public_modules(package: str = PACKAGE) -> list[str]:
    """Every module of ``package`` (itself included) that no ``_`` in its dotted name hides."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _defined_here(module: ModuleType) -> dict[str, list[str]]:
    """Public names the module defines (not imports), by kind."""
    kinds: dict[str, list[str]] = {"data": [], "exception": [], "class": [], "function": []}
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            kinds["exception" if issubclass(obj, BaseException) else "class"].append(name)
        elif inspect.isfunction(obj):
            kinds["function"].append(name)
    kinds["data"] = _constants(module)
    return kinds


def _constants(module: ModuleType) -> list[str]:
    """Module-level names assigned in the module's source and either declared in
    ``__all__`` or documented with a ``#:`` comment."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return []
    assigned = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        assigned += [t.id for t in targets if isinstance(t, ast.Name)]
    declared = set(getattr(module, "__all__", ()))
    documented = {name for (scope, name) in _attr_docs(module) if not scope}
    return [
        n
        for n in dict.fromkeys(assigned)
        if not n.startswith("_") and (n in declared or n in documented)
    ]


def _attr_docs(module: ModuleType) -> dict[tuple[str, str], list[str]]:
    try:
        return ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
    except Exception:
        return {}


_ROLE = re.compile(r":(\w+):`(~?)([\w.]+)`")
_SENTENCE_END = re.compile(r"\.(?=\s+[A-Z`*(]|\s*$)")
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "cf.", "vs.", "incl.", "eq.", "sec.", "fig.")


def summary(doc: str | None, scope: Any, scope_name: str) -> str:
    """The first sentence of ``doc``'s first paragraph, with bare cross-references qualified
    by ``scope_name`` where ``scope`` (the module or class the docstring belongs to) holds
    the name, so that they resolve in a table on another page."""
    paragraph = " ".join(inspect.cleandoc(doc or "").split("\n\n", 1)[0].split())
    first = paragraph
    for end in _SENTENCE_END.finditer(paragraph):
        head = paragraph[: end.end()]
        literals_closed = head.count("``") % 2 == 0 and head.replace("``", "").count("`") % 2 == 0
        abbreviation = head.lower().endswith(_ABBREVIATIONS)
        if literals_closed and head.count("(") == head.count(")") and not abbreviation:
            first = head
            break
    if first.endswith("::"):
        first = first[:-1]  # a literal block's introduction; the block is not in the table

    def qualify(m: re.Match[str]) -> str:
        role, tilde, target = m.groups()
        head = target.split(".", 1)[0]
        if target.startswith(PACKAGE + ".") or not hasattr(scope, head):
            return m.group(0)
        return f":{role}:`{tilde or '~'}{scope_name}.{target}`"

    return _ROLE.sub(qualify, first)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("_", r"\_").replace("*", r"\*")


def _table(rows: list[tuple[str, str]]) -> list[str]:
    lines = [".. list-table::", "   :widths: 35 65", ""]
    for link, text in rows:
        lines += [f"   * - {link}", f"     - {text}"]
    return lines + [""]


def module_page(name: str, namespace: list[tuple[str, str, str]] | None = None) -> str:
    """The reST source of one module's page."""
    module = importlib.import_module(name)
    kinds = _defined_here(module)
    lines = [_escape(name), "=" * len(_escape(name)), "", f".. automodule:: {name}", ""]
    if namespace:
        lines += [
            ".. rubric:: The public namespace",
            "",
            f"``from {PACKAGE} import NAME`` gives each of these (loaded on first use).",
            "",
        ]
        lines += _table([(f"``{n}``", f":py:{role}:`{target}`") for n, role, target in namespace])
    members = [(kind, n) for kind in kinds for n in kinds[kind]]
    attr_docs = _attr_docs(module)
    if members:
        rows = []
        for kind, n in members:
            obj = getattr(module, n)
            role = {"data": "data", "function": "func"}.get(kind, "class")
            if kind == "data":
                text = summary("\n".join(attr_docs.get(("", n), [])), module, name)
            else:
                text = summary(inspect.getdoc(obj), obj, f"{name}.{n}")
            rows.append((f":py:{role}:`~{name}.{n}`", text))
        lines += [".. rubric:: Contents", ""] + _table(rows)
    for kind, n in members:
        lines += _directive(module, kind, n, attr_docs)
    children = (
        [m for m in public_modules(name) if m != name and m.count(".") == name.count(".") + 1]
        if hasattr(module, "__path__")
        else []
    )
    if children:
        rows = []
        for child in children:
            sub = importlib.import_module(child)
            rows.append((f":py:mod:`{child}`", summary(sub.__doc__, sub, child)))
        lines += [".. rubric:: Modules", ""] + _table(rows)
        lines += [".. toctree::", "   :hidden:", ""] + [f"   {c}" for c in children] + [""]
    return "\n".join(lines)


def _directive(
    module: ModuleType, kind: str, n: str, attr_docs: dict[tuple[str, str], list[str]]
) -> list[str]:
    full = f"{module.__name__}.{n}"
    if kind == "class" or kind == "exception":
        return [f".. auto{kind}:: {full}", "   :members:", ""]
    if kind == "function":
        return [f".. autofunction:: {full}", ""]
    value = repr(getattr(module, n))
    if ("", n) in attr_docs:
        lines = [f".. autodata:: {full}"]
        return lines + (["   :no-value:"] if len(value) > _LONG_VALUE else []) + [""]
    # No #: comment: autodata would print the docstring of the value's type (dict's, tuple's).
    lines = [f".. py:data:: {n}", f"   :module: {module.__name__}"]
    return lines + ([f"   :value: {value}"] if len(value) <= _LONG_VALUE else []) + [""]


def namespace_rows(package: str = PACKAGE) -> list[tuple[str, str, str]]:
    """``(name, role, full name)`` for each name the package's ``__all__`` offers."""
    root = importlib.import_module(package)
    rows = []
    for name in root.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(root, name)
        if inspect.ismodule(obj):
            rows.append((name, "mod", obj.__name__))
        else:
            role = "class" if inspect.isclass(obj) else "func"
            rows.append((name, role, f"{obj.__module__}.{obj.__qualname__}"))
    return rows


INDEX = f"""API reference
=============

Generated from the package's docstrings: every module of ``{PACKAGE}``, each object on the
page of the module that defines it. Shapes of tensors are written ``(batch, time, 5)``;
sketches are stroke-3 arrays ``(n, 3)`` of rows ``(dx, dy, pen)`` unless a docstring says
otherwise.

.. toctree::
   :maxdepth: 2
   :includehidden:

   {PACKAGE}
"""


def write_pages(app: Sphinx) -> None:
    folder = Path(app.srcdir) / FOLDER
    folder.mkdir(exist_ok=True)
    pages = {
        folder / f"{name}.rst": module_page(name, namespace_rows() if name == PACKAGE else None)
        for name in public_modules()
    }
    pages[folder / "index.rst"] = INDEX
    for stale in set(folder.iterdir()) - set(pages):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    for path, text in pages.items():
        # Rewritten only when changed, so that a second build re-reads only what changed.
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _dataclass_defaults(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None, ret: str
) -> tuple[str | None, str]:
    """A dataclass field with a ``default_factory`` shows ``<factory>`` as its default: not
    Python, so Sphinx could not parse the signature (and split it at every comma)."""
    return (signature.replace("<factory>", "...") if signature else signature), ret


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", write_pages)
    app.connect("autodoc-process-signature", _dataclass_defaults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
