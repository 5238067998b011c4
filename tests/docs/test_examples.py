"""The code examples of the documentation run: README.md and every page in docs/.

Each fenced code block is one of:

* a Python block (```python): run. The Python blocks of one page run in order as one
  program (a later block may use an earlier one's names), in a fresh folder where the files of
  ../shared/data/sketchrnn are linked by name (``load_datasets(["aaron_sheep.npz"])`` as a user
  who downloaded it would write), shrunk by :data:`SHRINK` where the page's figures are
  full-size (2000 training steps become a few).
* any block, marked ``<!-- not run: REASON -->`` on the line before it: not run, reported as a
  skip with that reason. Shell commands that need a GPU, a cluster, a server or full-size
  training say so there.
* a shell or JavaScript block without the mark: a failure (an example nobody runs or marks).
* anything else (```json, a folder listing without a language): a listing, not an example.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SHARED_DATA, FolderServer
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"python", "py"}
MUST_RUN_OR_MARK = {"sh", "bash", "shell", "console", "js", "javascript", "mjs", "html", "ts"}
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>.+?)\s*-->", re.S)

# Full-size figures in a page, made small enough for CI: (page, text, replacement). Each text
# must occur in the page's Python blocks: a rule that no longer matches fails, not passes.
SHRINK = [
    ("README.md", "max_steps=2000", "max_steps=1"),
]


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None  # the reason given in the mark, if any

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def code_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, as MyST (markdown-it) reads them."""
    tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
    blocks = []
    for i, token in enumerate(tokens):
        if token.type != "fence" or token.map is None:
            continue
        previous = tokens[i - 1] if i else None
        mark = None
        if previous is not None and previous.type == "html_block":
            found = NOT_RUN.search(previous.content)
            mark = found["reason"] if found else None
        language = token.info.split()[0].lower() if token.info.strip() else ""
        blocks.append(Block(page, token.map[0] + 1, language, token.content, mark))
    return blocks


ALL_BLOCKS = [b for page in PAGES for b in code_blocks(page)]
EXAMPLES = [b for b in ALL_BLOCKS if b.language in RUN | MUST_RUN_OR_MARK]


def test_the_pages_hold_examples():
    # The quickstart at least; a parser that found nothing would make every test below vacuous.
    runnable = [b for b in EXAMPLES if b.language in RUN and b.not_run is None]
    assert any(b.page.name == "README.md" for b in runnable)


@pytest.mark.parametrize(
    "block", [b for b in EXAMPLES if b.not_run or b.language not in RUN], ids=lambda b: b.where
)
def test_block_not_run_says_why(block: Block):
    assert block.not_run, (
        f"{block.where}: a ```{block.language} block that is neither run nor marked: put "
        "'<!-- not run: why -->' on the line before it (tests/docs/test_examples.py)"
    )
    pytest.skip(f"{block.where} not run: {block.not_run}")


def program(page: Path) -> str:
    """The page's runnable Python blocks as one script, shrunk, each headed by where it is."""
    parts = []
    for b in code_blocks(page):
        if b.language in RUN and b.not_run is None:
            parts.append(f"# --- {b.where}\n{b.code}")
    source = "\n".join(parts)
    for name, text, replacement in SHRINK:
        if name == page.name:
            assert text in source, f"{page.name}: SHRINK rule {text!r} no longer matches"
            source = source.replace(text, replacement)
    return source


PYTHON_PAGES = sorted({b.page for b in EXAMPLES if b.language in RUN and b.not_run is None})


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples_run(page: Path, tmp_path: Path):
    data = SHARED_DATA / "sketchrnn"
    if not data.is_dir():
        pytest.skip(f"shared data not found: {data} (set SKETCHRNN_SHARED_DATA)")
    for f in data.iterdir():
        (tmp_path / f.name).symlink_to(f)
    script = tmp_path / "examples.py"
    script.write_text(program(page), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    # The judge by name (docs/quality.md: load_judge()) is fetched as a user's would be, from a
    # local server over ../shared/data/doodlenet into a fresh cache.
    env["SKETCHRNN_CACHE_DIR"] = str(tmp_path / "models-cache")
    with contextlib.ExitStack() as stack:
        if (SHARED_DATA / "doodlenet").is_dir():
            env["SKETCHRNN_JUDGE_URL"] = stack.enter_context(
                FolderServer(SHARED_DATA / "doodlenet")
            ).url
        run = subprocess.run(
            [sys.executable, script.name],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    numbered = "\n".join(
        f"{i:4} {line}" for i, line in enumerate(script.read_text().splitlines(), 1)
    )
    assert run.returncode == 0, f"{page.name}'s examples failed:\n{numbered}\n{run.stderr[-3000:]}"


def test_marks_are_seen(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n<!-- not run: needs a GPU -->\n```sh\nnvidia-smi\n```\n\n```sh\nls\n```\n\n"
        "```python\nx = 1\n```\n\n```json\n{}\n```\n",
        encoding="utf-8",
    )
    blocks = code_blocks(page)
    assert [(b.language, b.not_run, b.line) for b in blocks] == [
        ("sh", "needs a GPU", 4),
        ("sh", None, 8),
        ("python", None, 12),
        ("json", None, 16),
    ]
