"""Each service alone, all of them together, and the embedded SQLite databases."""

from __future__ import annotations

import re
import signal
import socket
import threading
import time

import pytest

from conftest import DB_SERVICES, SERVICES, UPSTREAMS, free_port, http_get


def metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{") or
            line.startswith(name + " ")]


def has_request_sample(metrics: str, service: str, route: str, status: int) -> bool:
    for line in metric_lines(metrics, "http_requests_total"):
        labels = line[line.find("{") + 1:line.rfind("}")]
        if (f'service="{service}"' in labels and f'route="{route}"' in labels
                and f'status="{status}"' in labels):
            value = float(line.rsplit(" ", 1)[1])
            return value >= 1
    return False


@pytest.mark.parametrize("service", SERVICES)
def test_service_alone_answers_health_metrics_and_version(inkwell, service):
    process = inkwell.serve(f"--services={service}")
    assert set(process.ports) == {service}, f"only {service} should listen\n{process.describe()}"
    listening = process.wait_for_line(lambda l: l.get("msg") == "listening")
    port = process.port(service)
    assert port > 0
    assert listening["url"] == f"http://{listening['host']}:{port}"

    health = http_get(port, "/health")
    body = health.json()
    assert health.header("Content-Type").startswith("application/json")
    for key in ("status", "database", "kafka", "redis", "uptime"):
        assert key in body, f"/health lacks {key}: {body}"
    assert isinstance(body["uptime"], (int, float)) and body["uptime"] >= 0
    # No stack configured: the bus and the cache are the in-process ones.
    assert body["kafka"] == "embedded" and body["redis"] == "embedded", body
    if service in DB_SERVICES:
        assert body["database"] == "ok", body
    else:
        assert body["database"] == "none", body

    if service == "gateway":
        # Alone, nothing answers behind it: degraded, and every upstream is reported down.
        assert health.status == 503, health
        assert body["status"] == "degraded", body
        assert set(body["services"]) == set(UPSTREAMS), body
        for name in UPSTREAMS:
            assert body["services"][name]["status"] == "down", body
    else:
        assert health.status == 200, health
        assert body["status"] == "ok", body

    version = http_get(port, "/version")
    assert version.status == 200
    info = version.json()
    assert info["name"] == "inkwell" and info["service"] == service
    assert isinstance(info["version"], str) and info["version"]
    printed = inkwell.run("version")
    assert printed.returncode == 0
    assert info["version"] in printed.stdout

    metrics = http_get(port, "/metrics")
    assert metrics.status == 200
    assert metrics.header("Content-Type").startswith("text/plain")
    text = metrics.body.decode()
    rss = metric_lines(text, "process_resident_memory_bytes")
    assert rss and float(rss[0].split()[-1]) > 0, text[:500]
    assert has_request_sample(text, service, "/health", health.status), text
    assert has_request_sample(text, service, "/version", 200), text
    assert "# TYPE http_requests_total counter" in text


def all_ports_env(inkwell, with_urls: bool):
    ports = {name: free_port() for name in SERVICES}
    overrides = {f"INKWELL_{name.upper()}_PORT": port for name, port in ports.items()}
    for name in UPSTREAMS:
        overrides[f"INKWELL_{name.upper()}_URL"] = (
            f"http://127.0.0.1:{ports[name]}" if with_urls else None)
    return ports, inkwell.env(**overrides)


def test_all_services_in_one_process(inkwell):
    ports, env = all_ports_env(inkwell, with_urls=True)
    process = inkwell.serve("--services=all", env=env)
    assert process.ports == ports, process.describe()

    for name, port in ports.items():
        response = http_get(port, "/health")
        assert response.status == 200, f"{name}: {response}"
        assert response.json()["status"] == "ok"

    gateway = http_get(ports["gateway"], "/health").json()
    assert gateway["status"] == "ok"
    assert set(gateway["services"]) == set(UPSTREAMS), gateway
    for name in UPSTREAMS:
        assert gateway["services"][name]["status"] == "ok", gateway
        assert gateway["services"][name].get("service") == name, gateway


