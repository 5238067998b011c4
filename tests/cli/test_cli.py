"""The `sketchrnn` command as a user runs it: data info / convert / render / download."""

import argparse
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import shared_file

from sketchrnn.cli import main
from sketchrnn.io.formats import read_sketches


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "sketchrnn.cli", *args], capture_output=True, text=True, timeout=120
    )


# Every command and subcommand, by group, in the order the help lists them.
COMMANDS = {
    (): ["data", "sample", "reconstruct", "complete", "interpolate", "analogy", "demo",
         "serve", "export-site", "train", "evaluate", "judge", "fewshot", "embed", "export",
         "models", "runtime"],
    ("data",): ["info", "convert", "pack", "verify", "render", "download", "synthetic", "sample"],
    ("train",): ["sketch-rnn", "sketchembednet"],
    ("embed",): ["vectors", "one-shot", "compose", "arrangements"],
    ("models",): ["list", "download"],
    ("runtime",): ["install"],
}  # fmt: skip


def _listed(help_text: str) -> list[str]:
    """The subcommand names a help lists (indented four spaces under positional arguments)."""
    return [m.group(1) for m in re.finditer(r"^    (\S+)", help_text, re.MULTILINE)]


@pytest.mark.slow
def test_help_lists_commands():
    for group, names in COMMANDS.items():
        out = run_cli(*group, "--help")
        assert out.returncode == 0, out.stderr
        assert _listed(out.stdout) == names, group


