"""`inkwell events dlq ...`: the operator's view of dead letters, on both deployments."""
import json
import sqlite3
import subprocess

from conftest import child_env


def run(binary, args, env):
    return subprocess.run([binary, "events", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_bad_usage_and_unknown_topics_exit_2_with_a_reason(inkwell_bin, data_dir):
    env = child_env(data_dir)
    assert run(inkwell_bin, [], env).returncode == 2
    assert run(inkwell_bin, ["dlq", "purge", "--topic", "post.created"], env).returncode == 2
    missing = run(inkwell_bin, ["dlq", "list"], env)
    assert missing.returncode == 2 and "--topic" in missing.stderr
    unknown = run(inkwell_bin, ["dlq", "list", "--topic", "no.such.topic"], env)
    assert unknown.returncode == 2 and "--topic" in unknown.stderr
    flag = run(inkwell_bin, ["dlq", "list", "--topic", "post.created", "--bogus=1"], env)
    assert flag.returncode == 2 and "--bogus" in flag.stderr


def test_embedded_list_reads_every_service_database(inkwell_bin, data_dir):
    env = child_env(data_dir)
    listed = run(inkwell_bin, ["dlq", "list", "--topic", "post.created"], env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""
    assert "0 dead letter(s)" in listed.stderr
    # The tables now exist in each service's SQLite file; a row put there by hand is listed.
    db = sqlite3.connect(data_dir / "blog.db")
    db.execute("insert into dead_letters (consumer_group, topic, event_id, payload, error, attempts,"
               " created_at) values ('blog', 'post.created', null, 'garbage', 'not an event', 0,"
               " '2026-01-01T00:00:00.000Z')")
    db.commit()
    db.close()
    listed = run(inkwell_bin, ["dlq", "list", "--topic", "post.created"], env)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["service"], r["group"], r["error"]) for r in rows] == [
        ("blog", "blog", "not an event")]
    assert run(inkwell_bin, ["dlq", "list", "--topic", "post.created", "--group", "other"],
               env).stdout == ""


def test_embedded_replay_explains_it_needs_kafka(inkwell_bin, data_dir):
    replay = run(inkwell_bin, ["dlq", "replay", "--topic", "post.created"], child_env(data_dir))
    assert replay.returncode == 2
    assert "KAFKA_BROKERS" in replay.stderr
