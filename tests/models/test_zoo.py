"""The official model collection by name, and ``sketchrnn models`` / ``sketchrnn export``,
against a local HTTP server on 127.0.0.1 in the collection's layout (never the internet)."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest
import torch
from helpers import SHARED_DATA

from sketchrnn.cli import main
from sketchrnn.models import SketchRNN, SketchRNNConfig, load_model, zoo
from sketchrnn.models.magenta import export_magenta_json
from sketchrnn.models.pretrained import ModelFileError

MODELS = SHARED_DATA / "magenta_models"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        if self.path.lstrip("/") in self.server.forbidden:
            self.send_error(403)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def _toy(conditional: bool, **overrides) -> SketchRNN:
    torch.manual_seed(0)
    values = dict(enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=20, cell="lstm")
    values.update(conditional=conditional, recurrent_dropout=0.0, max_seq_len=30)
    values.update(overrides)
    model = SketchRNN(SketchRNNConfig.preset("small", **values))
    model.set_units(scale_factor=20.0, classes=["sheep"])
    return model.eval()


@pytest.fixture()
def server(tmp_path_factory, monkeypatch):
    """The shared .gen.json files as ``<name>.gen.json`` (symlinks), a toy ``sheep.vae.json``,
    ``bear.vae.json`` answering 403 and ``ant.vae.json`` that is not a model; the environment
    points the collection's URL at it and the cache at a temporary folder."""
    if not MODELS.is_dir():
        pytest.skip(f"shared data not found: {MODELS} (set SKETCHRNN_SHARED_DATA)")
    root = tmp_path_factory.mktemp("collection")
    for f in MODELS.glob("*.gen.json"):
        (root / f.name).symlink_to(f)
    export_magenta_json(_toy(True), root / "sheep.vae.json")
    (root / "ant.vae.json").write_text('{"not": "a model"}')
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    httpd.forbidden = {"bear.vae.json"}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    cache = tmp_path_factory.mktemp("cache") / "models"
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", httpd.url)
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(cache))
    httpd.cache = cache
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_the_collection_has_114_names():
    assert len(zoo.OFFICIAL_MODELS) == len(set(zoo.OFFICIAL_MODELS)) == 114
    assert zoo.model_kinds("everything") == ("gen",) and zoo.model_kinds("cat") == ("gen", "vae")
    assert zoo.parse_model_name("cat") == ("cat", None)
    assert zoo.parse_model_name("sea_turtle.vae") == ("sea_turtle", "vae")


def test_urls_and_cache_folder_from_environment(monkeypatch, tmp_path):
    for var in ("SKETCHRNN_MODELS_URL", "SKETCHRNN_CACHE_DIR", "SKETCHRNN_CACHE"):
        monkeypatch.delenv(var, raising=False)
    assert zoo.model_url("cat", "vae") == zoo.OFFICIAL_MODELS_URL + "cat.vae.json"
    assert zoo.models_cache_dir() == Path.home() / ".cache" / "sketchrnn" / "models"
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path))
    assert zoo.models_cache_dir() == tmp_path / "models"
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", "http://mirror.invalid/x")
    assert zoo.models_cache_dir() == tmp_path / "m"
    assert zoo.model_url("cat", "gen") == "http://mirror.invalid/x/cat.gen.json"


def test_download_by_name_then_cached_reuse(server, capsys):
    path = zoo.resolve_model("sheep")
    assert path == server.cache / "sheep.gen.json"
    assert path.read_bytes() == (MODELS / "sheep.gen.json").read_bytes()
    err = capsys.readouterr().err
    assert "downloading model sheep.gen from " + server.url + "sheep.gen.json" in err
    assert server.requests == ["/sheep.gen.json"]
    assert zoo.resolve_model("sheep.gen") == path
    assert server.requests == ["/sheep.gen.json"] and "downloading" not in capsys.readouterr().err
    # A bare name prefers the VAE once it is cached.
    vae = zoo.resolve_model("sheep.vae")
    assert vae.name == "sheep.vae.json" and zoo.resolve_model("sheep") == vae
    assert zoo.cached_models() == {"sheep": ("gen", "vae")}
    assert sorted(p.name for p in server.cache.iterdir()) == ["sheep.gen.json", "sheep.vae.json"]


