"""HTTP behaviour every service shares (src/http/server.cpp): error shape, 405, correlation ids,
keep-alive, limits and timeouts, and clients that misbehave on purpose."""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import threading
import time

import pytest

from conftest import http_get, http_request

MAX_BODY = 4096
HEADER_TIMEOUT_MS = 500


@pytest.fixture
def server(inkwell):
    """The auth service alone (it has a database, so /health does real work), with a small body
    limit and a short header timeout."""
    return inkwell.serve("--services=auth", INKWELL_MAX_BODY_BYTES=MAX_BODY,
                         INKWELL_HEADER_TIMEOUT_MS=HEADER_TIMEOUT_MS)


@pytest.fixture
def port(server):
    return server.port("auth")


def assert_healthy(server):
    assert server.alive(), f"the server died\n{server.describe()}"
    response = http_get(server.port("auth"), "/health", timeout=5)
    assert response.status == 200, response


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def exchange(port: int, data: bytes, timeout: float = 5.0, shut_write: bool = False):
    """Sends data (tolerating the server closing early), then reads until the server closes.
    Returns (bytes received, how it ended: "eof", "reset" or "timeout")."""
    with connect(port, timeout) as s:
        try:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:  # the server may answer and close (or reset) before we finish
            pass
        return read_until_closed(s, timeout)


def read_until_closed(s: socket.socket, timeout: float):
    received = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return received, "timeout"
        s.settimeout(remaining)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return received, "timeout"
        except ConnectionResetError:
            return received, "reset"
        if not chunk:
            return received, "eof"
        received += chunk


def status_of(raw: bytes) -> int | None:
    if not raw.startswith(b"HTTP/1."):
        return None
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else b""


# --- 6. HTTP behaviour -----------------------------------------------------------------------


def test_unknown_path_is_a_json_404(port):
    response = http_get(port, "/no/such/path")
    assert response.status == 404
    assert response.header("Content-Type").startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == "not_found"
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["correlationId"], str) and error["correlationId"]
    assert error["details"] == {}


def test_wrong_method_is_405_with_allow(port):
    response = http_request(port, "POST", "/health", body=b"{}",
                            headers={"Content-Type": "application/json"})
    assert response.status == 405, response
    assert "GET" in [m.strip() for m in (response.header("Allow") or "").split(",")], (
        response.headers)
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["correlationId"] == response.header("X-Correlation-Id")


def test_correlation_id_is_echoed_or_generated(port):
    sent = "it-test-0123456789abcdef"
    echoed = http_get(port, "/health", headers={"X-Correlation-Id": sent})
    assert echoed.status == 200
    assert echoed.header("X-Correlation-Id") == sent

    error = http_get(port, "/nowhere", headers={"X-Correlation-Id": sent})
    assert error.header("X-Correlation-Id") == sent
    assert error.json()["error"]["correlationId"] == sent

    generated = http_get(port, "/nowhere")
    header = generated.header("X-Correlation-Id")
    assert header and len(header) >= 8
    assert generated.json()["error"]["correlationId"] == header
    another = http_get(port, "/nowhere").header("X-Correlation-Id")
    assert another and another != header, "each request needs its own correlation id"

    # An id that could inject into logs or headers is replaced, not echoed.
    hostile = "x" * 500
    replaced = http_get(port, "/health", headers={"X-Correlation-Id": hostile})
    assert replaced.status == 200
    assert replaced.header("X-Correlation-Id") not in (None, "", hostile)


def test_keep_alive_serves_100_requests_on_one_connection(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.connect()
        sock = conn.sock
        for i in range(100):
            path = "/health" if i % 2 == 0 else "/version"
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (i, response.status)
            assert (response.getheader("Connection") or "").lower() != "close", i
            assert conn.sock is sock, f"the connection was re-opened at request {i}"
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(port):
    requests = b"".join(
        f"GET {p} HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: pipe-{i}\r\n\r\n".encode()
        for i, p in enumerate(["/version", "/health", "/nope"]))
    requests += b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw, ended = exchange(port, requests)
    assert ended == "eof", ended
    # Bodies have no trailing newline: the next status line follows the last body byte.
    statuses = [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]
    assert statuses == [200, 200, 404, 200], raw[:2000]
    ids = re.findall(rb"(?im)^x-correlation-id: *([^\r]*)\r$", raw)
    assert ids[:3] == [b"pipe-0", b"pipe-1", b"pipe-2"], ids


def test_body_limit_boundary(port):
    at_limit = http_request(port, "POST", "/health", body=b"a" * MAX_BODY)
    assert at_limit.status == 405, f"a body of exactly the limit must be read: {at_limit}"
    over = http_request(port, "POST", "/health", body=b"a" * (MAX_BODY + 1))
    assert over.status == 413, over
    assert over.json()["error"]["code"] == "payload_too_large"


# --- 7. hostile clients ----------------------------------------------------------------------


def test_garbage_bytes_get_400_or_a_closed_connection(server, port):
    rng = random.Random(1234)
    payloads = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (1, 17, 512, 8192)]
    payloads += [
        b"\x00" * 2048,
        b"\r\n\r\n\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + bytes(rng.getrandbits(8) for _ in range(300)) + b"\r\n\r\n",
        b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
        b"GET /health HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"GET /health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"GET \x7f\x01\x02 HTTP/1.1\r\n\r\n",
    ]
    for payload in payloads:
        raw, ended = exchange(port, payload, timeout=3, shut_write=True)
        assert ended in ("eof", "reset"), f"connection left open after {payload[:40]!r}"
        status = status_of(raw)
        assert raw == b"" or status == 400, f"{payload[:40]!r} -> {raw[:200]!r}"
        if status == 400:
            assert json.loads(body_of(raw))["error"]["code"] == "bad_request"
        assert_healthy(server)


