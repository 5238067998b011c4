"""The inference queue (its jobs stop when their client leaves) and the server's model table;
the streamed completion itself is :func:`sketchrnn.generate.complete_stream`, tested in
tests/test_generate.py."""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
import torch
from helpers import free_port

from sketchrnn.models import SketchRNN, SketchRNNConfig
from sketchrnn.web import server
from sketchrnn.web.inference import InferenceQueue, QueueFull

PREFIX = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 1], [5, 5, 0], [10, -3, 1]], np.float32)


def small_model(cell: str, **kw) -> SketchRNN:
    torch.manual_seed(0)
    config = SketchRNNConfig(
        enc_hidden=8,
        dec_hidden=16,
        z_size=4,
        num_mixtures=2,
        cell=cell,
        max_seq_len=40,
        hyper_hidden=8,
        hyper_embed=4,
        **kw,
    )
    model = SketchRNN(config)
    model.decoder.output.bias.data[:3] = torch.tensor([2.0, 0.0, -3.5])  # draw on
    try:
        model.set_units(scale_factor=10.0)
    except AttributeError:  # before the model interface: a plain attribute
        model.scale_factor = 10.0
    return model.eval()


# ----------------------------------------------------------------------------- the queue


def test_queue_runs_jobs_off_the_loop_and_refuses_when_full():
    async def scenario():
        q = InferenceQueue(workers=1, max_pending=1)
        gate = threading.Event()
        loop_thread = threading.get_ident()
        first = asyncio.ensure_future(q.submit(lambda: (gate.wait(5), threading.get_ident())[1]))
        second = asyncio.ensure_future(q.submit(lambda: "second"))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull, match="busy"):
            await q.submit(lambda: "third")
        gate.set()
        worker_thread = await first
        assert worker_thread != loop_thread
        assert await second == "second"
        with pytest.raises(ZeroDivisionError):
            await q.submit(lambda: 1 / 0)  # a job's error reaches its request only
        assert await q.submit(lambda: "still serving") == "still serving"
        q.close()

    asyncio.run(scenario())


def test_queue_streams_and_cancels():
    async def scenario():
        q = InferenceQueue(workers=1, max_pending=0)
        produced = []

        def make(cancel):
            for i in range(1000):
                if cancel.is_set():
                    return
                produced.append(i)
                yield i
                cancel.wait(0.001)

        stream = q.stream(make)
        got = []
        async for item in stream:
            got.append(item)
            if len(got) == 3:
                stream.cancel()
                break
        for _ in range(100):
            if q.stats()["running"] == 0:
                break
            await asyncio.sleep(0.01)
        assert got == [0, 1, 2] and len(produced) < 1000 and q.stats()["running"] == 0
        q.close()

    asyncio.run(scenario())


# ----------------------------------------------------------------------------- serving


def test_model_names_and_table(tmp_path):
    assert server.model_name("/data/magenta/sheep.gen.json") == "sheep"
    assert server.model_name("runs/cats/checkpoint.pt") == "cats"
    assert server.model_name("runs/cats/") == "cats"
    assert server.model_name("my cat=runs/cats") == "my cat"
    small_model("lstm").save_pretrained(tmp_path / "a")
    table = server.load_models([str(tmp_path / "a"), f"b={tmp_path / 'a'}", str(tmp_path / "a")])
    assert list(table) == ["a", "b", "a-2"]


def test_default_models_reads_the_cache(tmp_path, monkeypatch):
    # The one model cache of `sketchrnn models` (zoo.models_cache_dir): $SKETCHRNN_CACHE_DIR
    # is the models folder itself, $SKETCHRNN_CACHE the folder above it.
    monkeypatch.delenv("SKETCHRNN_CACHE_DIR", raising=False)
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path))
    assert server.default_models() == list(server.BUILTIN_MODELS)
    small_model("lstm").save_pretrained(tmp_path / "models" / "shapes")
    (tmp_path / "models" / "notes.txt").write_text("not a model")
    assert server.default_models()[-1] == str(tmp_path / "models" / "shapes")
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path / "models"))
    assert server.default_models()[-1] == str(tmp_path / "models" / "shapes")


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert server.is_loopback(host) is loopback


def test_serve_prints_the_url_and_warns_off_loopback(tmp_path, monkeypatch):
    pytest.importorskip("uvicorn")
    import uvicorn

    small_model("lstm").save_pretrained(tmp_path / "shapes")
    ran = []

    def run(self, sockets=None):
        ran.append((self.config.host, sockets[0].getsockname()[1]))

    monkeypatch.setattr(uvicorn.Server, "run", run)
    port = free_port()
    out = io.StringIO()
    server.serve([str(tmp_path / "shapes")], host="127.0.0.1", port=port, out=out, torch_threads=1)
    assert f"http://127.0.0.1:{port}/" in out.getvalue() and "WARNING" not in out.getvalue()
    out = io.StringIO()
    server.serve([str(tmp_path / "shapes")], host="0.0.0.0", port=port, out=out, torch_threads=1)
    assert "WARNING" in out.getvalue() and ran == [("127.0.0.1", port), ("0.0.0.0", port)]
    assert "--allow-host" in out.getvalue()  # visitors must be let in by name


def test_serve_on_port_0_prints_the_port_it_bound(tmp_path, monkeypatch):
    pytest.importorskip("uvicorn")
    import uvicorn

    small_model("lstm").save_pretrained(tmp_path / "shapes")
    bound = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets: bound.append(sockets[0].getsockname()[1])
    )
    out = io.StringIO()
    server.serve([str(tmp_path / "shapes")], port=0, out=out, torch_threads=1)
    assert bound[0] > 0 and f"http://127.0.0.1:{bound[0]}/" in out.getvalue()


def test_serve_refuses_a_taken_port_and_too_many_workers(tmp_path):
    pytest.importorskip("uvicorn")
    import socket

    small_model("lstm").save_pretrained(tmp_path / "shapes")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"cannot listen on 127.0.0.1 port {port}"):
            server.serve([str(tmp_path / "shapes")], port=port, out=io.StringIO())
    for workers in (0, server.MAX_WORKERS + 1):
        with pytest.raises(ValueError, match="workers must be between 1 and"):
            server.serve([str(tmp_path / "shapes")], workers=workers, out=io.StringIO())


def test_serve_without_models_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(server, "BUILTIN_MODELS", [])
    with pytest.raises(SystemExit, match="no models to serve"):
        server.serve([], out=io.StringIO())
