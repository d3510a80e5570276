"""The SSE parser, decoder and collector, table-driven (pure: no network)."""

from __future__ import annotations

import json

import pytest

from shared.nemo.errors import OutOfCredits, StreamFailed, TokenInvalid
from shared.nemo.sse import EventStreamDecoder, StreamCollector, parse_event, parse_events, split_noise


def adk(*parts, author="nemo_agent", **extra):
    return json.dumps(
        {
            "id": "e1",
            "invocationId": "e-1",
            "author": author,
            "timestamp": 1.0,
            "content": {"role": "model", "parts": list(parts)},
            "actions": {},
            "partial": False,
            **extra,
        }
    )


PARSE_CASES = [
    ("", ["heartbeat"]),
    ("   ", ["heartbeat"]),
    ('{"type":"heartbeat"}', ["heartbeat"]),
    ('{"type":"ping"}', ["heartbeat"]),
    (adk({"text": "Hello"}), ["text"]),
    (adk({"text": "a"}, {"functionCall": {"id": "c1", "name": "edit", "args": {"x": 1}}}), ["text", "tool_call"]),
    (adk({"functionResponse": {"id": "c1", "name": "edit", "response": {"ok": True}}}), ["tool_result"]),
    (adk({"text": "Error: the model failed"}, author="system"), ["error"]),
    (adk({"text": "thinking...", "thought": True}), ["other"]),
    (adk({"inlineData": {"mimeType": "image/png"}}), ["other"]),
    (adk({"text": "partial answer"}, errorCode="MALFORMED_FUNCTION_CALL", errorMessage="bad call"), ["text", "error"]),
    (json.dumps({"errorCode": "SAFETY"}), ["error"]),
    ('{"error":"backend exploded"}', ["error"]),
    ('{"error":{"code":2001,"message":"insufficient credits"}}', ["error"]),
    ('{"type":"text","content":"flat hello"}', ["text"]),
    ('{"type":"tool_call","name":"add_bgm","args":{"v":35}}', ["tool_call"]),
    ('{"type":"tool_result","name":"add_bgm","result":{"ok":true}}', ["tool_result"]),
    ('{"type":"error","message":"flat error"}', ["error"]),
    ('{"actions":{"stateDelta":{"a":1}}}', ["other"]),
    ("[1,2]", ["other"]),
    ("not json", ["other"]),
    (adk("not a dict part"), ["other"]),
]


@pytest.mark.parametrize(("data", "kinds"), PARSE_CASES)
def test_parse_events_kinds(data, kinds):
    assert [ev.kind for ev in parse_events(data)] == kinds
    assert parse_event(data).kind == kinds[0]


def test_adk_parts_carry_their_content():
    events = parse_events(
        adk(
            {"text": "Added BGM"},
            {"functionCall": {"id": "c1", "name": "add_bgm", "args": {"volume": 35}}},
            {"functionResponse": {"id": "c1", "name": "add_bgm", "response": {"ok": 1}}},
        )
    )
    assert events[0].text == "Added BGM" and events[0].author == "nemo_agent"
    assert (events[1].tool_call.id, events[1].tool_call.name, events[1].tool_call.args) == (
        "c1",
        "add_bgm",
        {"volume": 35},
    )
    assert events[2].tool_result.response == {"ok": 1}


def test_flat_forms_carry_their_content():
    assert parse_event('{"type":"text","content":"hi"}').text == "hi"
    call = parse_event('{"type":"tool_call","name":"trim","args":{"s":1}}').tool_call
    assert (call.name, call.args, call.id) == ("trim", {"s": 1}, None)
    assert parse_event('{"type":"tool_result","name":"trim","result":[1]}').tool_result.response == [1]


@pytest.mark.parametrize(
    ("data", "cls", "needle"),
    [
        (adk({"text": "Error: model overloaded"}, author="system"), StreamFailed, "model overloaded"),
        ('{"error":"backend exploded"}', StreamFailed, "backend exploded"),
        (json.dumps({"errorCode": "SAFETY", "errorMessage": "blocked"}), StreamFailed, "SAFETY: blocked"),
        (json.dumps({"errorCode": 1001, "errorMessage": "token expired"}), TokenInvalid, "token expired"),
        ('{"error":{"code":"2001","message":"insufficient credits"}}', OutOfCredits, "insufficient"),
    ],
)
def test_error_forms(data, cls, needle):
    err = next(ev.error for ev in parse_events(data) if ev.kind == "error")
    assert type(err) is cls
    assert needle in err.message


def test_system_text_without_error_prefix_is_text():
    assert parse_event(adk({"text": "Session resumed"}, author="system")).kind == "text"