def test_absurd_method(server, port):
    for method in (b"X" * 4000, b"FROBNICATE", b"GET\x00"):
        raw, ended = exchange(port, method + b" /health HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
        status = status_of(raw)
        assert raw == b"" or status in (400, 405, 501), f"{method[:20]!r}: {raw[:200]!r}"
        if status == 405:
            assert b"allow: GET" in raw.lower() or b"allow: get" in raw.lower()
        assert_healthy(server)


@pytest.mark.parametrize("shape", ["one-big-header", "many-headers"])
def test_headers_over_16k_get_431(server, port, shape):
    if shape == "one-big-header":
        headers = b"X-Big: " + b"a" * (17 * 1024) + b"\r\n"
    else:
        headers = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(200))
    raw, ended = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_of(raw) == 431, raw[:300]
    assert json.loads(body_of(raw))["error"]["code"] == "headers_too_large"
    assert ended in ("eof", "reset")
    assert_healthy(server)


def test_body_over_limit_with_content_length_gets_413(server, port):
    head = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n" \
           b"Content-Length: 100000\r\n\r\n"
    raw, ended = exchange(port, head + b"z" * 100000)
    assert status_of(raw) == 413, (raw[:300], ended)
    assert json.loads(body_of(raw))["error"]["code"] == "payload_too_large"
    assert_healthy(server)


def test_chunked_body_over_limit_gets_413_or_closed(server, port):
    chunk = b"z" * 1000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
    head = b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw, ended = exchange(port, head + body)
    assert raw == b"" or status_of(raw) == 413, raw[:300]
    assert ended in ("eof", "reset"), "the connection must not stay open after an oversized body"
    assert_healthy(server)


def test_slowloris_is_disconnected_after_the_header_timeout(server, port):
    with connect(port) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        raw, ended = read_until_closed(s, timeout=3)
        elapsed = time.monotonic() - started
    assert ended in ("eof", "reset"), f"still connected after {elapsed:.1f}s"
    assert elapsed >= HEADER_TIMEOUT_MS / 1000 * 0.8, f"closed too early ({elapsed:.2f}s)"
    assert status_of(raw) in (None, 408), raw[:200]
    assert_healthy(server)


def test_slow_drip_of_header_bytes_is_disconnected_too(server, port):
    """One byte every 100 ms never lets a read time out: the header deadline must be total."""
    with connect(port) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 3:
            try:
                s.sendall(b"X")
                s.settimeout(0.1)  # the pace of the drip
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        elapsed = time.monotonic() - started
    assert closed, "a client dripping header bytes kept its connection for 3 s"
    assert elapsed < 3
    assert_healthy(server)


def test_idle_connections_do_not_block_a_normal_request(server, port):
    idle = []
    try:
        for _ in range(200):
            idle.append(connect(port))
        started = time.monotonic()
        response = http_get(port, "/health", timeout=3)
        assert response.status == 200
        assert time.monotonic() - started < 2
    finally:
        for s in idle:
            s.close()
    assert_healthy(server)


def test_clients_that_close_without_reading(server, port):
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(60):
        s = connect(port)
        if i % 3 == 1:  # many pipelined requests, then gone
            s.sendall(request * 50)
        else:
            s.sendall(request)
        if i % 3 == 2:  # abortive close: RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    # A client that uploads part of a body and vanishes.
    s = connect(port)
    s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + b"a" * 100)
    s.close()
    assert_healthy(server)


def test_many_concurrent_clients(server, port):
    failures = []

    def client():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for _ in range(20):
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(response.status)
            conn.close()
        except Exception as error:  # noqa: BLE001 - any failure is reported
            failures.append(repr(error))

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures, failures[:5]
    assert_healthy(server)


def test_http_1_0_request_is_answered_and_closed(port):
    raw, ended = exchange(port, b"GET /health HTTP/1.0\r\n\r\n")
    assert status_of(raw) == 200, raw[:200]
    assert ended == "eof"


def test_rejected_request_keeps_the_callers_correlation_id(server, port):
    """A 413 decided from the headers still belongs to the request: the caller's
    X-Correlation-Id comes back in the header and the body, as for every other error."""
    head = (b"POST /health HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: big-upload-1\r\n"
            b"Content-Length: 100000\r\n\r\n")
    raw, _ = exchange(port, head + b"z" * 100000)
    assert status_of(raw) == 413, raw[:300]
    body = json.loads(body_of(raw))
    headers = raw.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-correlation-id: big-upload-1" in headers, raw[:400]
    assert body["error"]["correlationId"] == "big-upload-1", body


def test_access_log_carries_the_correlation_id(server, port):
    http_get(port, "/nowhere", headers={"X-Correlation-Id": "log-me-42"})
    line = server.wait_for_line(lambda l: l.get("msg") == "request"
                                and l.get("correlationId") == "log-me-42",
                                timeout=5, what="the access log line of the request")
    assert line["status"] == 404 and line["service"] == "auth" and line["method"] == "GET"


def test_rejected_requests_are_counted_in_metrics(server, port):
    """Requests refused before routing (431, 413 from Content-Length) must show up in
    http_requests_total, or an operator cannot see a flood of them."""
    big_headers = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n"
    assert status_of(exchange(port, big_headers)[0]) == 431
    big_body = (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                + b"z" * 100000)
    assert status_of(exchange(port, big_body)[0]) == 413
    metrics = http_get(port, "/metrics").body.decode()
    counted = {line.split('status="')[1].split('"')[0] for line in metrics.splitlines()
               if line.startswith("http_requests_total{") and 'status="' in line}
    assert {"431", "413"} <= counted, (
        f"statuses counted: {sorted(counted)}\n"
        + "\n".join(l for l in metrics.splitlines() if l.startswith("http_requests_total")))
