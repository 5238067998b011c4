"""`sketchrnn embed` figures: a PNG is written only under a .png name, a missing optional
dependency is one line saying which extra to install, and the counts are checked (the bounds
themselves are in test_cli_values)."""

from __future__ import annotations

import sys

import pytest

from sketchrnn.cli import main

FIGURES = [
    ["embed", "one-shot", "MODEL", "--input", "a.png"],
    ["embed", "compose", "MODEL"],
    ["embed", "arrangements", "MODEL"],
]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("argv", FIGURES, ids=[a[1] for a in FIGURES])
@pytest.mark.parametrize("name", ["x.npz", "x.svg", "x"])
def test_a_figure_is_never_written_as_a_png_under_another_name(argv, name, tmp_path, capsys):
    out = tmp_path / name
    argv = [str(tmp_path / a) if a.isupper() else a for a in argv]
    assert main([*argv, "--out", str(out)]) == 2
    assert f"{out}: a figure is a PNG image; name the file *.png" in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []  # refused before the (missing) model was read


def test_arrangements_without_umap_says_which_extra_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap now raises ImportError
    out = tmp_path / "umap.png"
    assert main(["embed", "arrangements", str(tmp_path / "no-model"), "--out", str(out)]) == 2
    line = _one_line(capsys)
    assert "needs UMAP, which is not installed: pip install 'sketchrnn[figures]'" in line
    assert not out.exists()


def test_the_library_refuses_the_same(tmp_path, monkeypatch):
    from sketchrnn import figures
    from sketchrnn.extras import MissingExtraError

    with pytest.raises(ValueError, match="a figure is a PNG image"):
        figures.one_shot_figure(tmp_path / "m", tmp_path / "x.npz")
    with pytest.raises(ValueError, match="n_characters must be at least 1, got -5"):
        figures.one_shot_figure(tmp_path / "m", tmp_path / "x.png", n_characters=-5)
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(MissingExtraError, match=r"sketchrnn\[figures\]"):
        figures.arrangements_figure(tmp_path / "m", tmp_path / "x.png")
    assert issubclass(MissingExtraError, ImportError)
