"""The streamed completion, the inference queue and the server's model table."""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
import torch

from sketchrnn import generate, strokes
from sketchrnn.models import SketchRNN, SketchRNNConfig
from sketchrnn.web import drawing, server, streaming
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


@pytest.mark.parametrize("cell", ["lstm", "layernorm", "hyper"])
@pytest.mark.parametrize("conditional", [True, False])
def test_prime_reads_a_prefix_like_single_steps(cell, conditional):
    model = small_model(cell, conditional=conditional, num_classes=2, class_embed_size=3)
    rows = torch.from_numpy(strokes.stroke3_to_stroke5(PREFIX / 10, n_max=len(PREFIX)))
    inputs = torch.cat([torch.from_numpy(strokes.START_TOKEN)[None], rows])
    z = torch.randn(1, 4) if conditional else None
    labels = torch.tensor([1])
    with torch.no_grad():
        fast = model.read_prefix(inputs[None], model.initial_state(z, 1), z=z, labels=labels)
        slow = model.initial_state(z, 1)
        for row in inputs:
            _, slow = model.decode_step(row[None], slow, z=z, labels=labels)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("conditional", [True, False])
def test_stream_is_the_same_ending_as_complete(conditional):
    model = small_model("layernorm", conditional=conditional)
    streamed = list(streaming.stream_ending(model, PREFIX, temperature=0.4, seed=3))
    assert streamed and all(s[-1, 2] == 1 for s in streamed)
    ending = generate.complete(model, PREFIX, 1, 0.4, seed=3)[0][len(PREFIX) :]
    ending[-1, 2] = 1
    np.testing.assert_allclose(np.concatenate(streamed), ending, atol=1e-5)  # one decoding loop


def test_stream_stops_when_cancelled():
    model = small_model("lstm", conditional=False)
    steps = []

    def cancelled():
        steps.append(1)
        return len(steps) > 5

    out = list(streaming.stream_ending(model, PREFIX, seed=0, cancelled=cancelled))
    assert len(steps) == 6 and sum(len(s) for s in out) <= 5


def test_stream_refuses_a_prefix_without_room():
    model = small_model("lstm", conditional=False)
    long = np.tile(PREFIX, (8, 1))  # 40 points, max_seq_len 40
    with pytest.raises(ValueError, match="room for an ending"):
        next(streaming.stream_ending(model, long))


def test_prepare_scales_moves_and_simplifies():
    served = drawing.ServedModel("m", small_model("lstm"))
    dense = np.array([[50, 60, 0]] + [[1, 0, 0]] * 99 + [[1, 0, 1]], np.float32)
    out = drawing.prepare(served, dense, 2.0)
    np.testing.assert_allclose(out, [[0, 0, 0], [200, 0, 1]])


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
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path))
    assert server.default_models() == list(server.BUILTIN_MODELS)
    small_model("lstm").save_pretrained(tmp_path / "models" / "shapes")
    (tmp_path / "models" / "notes.txt").write_text("not a model")
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
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: ran.append(self.config.host))
    out = io.StringIO()
    server.serve([str(tmp_path / "shapes")], host="127.0.0.1", port=8123, out=out, torch_threads=1)
    assert "http://127.0.0.1:8123/" in out.getvalue() and "WARNING" not in out.getvalue()
    out = io.StringIO()
    server.serve([str(tmp_path / "shapes")], host="0.0.0.0", port=8123, out=out, torch_threads=1)
    assert "WARNING" in out.getvalue() and ran == ["127.0.0.1", "0.0.0.0"]


def test_serve_without_models_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHRNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(server, "BUILTIN_MODELS", [])
    with pytest.raises(SystemExit, match="no models to serve"):
        server.serve([], out=io.StringIO())
