"""Bad configuration: a fast exit 2 with one stderr line naming the variable, never a crash."""

from __future__ import annotations

import socket
import time

import pytest

from conftest import closed_port

PREFIX = "inkwell: configuration error: "

# id, extra args, environment, names of which at least one must appear in the line, forbidden text
CASES = [
    ("port-not-a-number", [], {"INKWELL_AUTH_PORT": "abc"}, ["INKWELL_AUTH_PORT"], []),
    ("port-out-of-range", [], {"INKWELL_AUTH_PORT": "70000"}, ["INKWELL_AUTH_PORT"], []),
    ("port-flag", ["--auth-port=abc"], {}, ["INKWELL_AUTH_PORT", "--auth-port"], []),
    ("unknown-service", [], {"INKWELL_SERVICES": "gateway,nope"}, ["INKWELL_SERVICES"], []),
    ("unknown-service-flag", ["--services=gateway,nope"], {}, ["INKWELL_SERVICES", "--services"],
     []),
    ("log-level", [], {"INKWELL_LOG_LEVEL": "loud"}, ["INKWELL_LOG_LEVEL"], []),
    ("database-scheme", [], {"INKWELL_BLOG_DATABASE_URL": "mysql://u:secret@h/db"},
     ["INKWELL_BLOG_DATABASE_URL"], ["secret"]),
    ("kafka-brokers", [], {"KAFKA_BROKERS": "nohost"}, ["KAFKA_BROKERS"], []),
    ("redis-url", [], {"REDIS_URL": "localhost:6379"}, ["REDIS_URL"], []),
    ("threads-zero", [], {"INKWELL_THREADS": "0"}, ["INKWELL_THREADS"], []),
    ("unknown-flag", ["--no-such-flag=1"], {}, ["--no-such-flag", "no-such-flag"], []),
    ("host-not-ip", [], {"INKWELL_GATEWAY_HOST": "not-an-ip"}, ["INKWELL_GATEWAY_HOST"], []),
    ("body-limit-too-small", [], {"INKWELL_MAX_BODY_BYTES": "10"}, ["INKWELL_MAX_BODY_BYTES"], []),
    ("boolean", [], {"INKWELL_ACCESS_LOG": "maybe"}, ["INKWELL_ACCESS_LOG"], []),
]


@pytest.mark.parametrize("args,env,names,forbidden", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_configuration_exits_2_naming_the_variable(inkwell, args, env, names, forbidden):
    started = time.monotonic()
    result = inkwell.run("serve", *args, timeout=6, **env)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, (
        f"expected exit 2, got {result.returncode}\nstdout: {result.stdout[-1500:]}\n"
        f"stderr: {result.stderr}")
    assert elapsed < 5, f"took {elapsed:.1f}s to reject the configuration"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got: {result.stderr!r}"
    assert lines[0].startswith(PREFIX), lines[0]
    assert any(name in lines[0] for name in names), f"{lines[0]!r} names none of {names}"
    assert '"msg":"started"' not in result.stdout
    for text in forbidden:
        assert text not in result.stderr and text not in result.stdout, (
            f"{text!r} leaked: {result.stderr}{result.stdout}")


def test_unknown_command_exits_2(inkwell):
    result = inkwell.run("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in result.stderr


def test_no_arguments_prints_usage_and_exits_2(inkwell):
    result = inkwell.run()
    assert result.returncode == 2
    assert "Usage" in result.stdout


@pytest.mark.parametrize("services,busy", [("auth", "auth"), ("all", "notification")])
def test_port_in_use_is_a_clean_error(inkwell, services, busy):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = inkwell.run("serve", f"--services={services}", timeout=10,
                             **{f"INKWELL_{busy.upper()}_PORT": port})
    assert result.returncode > 0, (
        f"exit {result.returncode} (negative = killed by a signal)\n{result.stderr}")
    assert result.returncode in (1, 2), result.returncode
    stderr = result.stderr.strip()
    assert stderr, "no message on stderr"
    for crash in ("terminate called", "Aborted", "core dumped", "Segmentation"):
        assert crash not in stderr, stderr
    assert "in use" in stderr.lower(), stderr
    assert str(port) in stderr or f"INKWELL_{busy.upper()}_PORT" in stderr, (
        f"the message does not say which port or setting is the problem: {stderr!r}")


def test_unreachable_database_is_a_clear_error_without_the_password(inkwell):
    url = f"postgresql://inkwell:hunter2@127.0.0.1:{closed_port()}/auth_db"
    result = inkwell.run("serve", "--services=auth", timeout=30, INKWELL_AUTH_DATABASE_URL=url)
    assert result.returncode > 0, (result.returncode, result.stderr)
    stderr = result.stderr.strip()
    assert stderr and "terminate called" not in stderr, stderr
    assert "INKWELL_AUTH_DATABASE_URL" in stderr or "auth" in stderr, stderr
    assert "hunter2" not in result.stderr and "hunter2" not in result.stdout, (
        "the database password leaked into the output")


def test_migrate_accepts_the_same_flags_as_serve(inkwell):
    """Operators run `inkwell migrate` with the settings they give `inkwell serve`; the
    environment form is accepted, so the flag form must be too."""
    by_env = inkwell.run("migrate", INKWELL_AUTH_PORT=9001, INKWELL_GATEWAY_PORT=9090)
    assert by_env.returncode == 0, by_env.stderr
    by_flag = inkwell.run("migrate", "--auth-port=9001", "--gateway-port=9090")
    assert by_flag.returncode == 0, f"exit {by_flag.returncode}: {by_flag.stderr.strip()}"
