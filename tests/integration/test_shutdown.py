"""Graceful shutdown: SIGTERM and SIGINT stop the process cleanly, under load too."""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time

import pytest

from conftest import SERVICES, http_get, wait_until


class Load:
    """Threads sending GET /health in a loop, each on its own keep-alive connection (reopened
    when the server closes it), recording (time, status or error)."""

    def __init__(self, port: int, threads: int = 4):
        self.port = port
        self.stop = threading.Event()
        self.results: list[list[tuple[float, object]]] = [[] for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, index: int):
        out = self.results[index]
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                out.append((time.monotonic(), response.status))
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as error:
                out.append((time.monotonic(), repr(error)))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def count(self) -> int:
        return min(len(r) for r in self.results)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def port_is_free(port: int) -> bool:
    """True when a new server could listen on the port (as inkwell binds: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


def test_sigterm_under_load_exits_0_without_errors(inkwell):
    process = inkwell.serve("--services=auth")
    port = process.port("auth")
    load = Load(port)
    try:
        wait_until(lambda: load.count() >= 25, 15, message="25 requests per load thread")
        before = time.monotonic()
        process.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = process.wait(5)
        exited = time.monotonic()
    finally:
        load.finish()
    assert code == 0, f"exit code {code} after SIGTERM (None = still running after 5 s)\n" \
                      f"{process.describe()}"
    assert exited - signalled < 5
    seen_before = [r for results in load.results for r in results if r[0] < before]
    assert len(seen_before) >= 100
    bad = [r for r in seen_before if r[1] != 200]
    assert not bad, f"before SIGTERM the load saw failures: {bad[:5]}"
    # After the signal, requests either completed normally or found the door closed: a server
    # that is stopping never answers with a 5xx it made up.
    after = [r[1] for results in load.results for r in results if r[0] >= before]
    assert not [s for s in after if isinstance(s, int) and s >= 500], after[:20]
    assert process.wait_for_line(lambda l: l.get("msg") == "stopped", 1, '"stopped"')
    assert port_is_free(port), f"port {port} still taken after exit"


def test_sigint_exits_0_and_frees_every_port(inkwell):
    process = inkwell.serve("--services=all")
    ports = dict(process.ports)
    assert set(ports) == set(SERVICES)
    # An idle keep-alive connection must not hold up the exit.
    idle = http.client.HTTPConnection("127.0.0.1", ports["auth"], timeout=5)
    idle.request("GET", "/health")
    idle.getresponse().read()
    started = time.monotonic()
    process.signal(signal.SIGINT)
    code = process.wait(5)
    idle.close()
    assert code == 0, f"exit code {code} after SIGINT\n{process.describe()}"
    assert time.monotonic() - started < 5
    stopping = process.wait_for_line(lambda l: l.get("msg") == "stopping", 1, '"stopping"')
    assert stopping.get("signal") == "SIGINT"
    for name, port in ports.items():
        assert port_is_free(port), f"{name}'s port {port} still taken after exit"


def test_restart_on_the_same_ports_right_after_sigterm(inkwell):
    first = inkwell.serve("--services=blog")
    port = first.port("blog")
    for _ in range(20):  # leave connections in TIME_WAIT behind
        assert http_get(port, "/health").status == 200
    first.signal(signal.SIGTERM)
    assert first.wait(5) == 0, first.describe()
    second = inkwell.serve("--services=blog", INKWELL_BLOG_PORT=port)
    assert second.port("blog") == port
    assert http_get(port, "/health").status == 200


def test_signal_during_startup_is_not_a_crash(inkwell):
    """SIGTERM as soon as the first service listens, before "started": a clean exit."""
    process = inkwell.spawn("serve", "--services=all")
    process.wait_for_line(lambda l: l.get("msg") == "listening", what='a "listening" line')
    process.signal(signal.SIGTERM)
    code = process.wait(10)
    assert code is not None, "still running 10 s after SIGTERM"
    assert code >= 0, f"killed by signal {-code}: {process.describe()}"
    assert code == 0 or process.stderr_lines, process.describe()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_process_stops_quickly(inkwell, sig):
    process = inkwell.serve("--services=ai")
    started = time.monotonic()
    process.signal(sig)
    assert process.wait(5) == 0, process.describe()
    assert time.monotonic() - started < 2, "an idle process should stop at once"


def test_sigterm_lets_an_in_flight_request_finish(inkwell):
    """The gateway's /health waits up to its 2 s budget for a silent upstream: SIGTERM during
    that request still delivers its response, then the process exits 0."""
    held = []
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)
    try:
        process = inkwell.serve("--services=gateway",
                                INKWELL_AI_URL=f"http://127.0.0.1:{blackhole.getsockname()[1]}")
        port = process.port("gateway")
        result = {}

        def slow_request():
            try:
                result["response"] = http_get(port, "/health", timeout=10)
            except Exception as error:  # noqa: BLE001 - reported below
                result["error"] = error

        thread = threading.Thread(target=slow_request)
        thread.start()
        # The request is in flight once the upstream connection has been accepted.
        blackhole.settimeout(5)
        conn, _ = blackhole.accept()
        held.append(conn)
        process.signal(signal.SIGTERM)
        thread.join(10)
        code = process.wait(5)
        assert "error" not in result, f"in-flight request failed: {result.get('error')!r}"
        assert result["response"].status == 503, result["response"]
        assert result["response"].json()["services"]["ai"]["status"] == "down"
        assert code == 0, process.describe()
    finally:
        blackhole.close()
        for conn in held:
            conn.close()
