"""Against the local stack (deploy/stack): PostgreSQL databases, Kafka and Redis health, and
concurrent migrations."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from conftest import DB_SERVICES, closed_port, http_get

pytestmark = pytest.mark.usefixtures("stack")


def db_env(stack) -> dict[str, str]:
    return {f"INKWELL_{n.upper()}_DATABASE_URL": stack[f"INKWELL_{n.upper()}_DATABASE_URL"]
            for n in DB_SERVICES}


def test_database_services_on_postgresql(inkwell, stack):
    process = inkwell.serve("--services=auth,blog,notification", **db_env(stack))
    for name in DB_SERVICES:
        ready = process.wait_for_line(
            lambda l, n=name: l.get("msg") == "database ready" and l.get("service") == n,
            what=f'"database ready" for {name}')
        assert ready.get("dialect") == "postgres", ready
        body = http_get(process.port(name), "/health").json()
        assert body["database"] == "ok", body
        assert body["status"] == "ok", body
    # The embedded default was not used.
    assert not list(inkwell.data_dir.glob("*.db")), list(inkwell.data_dir.iterdir())


def test_kafka_and_redis_report_ok(inkwell, stack):
    process = inkwell.serve("--services=auth,ai", **stack)
    for name in ("auth", "ai"):
        response = http_get(process.port(name), "/health")
        body = response.json()
        assert response.status == 200, body
        assert body["kafka"] == "ok" and body["redis"] == "ok", body
    assert http_get(process.port("auth"), "/health").json()["database"] == "ok"


@pytest.mark.parametrize("broken", ["REDIS_URL", "KAFKA_BROKERS"])
def test_unreachable_dependency_makes_health_503(inkwell, stack, broken):
    port = closed_port()
    settings = dict(stack)
    settings[broken] = (f"redis://127.0.0.1:{port}" if broken == "REDIS_URL"
                        else f"127.0.0.1:{port}")
    process = inkwell.serve("--services=blog", **settings)
    response = http_get(process.port("blog"), "/health")
    body = response.json()
    assert response.status == 503, body
    assert body["status"] == "degraded", body
    key = "redis" if broken == "REDIS_URL" else "kafka"
    other = "kafka" if key == "redis" else "redis"
    assert body[key] == "down", body
    assert body[other] == "ok", body
    assert body["database"] == "ok", body


def psql_url(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@pytest.fixture
def make_database(stack):
    """Creates new, empty PostgreSQL databases on the stack (with psql) and drops them
    afterwards; without psql, hands out the stack's auth database."""
    base = stack["INKWELL_AUTH_DATABASE_URL"]
    psql = shutil.which("psql")
    admin = psql_url(base, "postgres")
    created = []

    def sql(statement: str):
        subprocess.run([psql, admin, "-v", "ON_ERROR_STOP=1", "-qc", statement], check=True,
                       capture_output=True, timeout=30)

    def make() -> str:
        if psql is None:
            return base
        name = f"inkwell_it_{uuid.uuid4().hex[:12]}"
        sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return psql_url(base, name)

    yield make
    for name in created:
        sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate_concurrently(inkwell, env, count: int):
    processes = [subprocess.Popen([inkwell.binary, "migrate", "--services=auth"], env=env,
                                  cwd=inkwell.tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(count)]
    outcomes = []
    for proc in processes:
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
                p.communicate()
            pytest.fail("inkwell migrate still running after 30 s")
        outcomes.append((proc.returncode, out, err))
    return outcomes


def test_concurrent_migrations_both_succeed(inkwell, make_database):
    # A few rounds, each on a new database, so both processes race to create the same tables.
    for round_ in range(3):
        env = inkwell.env(INKWELL_AUTH_DATABASE_URL=make_database())
        for code, out, err in migrate_concurrently(inkwell, env, 2):
            assert code == 0, (f"round {round_}: concurrent migrate exited {code}\n"
                               f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}")
        again = inkwell.run("migrate", "--services=auth", env=env)
        assert again.returncode == 0, again.stderr
