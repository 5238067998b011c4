"""The documentation site: it builds with warnings as errors (CI runs this through
`make test-all`), every public module has its page, and the docstrings' cross-references
resolve as Python resolves the names (docs/_ext/pyrefs.py, docs/_ext/apipages.py)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e '.[docs]')")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import apipages  # noqa: E402
import pyrefs  # noqa: E402

import sketchrnn  # noqa: E402


def sphinx_build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-W",
            "--keep-going",
            "-q",
            "-d",
            str(out / "doctrees"),
            str(source),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_site_builds_and_documents_every_public_module(tmp_path: Path):
    run = sphinx_build(ROOT / "docs", tmp_path)
    hint = ""
    if "isn't included in any toctree" in run.stderr:
        hint = "\n(a new page of docs/: add it to the toctree in docs/index.md)"
    assert run.returncode == 0, (
        f"sphinx-build failed (warnings are errors):\n{run.stderr[-5000:]}{hint}"
    )
    html = tmp_path / "html"
    # Found here independently of the page generator: a module it missed fails this test.
    modules = ["sketchrnn"] + [
        m.name
        for m in pkgutil.walk_packages(sketchrnn.__path__, "sketchrnn.")
        if not any(part.startswith("_") for part in m.name.split("."))
    ]
    missing = [m for m in modules if not (html / "api" / f"{m}.html").is_file()]
    assert not missing, f"modules without a page in the API reference: {missing}"
    for page in (ROOT / "docs").glob("*.md"):
        assert (html / f"{page.stem}.html").is_file(), f"{page.name} is not on the site"
    # generate.py says :func:`load_model`, imported from sketchrnn.models: a link to its page.
    generate = (html / "api" / "sketchrnn.generate.html").read_text(encoding="utf-8")
    assert 'href="sketchrnn.models.html#sketchrnn.models.load_model"' in generate
    # The README is the front page, its figures and links to the guides rewritten to work.
    index = (html / "index.html").read_text(encoding="utf-8")
    assert 'href="web-api.html"' in index
    assert (html / "_images" / "web_together.png").is_file()


def _mini_project(folder: Path, text: str) -> Path:
    """A one-page site whose text is read inside ``sketchrnn.generate``."""
    source = folder / "src"
    source.mkdir(parents=True)
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'docs' / '_ext')!r})\n"
        "extensions = ['sphinx.ext.autodoc', 'pyrefs']\nnitpicky = True\n",
        encoding="utf-8",
    )
    (source / "index.rst").write_text(
        "Mini\n====\n\n.. autofunction:: sketchrnn.models.load_model\n\n"
        ".. py:currentmodule:: sketchrnn.generate\n\n" + text + "\n",
        encoding="utf-8",
    )
    return source


@pytest.mark.slow
def test_a_reference_to_nothing_fails_the_build(tmp_path: Path):
    text = ":func:`load_model`, :class:`SketchModel`, :func:`strokes.augment`."
    run = sphinx_build(_mini_project(tmp_path / "good", text), tmp_path / "good")
    assert run.returncode == 0, run.stderr
    page = (tmp_path / "good" / "html" / "index.html").read_text(encoding="utf-8")
    assert 'href="#sketchrnn.models.load_model"' in page  # imported into generate: linked

    run = sphinx_build(_mini_project(tmp_path / "bad", ":func:`load_modle`."), tmp_path / "bad")
    assert run.returncode != 0
    assert "load_modle" in run.stderr


def test_lookup_resolves_names_as_python_does():
    from sketchrnn.models.interface import SketchModel

    assert pyrefs.lookup("SketchModel", "sketchrnn.generate", None) is SketchModel
    assert pyrefs.lookup("sketchrnn.models.interface.SketchModel", None, None) is SketchModel
    assert pyrefs.lookup("data.make_batch", "sketchrnn.store.dataset", None) is not None
    assert pyrefs.lookup("no_such_name", "sketchrnn.generate", None) is pyrefs._MISSING
    assert pyrefs.lookup("SketchModel.no_such_method", "sketchrnn.generate", None) is (
        pyrefs._MISSING
    )


def test_summary_is_the_first_sentence_and_keeps_literals_whole():
    import sketchrnn.generate as scope

    doc = "Leading dims ``...`` are e.g. ``(batch, time)``. Then more.\n\nSecond paragraph."
    assert apipages.summary(doc, scope, "sketchrnn.generate") == (
        "Leading dims ``...`` are e.g. ``(batch, time)``."
    )
    doc = "A loop ``(x (T, B) incl. bias, h0) -> h``. More."
    assert apipages.summary(doc, scope, "sketchrnn.generate") == doc.split(" More")[0]
    # A bare name the docstring's module holds is qualified, so that it resolves in a table on
    # another page; a name it does not hold is left for the build to judge.
    assert apipages.summary("Calls :func:`load_model`.", scope, "sketchrnn.generate") == (
        "Calls :func:`~sketchrnn.generate.load_model`."
    )
    assert apipages.summary("Calls :func:`nothing`.", scope, "sketchrnn.generate") == (
        "Calls :func:`nothing`."
    )


def test_public_modules_skip_private_ones():
    modules = apipages.public_modules()
    assert "sketchrnn.generate" in modules and "sketchrnn.nn.mixture" in modules
    assert not any("._" in m for m in modules)  # importing sketchrnn.cli.__main__ runs the CLI
