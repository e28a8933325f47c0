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


def test_embedded_replay_asks_the_server_and_reports_what_is_waiting(inkwell_bin, data_dir):
    env = child_env(data_dir)
    nothing = run(inkwell_bin, ["dlq", "replay", "--topic", "post.created", "--wait", "0"], env)
    assert nothing.returncode == 0, nothing.stderr
    assert "no dead letters of post.created to replay" in nothing.stdout
    for bad in (["--wait", "-1"], ["--wait", "soon"], ["--wait", "3601"]):
        refused = run(inkwell_bin, ["dlq", "replay", "--topic", "post.created", *bad], env)
        assert refused.returncode == 2 and "--wait" in refused.stderr
    listed_wait = run(inkwell_bin, ["dlq", "list", "--topic", "post.created", "--wait", "1"], env)
    assert listed_wait.returncode == 2 and "--wait" in listed_wait.stderr

    db = sqlite3.connect(data_dir / "blog.db")
    for group in ("notify", "search"):
        db.execute("insert into dead_letters (consumer_group, topic, event_id, payload, error,"
                   " attempts, created_at) values (?, 'post.created', 'e1', '{}', 'boom', 5,"
                   " '2026-01-01T00:00:00.000Z')", (group,))
    db.commit()
    # A mistyped flag stops the command before it changes anything.
    typo = run(inkwell_bin, ["dlq", "replay", "--topic", "post.created", "--gruop", "notify"], env)
    assert typo.returncode == 2 and "--gruop" in typo.stderr
    assert db.execute("select count(*) from dead_letters where replay_requested_at is not null"
                      ).fetchone() == (0,)
    # No server runs the group: the request is recorded and reported as waiting for one.
    replay = run(inkwell_bin, ["dlq", "replay", "--topic", "post.created", "--group", "notify",
                               "--wait", "0"], env)
    assert replay.returncode == 0, replay.stderr
    assert "replayed 0 dead letter(s) of post.created; 1 wait for a running server" in \
        replay.stdout
    requested = dict(db.execute("select consumer_group, replay_requested_at is not null"
                                " from dead_letters").fetchall())
    db.close()
    assert requested == {"notify": 1, "search": 0}
    rows = [json.loads(line) for line in run(
        inkwell_bin, ["dlq", "list", "--topic", "post.created"], env).stdout.splitlines()]
    assert {r["group"]: r["replayRequested"] for r in rows} == {"notify": True, "search": False}
