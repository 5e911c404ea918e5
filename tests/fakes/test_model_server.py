"""Tests for the fake OpenAI-compatible server, using plain httpx."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.model_server import (
    Completion,
    FakeModelServer,
    SlowHeaders,
    Stream,
    completion,
    drop,
    error,
    garbled,
    hang,
    script_from_dict,
    slow_headers,
    stream,
    think_stream,
)

MODEL = "Qwen/QwQ-32B"
AUTH = {"Authorization": "Bearer test-key"}
REPO_ROOT = Path(__file__).resolve().parents[2]


def body(*, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hello there, model"}],
        "stream": stream,
        **extra,
    }


def parse_events(text: str) -> list[str]:
    """Return the `data:` payloads of an SSE body, in order."""
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            events.append(block[len("data: ") :])
    return events


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as s:
        yield s


@pytest.fixture
def client(server: FakeModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=5) as c:
        yield c


# --------------------------------------------------------------------------- streaming


def test_stream_chunks_arrive_separately_with_envelope_and_done(
    server: FakeModelServer, client: httpx.Client
) -> None:
    server.enqueue(stream([{"role": "assistant"}, "Hel", "lo", {"reasoning_content": "hmm"}]))
    with client.stream("POST", "/chat/completions", json=body()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["transfer-encoding"] == "chunked"
        raw_pieces = [piece.decode() for piece in r.iter_raw()]

    # every write is its own HTTP chunk -> its own read on the client side
    for piece in raw_pieces:
        assert piece.startswith("data: ") and piece.endswith("\n\n")
        assert piece.count("data: ") == 1
    events = parse_events("".join(raw_pieces))
    assert len(raw_pieces) == len(events) == 6
    assert events[-1] == "[DONE]"

    chunks = [json.loads(e) for e in events[:-1]]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert c["model"] == MODEL
        assert isinstance(c["created"], int)
        assert "usage" not in c  # only present when include_usage was requested
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant"},
        {"content": "Hel"},
        {"content": "lo"},
        {"reasoning_content": "hmm"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 4 + ["stop"]
    assert all(c["choices"][0]["index"] == 0 for c in chunks)


def test_stream_field_and_finish_reason(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(stream(["a", "b"], field="reasoning", finish_reason="length"))
    r = client.post("/chat/completions", json=body())
    chunks = [json.loads(e) for e in parse_events(r.text)[:-1]]
    assert [c["choices"][0]["delta"] for c in chunks] == [{"reasoning": "a"}, {"reasoning": "b"}, {}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_include_usage_chunk_computed(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(stream(["12345678"]))
    r = client.post("/chat/completions", json=body(stream_options={"include_usage": True}))
    events = parse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    # like OpenAI: every chunk has "usage": null except the final usage chunk
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == []
    assert last["object"] == "chat.completion.chunk"
    usage = last["usage"]
    assert usage["completion_tokens"] == 2
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_explicit_usage_sent_even_if_not_requested(server: FakeModelServer, client: httpx.Client) -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    server.enqueue(stream(["x"], usage=usage))
    r = client.post("/chat/completions", json=body())
    chunks = [json.loads(e) for e in parse_events(r.text)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage


@pytest.mark.asyncio
async def test_async_client_think_stream(server: FakeModelServer) -> None:
    server.enqueue(think_stream("Let me think.", "Hi!", chunk_size=5))
    server.enqueue(think_stream("Hmm.", "Yo", opening_tag=False, chunk_size=3, chunk_delay=0.01))
    texts = []
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=5) as c:
        for _ in range(2):
            async with c.stream("POST", "/chat/completions", json=body()) as r:
                assert r.status_code == 200
                raw = [piece async for piece in r.aiter_raw()]
            events = parse_events(b"".join(raw).decode())
            assert len(raw) == len(events)
            assert events[-1] == "[DONE]"
            chunks = [json.loads(e) for e in events[:-1]]
            pieces = [ch["choices"][0]["delta"].get("content", "") for ch in chunks]
            assert all(len(p) <= 5 for p in pieces)
            texts.append("".join(pieces))
    assert texts == ["<think>\nLet me think.\n</think>\n\nHi!", "Hmm.\n</think>\n\nYo"]


# --------------------------------------------------------------------------- auth & model


def test_bad_or_missing_key_is_401_and_keeps_script(server: FakeModelServer) -> None:
    server.enqueue(stream(["ok"]))
    expected = {
        "error": {
            "message": "Invalid API key",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    for headers in ({"Authorization": "Bearer wrong"}, {}):
        r = httpx.post(f"{server.base_url}/chat/completions", json=body(), headers=headers)
        assert r.status_code == 401
        assert r.json() == expected
    r = httpx.get(f"{server.base_url}/models")
    assert r.status_code == 401
    assert server.pending == 1
    r = httpx.post(f"{server.base_url}/chat/completions", json=body(), headers=AUTH)
    assert r.status_code == 200 and server.pending == 0


def test_no_api_key_accepts_anything() -> None:
    with FakeModelServer(api_key=None, model="m") as s:
        s.default = completion("ok")
        r = httpx.post(
            f"{s.base_url}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 200
        assert r.json()["choices"][0]["message"]["content"] == "ok"


def test_wrong_model_is_404_and_keeps_script(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(stream(["ok"]))
    r = client.post("/chat/completions", json={**body(), "model": "gpt-4o"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "The model `gpt-4o` does not exist"
    assert server.pending == 1
    # malformed requests are 400 and keep the script too
    assert client.post("/chat/completions", content=b"{nope").status_code == 400
    assert client.post("/chat/completions", json={"messages": []}).status_code == 400
    assert client.post("/chat/completions", json={"model": MODEL}).status_code == 400
    assert server.pending == 1


def test_models_route(client: httpx.Client) -> None:
    r = client.get("/models")
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == [MODEL]


# --------------------------------------------------------------------------- other scripts


def test_error_scripts(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(
        error(429, {"error": {"message": "Slow down"}}, headers={"Retry-After": "1"}),
        error(403, {"message": "Insufficient credits", "statusCode": 403}),
        error(502, "<html><body>Bad Gateway</body></html>"),
        error(500),
        error(503, "upstream overloaded"),
    )
    r = client.post("/chat/completions", json=body())
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": {"message": "Slow down"}}

    r = client.post("/chat/completions", json=body())
    assert r.status_code == 403
    assert r.json() == {"message": "Insufficient credits", "statusCode": 403}

    r = client.post("/chat/completions", json=body())
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == "<html><body>Bad Gateway</body></html>"

    r = client.post("/chat/completions", json=body())
    assert r.status_code == 500
    assert r.json()["error"]["message"] == "Internal Server Error"

    r = client.post("/chat/completions", json=body())
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "upstream overloaded"


def test_completion_scripts(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(
        completion("Answer", reasoning_content="Thinking", finish_reason="length"),
        completion("Ignored stream flag"),
        stream([{"role": "assistant"}, "Hel", "lo", {"reasoning": "r"}]),
    )
    r = client.post("/chat/completions", json=body(stream=False))
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == MODEL
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Answer",
        "reasoning_content": "Thinking",
    }
    assert set(data["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}

    # a server that ignores stream: true and answers with JSON
    r = client.post("/chat/completions", json=body(stream=True))
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["choices"][0]["message"]["content"] == "Ignored stream flag"

    # a stream script answering a non-streaming request is aggregated
    r = client.post("/chat/completions", json=body(stream=False))
    message = r.json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Hello", "reasoning": "r"}


def test_garbled_lines_sent_verbatim(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(garbled(["data: {not json", ": comment", "data: [DONE]\n\n"]))
    r = client.post("/chat/completions", json=body())
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    assert r.text == "data: {not json\n\n: comment\n\ndata: [DONE]\n\n"


def test_drop_is_a_transport_error_after_parts(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(drop(["partial ", "answer"]))
    received: list[bytes] = []
    with (
        pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
        client.stream("POST", "/chat/completions", json=body()) as r,
    ):
        assert r.status_code == 200
        for piece in r.iter_raw():
            received.append(piece)
    events = parse_events(b"".join(received).decode())
    contents = [json.loads(e)["choices"][0]["delta"]["content"] for e in events]
    assert contents == ["partial ", "answer"]
    # the server survives and serves the next request
    server.enqueue(stream(["again"]))
    assert parse_events(client.post("/chat/completions", json=body()).text)[-1] == "[DONE]"


@pytest.mark.asyncio
async def test_drop_async(server: FakeModelServer) -> None:
    server.enqueue(drop(["x"]))
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=5) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            async with c.stream("POST", "/chat/completions", json=body()) as r:
                async for _ in r.aiter_lines():
                    pass


def test_hang_times_out_then_clean_eof(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(hang(["thinking..."], seconds=30), hang(["x"], seconds=0.2))
    lines: list[str] = []
    start = time.monotonic()
    with (
        pytest.raises(httpx.ReadTimeout),
        client.stream("POST", "/chat/completions", json=body(), timeout=httpx.Timeout(5, read=0.3)) as r,
    ):
        for line in r.iter_lines():
            lines.append(line)
    assert time.monotonic() - start < 5
    assert lines[0].startswith("data: ") and "thinking..." in lines[0]

    # a short hang ends with a clean EOF: no finish chunk, no [DONE]
    r = client.post("/chat/completions", json=body())
    events = parse_events(r.text)
    assert len(events) == 1
    assert json.loads(events[0])["choices"][0]["finish_reason"] is None


def test_slow_headers(server: FakeModelServer, client: httpx.Client) -> None:
    server.enqueue(slow_headers(1.0, stream(["late"])), slow_headers(0.1, completion("ok")))
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=body(), timeout=httpx.Timeout(5, read=0.2))
    r = client.post("/chat/completions", json=body())
    assert r.json()["choices"][0]["message"]["content"] == "ok"


def test_fifo_default_and_empty_queue(server: FakeModelServer, client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body(stream=False))
    assert r.status_code == 500
    assert "no scripted response" in r.json()["error"]["message"]

    server.enqueue(completion("one"), completion("two"))
    server.enqueue(completion("three"))
    server.default = completion("default")
    got = [
        client.post("/chat/completions", json=body(stream=False)).json()["choices"][0]["message"]["content"]
        for _ in range(5)
    ]
    assert got == ["one", "two", "three", "default", "default"]


def test_requests_are_recorded(server: FakeModelServer, client: httpx.Client) -> None:
    server.default = stream(["x"])
    client.post("/chat/completions", json=body(temperature=0.6), headers={"X-Custom": "Yes"})
    client.get("/models")
    httpx.post(f"{server.base_url}/chat/completions", json=body())  # 401, still recorded
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ]
    first = server.requests[0]
    assert first.headers["authorization"] == "Bearer test-key"
    assert first.headers["x-custom"] == "Yes"
    assert all(k == k.lower() for k in first.headers)
    assert first.json == body(temperature=0.6)
    assert server.requests[1].json is None
    assert "authorization" not in server.requests[2].headers


@pytest.mark.asyncio
async def test_requests_recorded_concurrently(server: FakeModelServer) -> None:
    import asyncio

    server.default = stream(["a", "b"], chunk_delay=0.01)
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=5) as c:
        rs = await asyncio.gather(*(c.post("/chat/completions", json=body(n=i)) for i in range(10)))
    assert all(r.status_code == 200 for r in rs)
    assert sorted(r.json["n"] for r in server.requests if r.json is not None) == list(range(10))


# --------------------------------------------------------------------------- robustness


def test_client_disconnect_mid_stream_is_harmless(
    server: FakeModelServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.enqueue(stream([f"p{i}" for i in range(20)], chunk_delay=0.02))
    with client.stream("POST", "/chat/completions", json=body()) as r:
        it = r.iter_lines()
        assert next(it).startswith("data: ")
    time.sleep(0.6)  # let the server notice while still writing chunks
    server.enqueue(stream(["fine"]))
    r = client.post("/chat/completions", json=body())
    assert parse_events(r.text)[-1] == "[DONE]"
    problems = [
        rec
        for rec in caplog.records
        if rec.levelno >= logging.WARNING and rec.name.startswith(("aiohttp", "asyncio"))
    ]
    assert problems == []


def test_stop_is_quick_with_hanging_response() -> None:
    s = FakeModelServer().start()
    s.enqueue(hang(["x"], seconds=60))
    outcome: list[BaseException | None] = []

    def consume() -> None:
        try:
            with httpx.stream(
                "POST", f"{s.base_url}/chat/completions", json=body(), headers=AUTH, timeout=30
            ) as r:
                for _ in r.iter_raw():
                    pass
            outcome.append(None)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 5
    while not s.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    start = time.monotonic()
    s.stop()
    assert time.monotonic() - start < 2
    t.join(timeout=5)
    assert not t.is_alive()
    assert len(outcome) == 1  # the client got an error or an EOF, not a 30 s wait
    s.stop()  # idempotent


def test_restart_and_properties() -> None:
    s = FakeModelServer(model="other")
    with pytest.raises(RuntimeError):
        _ = s.base_url
    with s:
        assert s.base_url.startswith("http://127.0.0.1:") and s.base_url.endswith("/v1")
        assert s.base_url == f"http://127.0.0.1:{s.port}/v1"
        with pytest.raises(RuntimeError):
            s.start()


# --------------------------------------------------------------------------- script_from_dict / CLI


def test_script_from_dict() -> None:
    assert script_from_dict({"kind": "stream", "parts": ["a", {"reasoning_content": "b"}]}) == (
        stream(["a", {"reasoning_content": "b"}])
    )
    s = script_from_dict({"kind": "think_stream", "reasoning": "r", "answer": "a"})
    assert isinstance(s, Stream) and "".join(map(str, s.parts)) == "<think>\nr\n</think>\n\na"
    assert script_from_dict({"kind": "completion", "content": "c", "reasoning": "r"}) == (
        Completion("c", reasoning="r")
    )
    assert script_from_dict(
        {"kind": "error", "status": 429, "body": {"a": 1}, "headers": {"Retry-After": "1"}}
    ) == error(429, {"a": 1}, {"Retry-After": "1"})
    assert script_from_dict({"kind": "garbled", "lines": ["x"]}) == garbled(["x"])
    assert script_from_dict({"kind": "hang", "after_parts": ["a"], "seconds": 1}) == hang(["a"], 1)
    assert script_from_dict({"kind": "drop", "after_parts": ["a"]}) == drop(["a"])
    nested = script_from_dict(
        {"kind": "slow_headers", "seconds": 2, "then": {"kind": "completion", "content": "x"}}
    )
    assert nested == SlowHeaders(2.0, completion("x"))
    with pytest.raises(ValueError):
        script_from_dict({"kind": "nope"})


def test_cli_subprocess(tmp_path: Path) -> None:
    script_file = tmp_path / "scripts.json"
    script_file.write_text(
        json.dumps(
            [
                {"kind": "stream", "parts": ["Hi", " there"], "usage": None},
                {"kind": "error", "status": 429, "headers": {"Retry-After": "1"}},
            ]
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.model_server", "--script", str(script_file)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=5) as c:
            r = c.post("/chat/completions", json=body())
            events = parse_events(r.text)
            assert events[-1] == "[DONE]"
            assert json.loads(events[0])["choices"][0]["delta"] == {"content": "Hi"}
            r = c.post("/chat/completions", json=body())
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert c.post("/chat/completions", json=body()).status_code == 500
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


@pytest.mark.asyncio
async def test_httpx_sse_sees_events_and_drop(server: FakeModelServer) -> None:
    httpx_sse = pytest.importorskip("httpx_sse")
    server.enqueue(think_stream("r", "a", chunk_size=4), drop(["x"]))
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=5) as c:
        async with httpx_sse.aconnect_sse(c, "POST", "/chat/completions", json=body()) as es:
            data = [sse.data async for sse in es.aiter_sse()]
        assert data[-1] == "[DONE]"
        text = "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for d in data[:-1])
        assert text == "<think>\nr\n</think>\n\na"
        with pytest.raises(httpx.RemoteProtocolError):
            async with httpx_sse.aconnect_sse(c, "POST", "/chat/completions", json=body()) as es:
                async for _ in es.aiter_sse():
                    pass


# --------------------------------------------------------------------------- context window


def test_a_context_window_counts_prompts_exactly_and_refuses_overflows(
        server: FakeModelServer, client: httpx.Client) -> None:
    from tests.fakes import chatml

    server.context_window = 100
    server.default = completion("ok")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1700000000.000100"}]
    exact = chatml.prompt_tokens(messages)
    # the contents, 5 tokens of framing for each of the two messages, 5 for the reply's opening
    assert exact == chatml.count("Be brief.") + chatml.count("1700000000.000100") + 3 * 5
    fits = client.post("/chat/completions", json=body(stream=False, messages=messages,
                                                      max_tokens=100 - exact))
    assert fits.status_code == 200 and fits.json()["usage"]["prompt_tokens"] == exact
    refused = client.post("/chat/completions", json=body(stream=False, messages=messages,
                                                         max_tokens=101 - exact))
    assert refused.status_code == 400
    assert refused.json() == {
        "object": "error", "type": "BadRequestError", "param": None, "code": 400,
        "message": f"This model's maximum context length is 100 tokens. However, you requested 101 tokens "
                   f"({exact} in the messages, {101 - exact} in the completion). Please reduce the length "
                   "of the messages or completion."}
    assert server.prompt_counts == [exact, exact]
    server.overflow_style = "openai"
    server.context_window = exact - 1
    openai = client.post("/chat/completions", json=body(stream=False, messages=messages)).json()["error"]
    assert openai["code"] == "context_length_exceeded"
    assert openai["message"].startswith(f"This model's maximum context length is {exact - 1} tokens. "
                                        f"However, your messages resulted in {exact} tokens.")
    server.overflow_style = "aimlapi"
    aimlapi = client.post("/chat/completions", json=body(stream=False, messages=messages)).json()
    assert aimlapi["statusCode"] == 400 and "maximum context length" in aimlapi["message"]


def test_added_tokens_in_text_count_one_each_as_a_server_reads_them() -> None:
    from tests.fakes import chatml

    assert chatml.count("<think>") == 1 and chatml.count("<|im_end|>") == 1
    assert chatml.render([{"role": "assistant", "content": "<think>\nhmm\n</think>\n\nAnswer."}]) == (
        "<|im_start|>assistant\nAnswer.<|im_end|>\n<|im_start|>assistant\n<think>\n")