def test_gateway_finds_services_on_their_configured_ports(inkwell):
    """--services=all with non-default ports and no INKWELL_<NAME>_URL: the gateway should reach
    the services where this very process put them (./run --auth-port=9001 must just work)."""
    ports, env = all_ports_env(inkwell, with_urls=False)
    process = inkwell.serve("--services=all", env=env)
    assert process.ports == ports, process.describe()
    response = http_get(ports["gateway"], "/health")
    body = response.json()
    down = [n for n in UPSTREAMS if body["services"][n]["status"] != "ok"]
    assert response.status == 200 and not down, (
        f"gateway reports {down} down although they run in this process on {ports}: {body}")


def test_sqlite_files_migrate_twice_and_restart(inkwell, tmp_path):
    data = tmp_path / "fresh" / "nested" / "data"  # does not exist yet, as on a fresh clone
    env = inkwell.env(INKWELL_DATA_DIR=data)
    first = inkwell.serve("--services=all", env=env)
    for name in DB_SERVICES:
        assert (data / f"{name}.db").is_file(), f"{name}.db missing in {list(data.iterdir())}"
    first.signal(signal.SIGTERM)
    assert first.wait(10) == 0, first.describe()

    for attempt in (1, 2):
        result = inkwell.run("migrate", env=env)
        assert result.returncode == 0, (
            f"migrate #{attempt} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        assert result.stderr.strip() == "", result.stderr

    second = inkwell.serve("--services=all", env=env)
    for name in DB_SERVICES:
        body = http_get(second.port(name), "/health").json()
        assert body["database"] == "ok", body
    assert sorted(p.name for p in data.glob("*.db")) == [f"{n}.db" for n in sorted(DB_SERVICES)]


def test_unknown_path_on_every_service_is_json_404(inkwell):
    process = inkwell.serve("--services=all")
    for name in SERVICES:
        response = http_get(process.port(name), "/definitely/not/here")
        assert response.status == 404, f"{name}: {response}"
        assert response.json()["error"]["code"] == "not_found"


def test_version_and_help(inkwell):
    version = inkwell.run("version")
    assert version.returncode == 0
    assert re.fullmatch(r"inkwell \S+\n", version.stdout), version.stdout
    helped = inkwell.run("--help")
    assert helped.returncode == 0
    assert "inkwell serve" in helped.stdout and "INKWELL_SERVICES" in helped.stdout
    serve_help = inkwell.run("serve", "--help")
    assert serve_help.returncode == 0 and "Usage" in serve_help.stdout


def test_concurrent_migrations_on_one_sqlite_data_dir(inkwell):
    """Two replicas starting at once on the same data dir both migrate it."""
    env = inkwell.env()
    processes = [inkwell.spawn("migrate", env=env) for _ in range(3)]
    for process in processes:
        code = process.wait(30)
        assert code == 0, f"concurrent migrate exited {code}\n{process.describe()}"


class FakeUpstream:
    """A TCP listener that plays a broken service: "silent" accepts and never answers,
    "garbage" answers with something that is not a health document."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "garbage":
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
                                 b"Connection: close\r\n\r\nnot json!")
                finally:
                    conn.close()
            else:
                self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("mode", ["silent", "garbage"])
def test_gateway_health_with_a_broken_upstream(inkwell, mode):
    fake = FakeUpstream(mode)
    try:
        auth = inkwell.serve("--services=auth")
        overrides = {f"INKWELL_{n.upper()}_URL": f"http://127.0.0.1:{fake.port}"
                     for n in ("ai", "blog", "notification")}
        overrides["INKWELL_AUTH_URL"] = f"http://127.0.0.1:{auth.port('auth')}"
        gateway = inkwell.serve("--services=gateway", **overrides)
        started = time.monotonic()
        response = http_get(gateway.port("gateway"), "/health", timeout=10)
        elapsed = time.monotonic() - started
        body = response.json()
        assert response.status == 503 and body["status"] == "degraded", body
        assert body["services"]["auth"]["status"] == "ok", body
        for name in ("ai", "blog", "notification"):
            assert body["services"][name]["status"] == "down", body
        # One slow service costs the health budget once, not once per service.
        assert elapsed < 4, f"aggregated health took {elapsed:.1f}s"
    finally:
        fake.close()
