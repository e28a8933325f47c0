"""The event contracts in contracts/events: each schema is a valid draft 2020-12 schema, accepts a
well-formed event of its type and rejects malformed ones. Needs only the `jsonschema` package."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "events"

U1 = "0b6f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c"
U2 = "5d9e1f20-3b4c-4d5e-8f60-718293a4b5c6"
U3 = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"

# One valid event per type (DESIGN.md section 5): source, subject and data.
EXAMPLES = {
    "user.registered": ("/auth", U1, {
        "userId": U1, "email": "ada@example.com", "username": "ada_l", "name": "Ada Lovelace",
        "avatarUrl": None, "version": 1}),
    "user.updated": ("/auth", U1, {
        "userId": U1, "username": "ada_l", "name": "Ada King",
        "avatarUrl": "https://example.com/ada.png", "version": 2}),
    "post.created": ("/blog", U2, {
        "postId": U2, "authorId": U1, "authorName": "Ada", "title": "Notes on the engine",
        "content": "The Analytical Engine weaves algebraic patterns.",
        "createdAt": "2026-11-24T17:35:01.123Z"}),
    "post.liked": ("/blog", U2, {
        "postId": U2, "postAuthorId": U1, "postTitle": "Notes on the engine", "likerId": U3,
        "likerName": "Charles"}),
    "comment.created": ("/blog", U2, {
        "commentId": U3, "postId": U2, "postAuthorId": U1, "postTitle": "Notes on the engine",
        "authorId": U3, "authorName": "Charles", "excerpt": "Splendid"}),
    "user.followed": ("/blog", U1, {
        "followerId": U3, "followerName": "Charles", "followeeId": U1}),
    "post.summarized": ("/ai", U2, {
        "postId": U2, "summary": "Ada on the engine.", "provider": "local",
        "contentHash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
}


def envelope(event_type: str) -> dict:
    source, subject, data = EXAMPLES[event_type]
    return {"specversion": "1.0", "id": "7c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
            "source": source, "type": event_type, "time": "2026-11-24T17:35:01.123Z",
            "subject": subject, "datacontenttype": "application/json",
            "data": copy.deepcopy(data)}


def validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((CONTRACTS / f"{event_type}.schema.json").read_text())
    return Draft202012Validator(schema)


def test_there_is_one_schema_per_event_type():
    found = sorted(p.name.removesuffix(".schema.json") for p in CONTRACTS.glob("*.schema.json"))
    assert found == sorted(EXAMPLES)


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_schema_is_valid_and_accepts_a_well_formed_event(event_type):
    schema = json.loads((CONTRACTS / f"{event_type}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["type"] == {"const": event_type}
    v = validator(event_type)
    v.validate(envelope(event_type))
    with_extension = envelope(event_type)  # CloudEvents extensions are allowed
    with_extension["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    v.validate(with_extension)


def broken_envelopes(event_type: str):
    """(what is wrong, event) pairs, each of which the schema must reject."""
    def change(what, edit):
        event = envelope(event_type)
        edit(event)
        return what, event

    yield change("specversion 0.3", lambda e: e.update(specversion="0.3"))
    yield change("id not a UUID", lambda e: e.update(id="42"))
    yield change("another type", lambda e: e.update(type="user.deleted"))
    yield change("another source", lambda e: e.update(source="/elsewhere"))
    yield change("time not RFC 3339", lambda e: e.update(time="24/11/2026 17:35"))
    yield change("datacontenttype text/plain", lambda e: e.update(datacontenttype="text/plain"))
    yield change("data a string", lambda e: e.update(data=json.dumps(e["data"])))
    yield change("unknown data field", lambda e: e["data"].update(surprise=True))
    yield change("upper-case extension", lambda e: e.update(TraceParent="x"))
    yield change("extension named like a core attribute", lambda e: e.update(dataschema=1))
    for attribute in ("specversion", "id", "source", "type", "time", "subject",
                      "datacontenttype", "data"):
        yield change(f"no {attribute}", lambda e, a=attribute: e.pop(a))
    for field in EXAMPLES[event_type][2]:
        yield change(f"no data.{field}", lambda e, f=field: e["data"].pop(f))
        yield change(f"data.{field} an array", lambda e, f=field: e["data"].update({f: []}))


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_schema_rejects_malformed_events(event_type):
    v = validator(event_type)
    accepted = [what for what, event in broken_envelopes(event_type) if v.is_valid(event)]
    assert accepted == []


@pytest.mark.parametrize("event_type,field,value", [
    ("user.registered", "version", 0),
    ("user.registered", "version", 1.5),
    ("user.registered", "username", "Ada Lovelace"),
    ("user.registered", "email", "not-an-email"),
    ("user.updated", "version", "2"),
    ("user.updated", "userId", "not-a-uuid"),
    ("post.created", "createdAt", "yesterday"),
    ("post.created", "title", ""),
    ("post.liked", "likerId", None),
    ("post.summarized", "provider", ""),
])
def test_schema_rejects_out_of_range_fields(event_type, field, value):
    event = envelope(event_type)
    event["data"][field] = value
    assert not validator(event_type).is_valid(event)