def test_every_command_has_its_own_help():
    """Every leaf command builds its options (from the library's configs) and shows them; the
    tree holds exactly the commands above."""
    from sketchrnn.cli import build_parser

    def walk(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
            return
        names = [a.dest for a in subs[0]._choices_actions]
        assert names == COMMANDS[path], path
        for name in names:
            yield from walk(subs[0].choices[name], (*path, name))

    leaves = dict(walk(build_parser(), ()))
    assert len(leaves) == sum(len(v) for v in COMMANDS.values()) - len(COMMANDS) + 1
    for path, parser in leaves.items():
        text = parser.format_help()
        assert text.startswith(f"usage: sketchrnn {' '.join(path)}") and "--help" in text


@pytest.mark.slow
def test_top_level_help_is_fast_and_imports_no_torch():
    code = (
        "import sys\nfrom sketchrnn.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'sketchrnn --help imported torch'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("group", [(), ("data",), ("train",), ("embed",)])
def test_a_group_without_its_command_is_a_usage_error(group):
    out = run_cli(*group)
    assert out.returncode == 2
    assert out.stderr.startswith(f"usage: sketchrnn {' '.join(group)}".rstrip())
    assert all(name in out.stderr for name in COMMANDS[group])


def test_data_info_on_npz_and_ndjson(capsys):
    sheep = shared_file("sketchrnn/aaron_sheep.npz")
    cat = shared_file("quickdraw/simplified/cat.ndjson")
    assert main(["data", "info", str(sheep), str(cat)]) == 0
    out = capsys.readouterr().out
    assert "sketches: 8000" in out and "train: 7400" in out and "valid: 300" in out
    assert "scale factor" in out and "classes: cat" in out
    assert "sketches: 25" in out


def test_convert_roundtrip_npz_ndjson_bin(tmp_path):
    sheep = shared_file("sketchrnn/aaron_sheep.npz")
    original = read_sketches(sheep)
    assert main(["data", "convert", str(sheep), str(tmp_path / "sheep.ndjson")]) == 0
    assert main(["data", "convert", str(tmp_path / "sheep.ndjson"), str(tmp_path / "s.bin")]) == 0
    assert main(["data", "convert", str(tmp_path / "s.bin"), str(tmp_path / "back.npz")]) == 0
    back = read_sketches(tmp_path / "back.npz")
    assert len(back) == len(original)
    # Integer drawings spanning at most 255 only move to the top-left corner of the 0-255 box
    # (every other offset survives exactly); larger ones are scaled to span exactly 0-255.
    checked = 0
    for a, b in zip(original.strokes[:200], back.strokes[:200], strict=True):
        xy_a, xy_b = a[:, :2].cumsum(0), b[:, :2].cumsum(0)
        assert xy_b.min() == 0 and len(a) == len(b)
        if np.ptp(xy_a, axis=0).max() <= 255:
            np.testing.assert_array_equal(a[1:], b[1:])
            checked += 1
        else:
            assert np.ptp(xy_b, axis=0).max() == 255
    assert checked > 10
    first = json.loads((tmp_path / "sheep.ndjson").read_text().splitlines()[0])
    assert first["word"] == "aaron_sheep"


def test_convert_scales_floats_into_quickdraw_box(tmp_path):
    kanji = shared_file("sketchrnn/kanji.rdp100.npz")
    assert main(["data", "convert", str(kanji), str(tmp_path / "k.bin")]) == 0
    back = read_sketches(tmp_path / "k.bin")
    assert len(back) == len(read_sketches(kanji))


@pytest.mark.parametrize("name", ["grid.png", "grid.svg"])
def test_render_grid(tmp_path, name):
    cat = shared_file("quickdraw/raw/cat.ndjson")
    out = tmp_path / name
    assert (
        main(["data", "render", str(cat), "--out", str(out), "--n", "4", "--color", "stroke"]) == 0
    )
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") if name.endswith(".png") else b"<svg" in data


@pytest.mark.slow
def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"word": "cat", "drawing": [[[0, 10], [0, 10]]]}\n{"word": oops}\n')
    out = tmp_path / "out.npz"
    result = run_cli("data", "convert", str(bad), str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bad.ndjson:2" in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary file left behind either


@pytest.mark.slow
def test_unsupported_output_keeps_existing_file(tmp_path):
    cat = shared_file("quickdraw/simplified/cat.ndjson")
    out = tmp_path / "out.txt"
    out.write_text("precious")
    result = run_cli("data", "convert", str(cat), str(out))
    assert result.returncode == 2 and "unsupported output type" in result.stderr
    assert out.read_text() == "precious"


@pytest.mark.slow
def test_download_offline_is_a_clear_error(tmp_path):
    # A port nobody listens on: the command must say it cannot reach the server.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli(
        "data", "download", "cat", "--to", str(tmp_path), "--base-url", f"http://127.0.0.1:{port}/"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "reach" in result.stderr
    assert not (tmp_path / "cat.npz").exists()


def test_skip_invalid_counts_and_carries_on(tmp_path, capsys):
    good = '{"word": "cat", "drawing": [[[0, 10, 20], [0, 10, 0]]]}'
    bad = tmp_path / "mixed.ndjson"
    bad.write_text("\n".join([good, '{"word": oops}', good, '{"word": "cat", "drawing": []}']))
    out = tmp_path / "out.npz"
    assert main(["data", "convert", str(bad), str(out), "--skip-invalid"]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 invalid drawings" in err and "mixed.ndjson:2" in err
    assert len(read_sketches(out)) == 2


def test_data_synthetic_writes_a_trainable_file(tmp_path, capsys):
    out = tmp_path / "shapes.npz"
    assert main(["data", "synthetic", "--out", str(out), "--per-class", "10",
                 "--classes", "circle", "snowman"]) == 0  # fmt: skip
    assert "wrote 20 sketches (circle, snowman)" in capsys.readouterr().out
    ss = read_sketches(out)
    assert len(ss) == 20 and sorted(set(ss.splits)) == ["test", "train", "valid"]
    assert main(["data", "synthetic", "--out", str(tmp_path / "x.npz"), "--classes", "blob"]) == 2
    assert "unknown shape 'blob'" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_data_sample_caches_drawings_of_magenta_models(tmp_path, capsys):
    model = shared_file("magenta_models/sheep.gen.json")
    out = tmp_path / "samples.npz"
    args = ["data", "sample", str(model), "--out", str(out), "--per-model", "3"]
    assert main([*args, "--temperature", "0.3"]) == 0
    assert "1 models x 3 drawings at temperature 0.3" in capsys.readouterr().out
    ss = read_sketches(out)
    assert 1 <= len(ss) <= 3 and all(len(s) for s in ss.strokes)
