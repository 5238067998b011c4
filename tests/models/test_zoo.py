"""The official model collection by name, and ``sketchrnn models`` / ``sketchrnn export``,
against a local HTTP server on 127.0.0.1 in the collection's layout (never the internet)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from helpers import SHARED_DATA

from sketchrnn.cli import main
from sketchrnn.io.files import SketchFileError
from sketchrnn.models import SketchRNN, SketchRNNConfig, load_model, zoo
from sketchrnn.models.conv_vae import ConvVAE, ConvVAEConfig
from sketchrnn.models.magenta import export_magenta_json, magenta_export_problem
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


def test_export_refuses_other_kinds_to_magenta_json(tmp_path, capsys):
    """The magenta.js format holds sketch-rnn models only: the library says so for any other
    kind (:func:`magenta_export_problem`), and so does the command, before writing anything."""
    model = ConvVAE(ConvVAEConfig(z_size=8))
    model.set_units(scale_factor=20.0, classes=["sheep"])
    model.save_pretrained(tmp_path / "cv")
    assert magenta_export_problem(_toy(True)) is None
    assert "cannot export a ConvVAE" in str(magenta_export_problem(model))
    with pytest.raises(SketchFileError, match=r"x\.vae\.json: cannot export a ConvVAE: "):
        export_magenta_json(model, tmp_path / "x.vae.json")
    for out in ("x.vae.json", "x.gen.json"):
        assert main(["export", str(tmp_path / "cv"), str(tmp_path / out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "cannot export a ConvVAE: the magenta.js format holds sketch-rnn models only" in err
        assert len(err.splitlines()) == 1
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


# ----------------------------------------------------------------------------- kinds, limits


@pytest.fixture()
def hostile(tmp_path, monkeypatch):
    """A collection served by :class:`HostileServer`: ``dog.vae.json`` is decoder-only,
    ``owl.gen.json`` a VAE, ``sheep.gen.json`` and ``sheep.vae.json`` what they say."""
    from download_servers import HostileServer

    if not MODELS.is_dir():
        pytest.skip(f"shared data not found: {MODELS} (set SKETCHRNN_SHARED_DATA)")
    export_magenta_json(_toy(True), tmp_path / "toy.vae.json")
    vae = (tmp_path / "toy.vae.json").read_bytes()
    files = {
        "sheep.gen.json": (MODELS / "sheep.gen.json").read_bytes(),
        "sheep.vae.json": vae,
        "dog.vae.json": (MODELS / "dog.gen.json").read_bytes(),
        "owl.gen.json": vae,
    }
    cache = tmp_path / "cache"
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(cache))
    with HostileServer(files) as server:
        monkeypatch.setenv("SKETCHRNN_MODELS_URL", server.url)
        server.cache = cache
        yield server


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dog.vae", r"the file is a decoder-only model, not a VAE \(.vae.json\)"),
        ("owl.gen", r"the file is a VAE, not a decoder-only model \(.gen.json\)"),
    ],
)
def test_a_file_of_the_wrong_kind_is_refused(hostile, capsys, spec, message):
    assert main(["models", "download", spec]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sketchrnn")]
    assert err[-1].startswith(f"sketchrnn: error: model {spec}: {hostile.url}{spec}.json: ")
    assert re.search(message, err[-1]) and len(err) == 2  # the "downloading" line, the error
    assert list(hostile.cache.iterdir()) == []


def test_models_list_calls_each_cached_file_what_it_is(hostile, capsys):
    """A decoder-only file under a VAE's name (left by an older version): not counted as a
    VAE, named for what it is, not picked by a bare name, replaced by ``download``."""
    hostile.cache.mkdir()
    (hostile.cache / "sheep.vae.json").write_bytes(hostile.files["sheep.gen.json"])
    (hostile.cache / "sheep.gen.json").write_bytes(hostile.files["sheep.gen.json"])
    (hostile.cache / "bear.gen.json").write_text("not a model")
    assert zoo.cached_models() == {"sheep": ("gen",)}
    assert main(["models", "list", "--cached"]) == 0
    out = capsys.readouterr().out
    assert "  sheep                    gen,vae  cached: gen\n" in out
    assert "    sheep.vae.json is a decoder-only model, so not counted as vae" in out
    assert "  bear                     gen,vae\n    bear.gen.json is not a sketch-rnn model" in out
    assert "(0 of" not in out and "1 cached in" in out
    assert zoo.resolve_model("sheep") == hostile.cache / "sheep.gen.json"
    assert hostile.requests == []
    assert zoo.download_model("sheep", "vae", quiet=True) == hostile.cache / "sheep.vae.json"
    assert (hostile.cache / "sheep.vae.json").read_bytes() == hostile.files["sheep.vae.json"]
    assert zoo.cached_models() == {"sheep": ("gen", "vae")}


def test_an_endless_model_is_cut_at_its_cap(hostile, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHRNN_MAX_MODEL_BYTES", str(1 << 20))
    hostile.behaviour = "endless"
    assert main(["models", "download", "sheep"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "more than 1.0 MiB arrived, over the limit of 1.0 MiB" in err
    assert "$SKETCHRNN_MAX_MODEL_BYTES raises it" in err
    assert list(hostile.cache.iterdir()) == []


def test_a_trickling_server_stops_models_download(hostile, monkeypatch, capsys):
    monkeypatch.setenv("SKETCHRNN_DOWNLOAD_MIN_RATE", "4000")
    monkeypatch.setenv("SKETCHRNN_DOWNLOAD_RATE_WINDOW_SECONDS", "0.5")
    hostile.behaviour = "trickle"
    began = time.monotonic()
    assert main(["models", "download", "sheep"]) == 2
    assert time.monotonic() - began < 30  # a hang guard, not a timing
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(r"model sheep.gen: http://.*: too slow: .*; run again to resume", err)
    assert [p.name for p in hostile.cache.iterdir()] == ["sheep.gen.json.part"]
    hostile.behaviour = "honest"  # the next run resumes what arrived
    assert main(["models", "download", "sheep"]) == 0
    assert hostile.requests[-1][1].startswith("bytes=")
    assert [p.name for p in hostile.cache.iterdir()] == ["sheep.gen.json"]


def _models_download(cache: Path, url: str, *names: str) -> subprocess.Popen:
    env = {**os.environ, "SKETCHRNN_CACHE_DIR": str(cache), "SKETCHRNN_MODELS_URL": url}
    command = [sys.executable, "-m", "sketchrnn.cli", "models", "download", *names]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


@pytest.mark.slow
def test_two_models_downloads_at_once_both_succeed(hostile):
    """Two ``models download sheep`` processes at once: one fetches, the other waits for it
    (saying so) and finds the file; both exit 0 and print its path."""
    hostile.rate = 1e6  # about three seconds for the 3 MB file
    first = _models_download(hostile.cache, hostile.url, "sheep")
    time.sleep(0.4)
    second = _models_download(hostile.cache, hostile.url, "sheep")
    outs = [p.communicate(timeout=60) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    path = hostile.cache / "sheep.gen.json"
    for out, _ in outs:
        assert out == f"sheep.gen: {path}\n"
    errs = "".join(err for _, err in outs)
    assert "another process is downloading this file; waiting for it" in errs
    assert "error" not in errs
    assert path.read_bytes() == hostile.files["sheep.gen.json"]
    assert [p.name for p in hostile.cache.iterdir()] == ["sheep.gen.json"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_models_download_killed_at_random_moments(hostile, seed):
    import random
    import signal

    rng = random.Random(seed)
    hostile.rate = 3e6
    path = hostile.cache / "sheep.gen.json"
    for behaviour in rng.sample(["honest", "ignore-range", "range-from-zero", "range-lie"], 3):
        hostile.behaviour = behaviour
        proc = _models_download(hostile.cache, hostile.url, "sheep")
        time.sleep(rng.uniform(0.05, 2.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        if path.exists():
            assert path.read_bytes() == hostile.files["sheep.gen.json"], behaviour
            path.unlink()
    proc = _models_download(hostile.cache, hostile.url, "sheep")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert path.read_bytes() == hostile.files["sheep.gen.json"]
    assert [p.name for p in hostile.cache.iterdir()] == ["sheep.gen.json"]
