"""Shared fixtures for Inkwell's black-box tests.

Every test starts the `inkwell` binary (INKWELL_BIN) as its own process, with its own temporary
INKWELL_DATA_DIR and its own ports, and talks to it over real sockets. Nothing waits by sleeping:
start-up is detected from the JSON log lines the binary prints on stdout ("listening" per
service, then "started"), everything else is polled against a deadline.

Tests that need the local stack (PostgreSQL, Kafka, Redis) read the URLs that
`eval "$(deploy/stack env)"` exports. Without them they are skipped, or they fail when
INKWELL_TEST_REQUIRE_POSTGRES=1 or INKWELL_TEST_REQUIRE_STACK=1 (as ./test sets).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "auth", "blog", "notification", "ai")
UPSTREAMS = ("ai", "auth", "blog", "notification")
DB_SERVICES = ("auth", "blog", "notification")
STACK_VARIABLES = (
    "INKWELL_AUTH_DATABASE_URL",
    "INKWELL_BLOG_DATABASE_URL",
    "INKWELL_NOTIFICATION_DATABASE_URL",
    "KAFKA_BROKERS",
    "REDIS_URL",
)
START_TIMEOUT = 20.0


# --- small helpers -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (picked like free_port; nothing is bound to it afterwards)."""
    return free_port()


def wait_until(condition, timeout: float, interval: float = 0.02, message: str = "condition"):
    """Polls condition() until it returns a truthy value; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)  # a poll interval, not a wait for something to happen


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise AssertionError(f"response body is not JSON: {self.body[:300]!r}") from error

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


def http_request(port: int, method: str = "GET", path: str = "/health", headers=None,
                 body: bytes | None = None, timeout: float = 5.0,
                 host: str = "127.0.0.1") -> Response:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


def http_get(port: int, path: str = "/health", **kwargs) -> Response:
    return http_request(port, "GET", path, **kwargs)


def child_env(data_dir: Path, **overrides) -> dict[str, str]:
    """The environment for a child: inherited, minus every Inkwell and stack setting (so the
    developer's shell cannot change what a test sees), plus a private data dir, port 0 for
    every service and closed ports for the gateway's upstreams. Overrides set to None remove
    a variable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INKWELL_")
        and k not in ("KAFKA_BROKERS", "REDIS_URL")
        and not k.startswith(("JWT_", "FCM_", "OPENAI_", "OAUTH_"))
    }
    env["INKWELL_DATA_DIR"] = str(data_dir)
    env["INKWELL_LOG_LEVEL"] = "info"
    env["INKWELL_THREADS"] = "2"
    for name in SERVICES:
        env[f"INKWELL_{name.upper()}_PORT"] = "0"
    for name in UPSTREAMS:
        env[f"INKWELL_{name.upper()}_URL"] = f"http://127.0.0.1:{closed_port()}"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


# --- the process under test ------------------------------------------------------------------