@pytest.mark.parametrize(
    ("text", "clean", "noise"),
    [
        ("I encountered a temporary issue. Retry.", "", "I encountered a temporary issue. Retry."),
        (
            "Added the BGM. I encountered a temporary issue while saving.",
            "Added the BGM.",
            "I encountered a temporary issue while saving.",
        ),
        ("All done!", "All done!", None),
        ("i have encountered a TEMPORARY issue", "", "i have encountered a TEMPORARY issue"),
    ],
)
def test_split_noise(text, clean, noise):
    assert split_noise(text) == (clean, noise)


def feed_all(chunks: list[str]) -> list:
    decoder = EventStreamDecoder()
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events + decoder.flush()


STREAM = (
    ": ping\n\n"
    f"data: {adk({'text': 'Working on it'})}\n\n"
    "data:\n\n"
    'data: {"type":"heartbeat"}\n\n'
    f"data: {adk({'functionCall': {'name': 'edit', 'args': {}}})}\n\n"
    "data: \n\n"
)


@pytest.mark.parametrize("size", [1, 3, 7, 64, 10_000])
def test_decoder_is_chunking_independent(size):
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert [ev.kind for ev in feed_all(chunks)] == [
        "heartbeat",
        "text",
        "heartbeat",
        "heartbeat",
        "tool_call",
        "heartbeat",
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_decoder_line_endings(newline):
    text = STREAM.replace("\n", newline)
    assert len(feed_all([text])) == 6


def test_decoder_multiline_data_and_fields():
    events = feed_all(["event: message\nid: 7\nretry: 10\n", 'data: {"type":\ndata: "text","content":"x"}\n\n'])
    assert [(ev.kind, ev.text) for ev in events] == [("text", "x")]


def test_decoder_flushes_an_unterminated_last_event():
    events = feed_all(['data: {"type":"text","content":"tail"}'])
    assert [ev.text for ev in events] == ["tail"]


def test_decoder_counts_any_comment_as_heartbeat():
    assert [ev.kind for ev in feed_all([": keep-alive\n", ":\n"])] == ["heartbeat", "heartbeat"]


def test_decoder_keeps_unicode_line_separators_inside_json():
    payload = json.dumps({"type": "text", "content": "a\u2028b"}, ensure_ascii=False)
    assert [ev.text for ev in feed_all([f"data: {payload}\n\n"])] == ["a\u2028b"]


def collect(datas: list[str], ended: str = "closed"):
    collector = StreamCollector()
    for data in datas:
        for ev in parse_events(data):
            collector.feed(ev)
    return collector.result(ended, 1.5)


def test_collector_folds_a_normal_stream():
    result = collect(
        [
            "",
            adk({"functionCall": {"id": "1", "name": "edit", "args": {}}}),
            adk({"functionResponse": {"id": "1", "name": "edit", "response": {}}}),
            '{"type":"heartbeat"}',
            adk({"text": "Done: added BGM."}),
            adk({"text": "I encountered a temporary issue."}),
        ]
    )
    assert result.texts == ["Done: added BGM."]
    assert result.noise == ["I encountered a temporary issue."]
    assert (len(result.tool_calls), len(result.tool_results), result.heartbeats, result.events) == (1, 1, 2, 6)
    assert not result.silent and result.error is None and result.ended == "closed" and result.duration_s == 1.5
    assert result.text == "Done: added BGM."


def test_collector_silent_stream():
    result = collect(["", adk({"functionCall": {"name": "edit", "args": {}}}), '{"type":"heartbeat"}'])
    assert result.silent and result.texts == [] and result.heartbeats == 2


def test_collector_only_noise_is_silent():
    result = collect([adk({"text": "I encountered a temporary issue, sorry."})])
    assert result.silent and result.noise


def test_collector_keeps_the_first_error_and_no_error_text():
    result = collect([adk({"text": "Error: first"}, author="system"), '{"error":"second"}'])
    assert result.error.message == "first" and result.texts == []


def test_collector_partial_chunks_replaced_by_final_text():
    chunks = [
        adk({"text": "Hel"}, partial=True).replace('"partial": false', '"partial": true'),
        adk({"text": "lo"}).replace('"partial": false', '"partial": true'),
    ]
    final = adk({"text": "Hello"})
    assert collect([*chunks, final]).texts == ["Hello"]
    assert collect(chunks).texts == ["Hello"[:3] + "lo"]


def test_event_is_noise_property():
    assert parse_event(adk({"text": "I encountered a temporary issue"})).is_noise
    assert not parse_event(adk({"text": "fine"})).is_noise
