"""The body reaches the provider byte for byte, except the top-level `model` value."""
import hashlib

from stack import assert_answered_consistently, post


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def assert_received(answer, expected_bytes):
    received = answer.received
    assert received["length"] == len(expected_bytes)
    assert received["sha256"] == sha256(expected_bytes)
    if not received["chunked"]:
        assert received["content_length"] == received["length"]


def test_only_the_top_level_model_value_changes(stack, loads):
    loads(minmax=90, qianwen=10)
    # Odd spacing, `model` not first, a nested "model" key and "model" inside a string, UTF-8.
    top = '"model" :  "auto"'
    body = ('{ "messages" : [ {"role":"user", "model":"inner",\n'
            '   "content":"say \\"model\\": \\"auto\\" 你好 🚀"} ],\n'
            '  ' + top + ' , "stream":false,  "meta":{"model":"nested","n":[1, 2.50]} }')
    assert body.count(top) == 1
    expected = body.replace(top, '"model" :  "qwen3-max-preview"', 1).encode()
    answer = post(stack, body.encode())
    assert_answered_consistently(answer, stack)
    assert answer.provider == "qianwen"
    assert_received(answer, expected)


def test_malformed_json_is_forwarded_untouched(stack, loads):
    loads(minmax=90, qianwen=10)
    body = b'{"model":"auto",'
    answer = post(stack, body)
    assert answer.status == 200, answer.raw[:300]
    assert answer.json["model"] is None  # the mock could not read a model either
    assert answer.provider == "qianwen"  # still routed by load
    assert answer.received["headers"]["x-selected-provider"] == "qianwen"
    assert_received(answer, body)


def test_chunked_body_is_rewritten(stack, loads):
    loads(minmax=10, qianwen=90)
    body = b'{"model":"auto","messages":[{"role":"user","content":"chunked"}]}'
    answer = post(stack, body, headers=[("Transfer-Encoding", "chunked")])
    assert_answered_consistently(answer, stack)
    assert answer.provider == "minmax"
    assert_received(answer, body.replace(b'"auto"', b'"MiniMax-M2.1"', 1))


def test_8_mib_body_is_rewritten(stack, loads):
    loads(minmax=10, qianwen=90)
    content = "x" * (8 * 1024 * 1024)
    body = ('{"model":"auto","messages":[{"role":"user","content":"' + content + '"}]}').encode()
    expected = body.replace(b'"model":"auto"', b'"model":"MiniMax-M2.1"', 1)
    answer = post(stack, body)
    assert_answered_consistently(answer, stack)
    assert answer.provider == "minmax"
    assert_received(answer, expected)