def test_load_model_takes_a_name(server):
    model = load_model("bicycle")
    assert isinstance(model, SketchRNN) and not model.has_encoder
    assert model.classes == ["bicycle"]
    vae = load_model("sheep.vae")
    assert vae.has_encoder and vae.config.z_size == 4


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cat.vae", "not found (HTTP 404)"),
        ("cat", "not found (HTTP 404)"),
        ("bear.vae", "HTTP 403"),
        ("ant.vae", "not a sketch-rnn model"),
    ],
)
def test_failed_downloads_name_the_model_and_url(server, spec, message):
    name, kind = zoo.parse_model_name(spec)
    kind = kind or "gen"
    with pytest.raises(zoo.ModelDownloadError) as err:
        zoo.resolve_model(spec)
    text = str(err.value)
    assert f"model {name}.{kind}" in text and server.url + f"{name}.{kind}.json" in text
    assert message in text and "\n" not in text
    assert list(server.cache.iterdir()) == []  # nothing half-written


def test_names_not_in_the_collection(server):
    with pytest.raises(zoo.ModelNameError, match="'catt' is not a model .*did you mean cat"):
        zoo.resolve_model("catt")
    with pytest.raises(zoo.ModelNameError, match="no vae model of 'everything'"):
        zoo.resolve_model("everything.vae")
    with pytest.raises(ModelFileError, match="catt: no such file or folder, and 'catt' is not"):
        load_model("catt")
    assert server.requests == []


def test_no_network_and_unwritable_cache(monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SKETCHRNN_MODELS_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(zoo.ModelDownloadError, match="model cat.gen: http://127.0.0.1:.*cannot"):
        zoo.resolve_model("cat")
    assert list((tmp_path / "cache").iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(blocker))
    with pytest.raises(zoo.ModelDownloadError, match="cache folder .* is not writable"):
        zoo.resolve_model("cat")


# ----------------------------------------------------------------------------- CLI


def test_cli_models_download_list_and_sample(server, capsys, tmp_path):
    assert main(["models", "download", "sheep", "--kind", "both"]) == 0
    assert sorted(p.name for p in server.cache.iterdir()) == ["sheep.gen.json", "sheep.vae.json"]
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in zoo.OFFICIAL_MODELS:
        assert f"  {name} " in out or out.endswith(f"  {name}\n") or f"  {name}\n" in out
    assert "cached: gen,vae" in out and "built-in models" in out
    assert main(["models", "download", "nope"]) == 2
    assert "'nope' is not a model" in capsys.readouterr().err
    svg = tmp_path / "s.svg"
    assert main(["sample", "bicycle", "--n", "2", "--seed", "0", "--out", str(svg)]) == 0
    assert svg.is_file() and "downloading model bicycle.gen" in capsys.readouterr().err


def test_cli_export(tmp_path, capsys):
    vae, gen = _toy(True), _toy(False)
    vae.save_pretrained(tmp_path / "vae")
    gen.save_pretrained(tmp_path / "gen")
    assert main(["export", str(tmp_path / "vae"), str(tmp_path / "v.vae.json")]) == 0
    assert load_model(tmp_path / "v.vae.json").has_encoder
    assert main(["export", str(tmp_path / "gen"), str(tmp_path / "g.gen.json")]) == 0
    assert not load_model(tmp_path / "g.gen.json").has_encoder
    capsys.readouterr()
    assert main(["export", str(tmp_path / "vae"), str(tmp_path / "x.gen.json")]) == 2
    assert "the model is a VAE: the output file must end in .vae.json" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "gen"), str(tmp_path / "x.json")]) == 2
    assert "must end in .gen.json" in capsys.readouterr().err
    _toy(True, cell="layernorm").save_pretrained(tmp_path / "ln")
    assert main(["export", str(tmp_path / "ln"), str(tmp_path / "x.vae.json")]) == 2
    err = capsys.readouterr().err
    assert "its cell is 'layernorm'" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("x*"))


def test_a_bare_official_name_counts_as_a_magenta_model_for_the_input_defaults(tmp_path):
    """``evaluate cat`` and ``sample cat`` take the magenta defaults (fit inputs to the model's
    size, raw ndjson read as sketch-rnn's files), as ``cat.gen.json`` does; built-in models
    and unknown names do not."""
    from sketchrnn.evaluate import resolve_raw_ndjson
    from sketchrnn.generate import input_scale_factor
    from sketchrnn.models import is_magenta_json_model

    assert is_magenta_json_model("cat") and is_magenta_json_model("cat.vae")
    assert not is_magenta_json_model("shapes_vae") and not is_magenta_json_model("no_such_cat")
    (tmp_path / "cat").mkdir()  # a folder of that name, where it exists, is a folder
    assert not is_magenta_json_model(tmp_path / "cat")
    model = _toy(conditional=False)
    model.config.scale_factor = 20.0
    assert input_scale_factor(model, "auto", "cat") is None
    assert input_scale_factor(model, "auto", "shapes_gen") == 1.0
    assert resolve_raw_ndjson("auto", "cat.gen") == "sketch-rnn"
    assert resolve_raw_ndjson("auto", "shapes_vae") == "quickdraw"