class Inkwell:
    """One running `inkwell` process; its stdout is parsed as JSON log lines on a thread so the
    pipe never fills, and tests can wait for a given line."""

    def __init__(self, binary: str, args: list[str], env: dict[str, str], cwd: Path):
        self.args = [binary, *args]
        self.proc = subprocess.Popen(
            self.args, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.pid = self.proc.pid
        self.lines: list[dict] = []
        self.raw_stdout: list[str] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self._stdout_done = False
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._readers:
            t.start()
        self.ports: dict[str, int] = {}

    def _read_stdout(self):
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            with self._cond:
                self.raw_stdout.append(text)
                if isinstance(parsed, dict):
                    self.lines.append(parsed)
                self._cond.notify_all()
        with self._cond:
            self._stdout_done = True
            self._cond.notify_all()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()

    def describe(self) -> str:
        with self._cond:
            out = "\n".join(self.raw_stdout[-30:])
            err = "\n".join(self.stderr_lines[-30:])
        return (f"command: {' '.join(self.args)}\nexit code: {self.proc.poll()}\n"
                f"--- stdout (last lines) ---\n{out}\n--- stderr ---\n{err}")

    def wait_for_line(self, predicate, timeout: float = START_TIMEOUT, what: str = "a log line"):
        """Returns the first JSON log line matching predicate; fails if the process exits or the
        deadline passes first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                if self._stdout_done:
                    pytest.fail(f"inkwell exited before {what}\n{self.describe()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}\n"
                                f"{self.describe()}")
                self._cond.wait(remaining)

    def wait_started(self, timeout: float = START_TIMEOUT) -> dict[str, int]:
        self.wait_for_line(lambda l: l.get("msg") == "started", timeout, 'the "started" line')
        with self._cond:
            for line in self.lines:
                if line.get("msg") == "listening":
                    self.ports[line["service"]] = int(line["port"])
        return self.ports

    def port(self, service: str) -> int:
        if service not in self.ports:
            pytest.fail(f"no 'listening' line for {service}\n{self.describe()}")
        return self.ports[service]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        """Teardown: SIGTERM, then SIGKILL; always reaps the process."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(5) is None:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._readers:
            t.join(2)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture(scope="session")
def inkwell_bin() -> str:
    binary = os.environ.get("INKWELL_BIN") or str(REPO / "build" / "release" / "inkwell")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"the inkwell binary was not found at {binary}: build it "
                    "(cmake --preset release && cmake --build --preset release --target inkwell) "
                    "or set INKWELL_BIN")
    return binary


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


class Launcher:
    def __init__(self, binary: str, tmp_path: Path, data_dir: Path):
        self.binary = binary
        self.tmp_path = tmp_path
        self.data_dir = data_dir
        self.processes: list[Inkwell] = []

    def env(self, **overrides) -> dict[str, str]:
        return child_env(self.data_dir, **overrides)

    def spawn(self, *args: str, env: dict[str, str] | None = None, **overrides) -> Inkwell:
        process = Inkwell(self.binary, list(args), env or self.env(**overrides), self.tmp_path)
        self.processes.append(process)
        return process

    def serve(self, *args: str, env: dict[str, str] | None = None, **overrides) -> Inkwell:
        """Starts `inkwell serve ARGS` and waits for its "started" line."""
        process = self.spawn("serve", *args, env=env, **overrides)
        process.wait_started()
        return process

    def run(self, *args: str, timeout: float = 15.0, env: dict[str, str] | None = None,
            **overrides) -> subprocess.CompletedProcess:
        """Runs a command to completion; a command still running at the deadline is killed and
        the test fails."""
        proc = subprocess.Popen([self.binary, *args], env=env or self.env(**overrides),
                                cwd=self.tmp_path, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"`inkwell {' '.join(args)}` was still running after {timeout}s "
                        f"(killed)\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def close(self):
        for process in self.processes:
            process.close()


@pytest.fixture
def inkwell(inkwell_bin: str, tmp_path: Path, data_dir: Path):
    launcher = Launcher(inkwell_bin, tmp_path, data_dir)
    yield launcher
    launcher.close()


# --- the local stack -------------------------------------------------------------------------


@pytest.fixture
def stack() -> dict[str, str]:
    """The stack's URLs from the environment; skip (or fail when required) without them."""
    missing = [v for v in STACK_VARIABLES if not os.environ.get(v)]
    if missing:
        message = (f"the local stack is not configured: {', '.join(missing)} unset "
                   '(run deploy/stack up && eval "$(deploy/stack env)")')
        for required in ("INKWELL_TEST_REQUIRE_POSTGRES", "INKWELL_TEST_REQUIRE_STACK"):
            if os.environ.get(required) == "1":
                pytest.fail(f"{message}; {required}=1 requires the stack")
        pytest.skip(message)
    return {v: os.environ[v] for v in STACK_VARIABLES}


# --- fakes of third-party services -----------------------------------------------------------


@pytest.fixture(scope="session")
def oauth_provider():
    """The fake Google and GitHub OAuth provider (tests/fakes/oauth_provider.py): one process
    for the session. State is shared between tests: call .reset() for a clean one."""
    # Imported here so the other tests do not need the `cryptography` package.
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))
    from fakes.oauth_provider import start_oauth_provider

    provider = start_oauth_provider()
    yield provider
    provider.stop()
