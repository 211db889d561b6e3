"""The gateway driven by the official `openai` Python client, as an application would drive it:
a chat completion, a stream that reaches the client chunk by chunk, `models.list()` answered by
the gateway (`list_models`), and the SDK's own error object for a model no pool serves.

Streams are tried on both of the filter's paths: a `models` pool, which holds the request
headers until the whole body is in, and the shipped configuration (no pools), where the provider
is chosen on the headers. The mocks stream in OpenAI's SSE format and count usage by a rule a
test can predict (scripts/mock_provider.py).
"""
import time

import openai
import pytest

from stack import MODEL_OF, running_stack

POOLS = """
providers:
- {name: minmax, model: MiniMax-M2.1}
- {name: qianwen, model: qwen3-max-preview}
models:
  auto:
    strategy: round_robin
    backends:
    - {provider: minmax, model: MiniMax-M2.5-preview}
    - {provider: qianwen}
  cheap:
    strategy: round_robin
    backends:
    - {provider: qianwen, model: qwen-turbo}
list_models: true
unknown_model: reject
"""
QUESTION = "how many words are in this question"  # 7: the mock's prompt_tokens
PROMPT_TOKENS = 7
CHUNKS = 5  # the mocks' default completion_tokens
CHUNK_DELAY_MS = 150


@pytest.fixture(scope="module")
def pooled():
    with running_stack(POOLS) as running:
        yield running


def client_of(stack):
    """The SDK pointed at the gateway; no retries of its own, so that what the gateway did is
    what the test sees."""
    return openai.OpenAI(base_url=stack.url + "/masgod/v1", api_key="test", max_retries=0,
                         timeout=15)


def expected_content(provider):
    return " ".join(f"{provider}-{index}" for index in range(1, CHUNKS + 1))


def reported_usage(stack, provider):
    return stack.mock(provider)["usage"]


def assert_usage(usage):
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        PROMPT_TOKENS, CHUNKS, PROMPT_TOKENS + CHUNKS), usage


def test_a_chat_completion_shows_the_rewrite_and_the_providers_usage(pooled):
    before = reported_usage(pooled, "qianwen")
    completion = client_of(pooled).chat.completions.create(
        model="cheap", messages=[{"role": "user", "content": QUESTION}])
    assert completion.object == "chat.completion"
    assert completion.model == "qwen-turbo"  # `cheap` rewritten to its backend's model
    assert completion.model_extra["provider"] == "qianwen"
    assert completion.model_extra["received"]["headers"] == {
        "x-selected-provider": "qianwen", "x-rewrite-target-model": "qwen-turbo"}
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == expected_content("qianwen")
    assert completion.choices[0].finish_reason == "stop"
    assert_usage(completion.usage)
    after = reported_usage(pooled, "qianwen")
    assert after["prompt_tokens"] - before["prompt_tokens"] == PROMPT_TOKENS
    assert after["completion_tokens"] - before["completion_tokens"] == CHUNKS


def stream_chat(stack, model):
    """Streams a chat completion with usage: [(seconds since the request, chunk), ...]."""
    started = time.monotonic()
    stream = client_of(stack).chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True})
    arrivals = []
    with stream:
        for chunk in stream:
            arrivals.append((time.monotonic() - started, chunk))
    return arrivals


def assert_streamed_incrementally(arrivals, provider, model):
    """The chunks of one answer by `provider` as `model`, in OpenAI's order (role, content,
    finish, usage), the content chunks reaching the client as the mock sent them
    (CHUNK_DELAY_MS apart), not all together at the end."""
    chunks = [chunk for _, chunk in arrivals]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert {chunk.model for chunk in chunks} == {model}
    assert {chunk.model_extra["provider"] for chunk in chunks} == {provider}
    first = chunks[0]
    assert first.choices[0].delta.role == "assistant"
    assert first.model_extra["received"]["headers"]["x-rewrite-target-model"] == model
    content = [(seconds, chunk.choices[0].delta.content) for seconds, chunk in arrivals
               if chunk.choices and chunk.choices[0].delta.content]
    assert "".join(text for _, text in content) == expected_content(provider)
    assert len(content) == CHUNKS
    finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finish == [None] * (len(finish) - 1) + ["stop"]
    assert chunks[-1].choices == []
    assert_usage(chunks[-1].usage)
    # The mock sends the last content chunk (CHUNKS - 1) * CHUNK_DELAY_MS after the first:
    # buffered anywhere on the way, they would arrive together.
    spread = content[-1][0] - content[0][0]
    assert spread >= 2 * CHUNK_DELAY_MS / 1000, (
        f"content chunks arrived within {spread * 1000:.0f} ms of each other: "
        f"{[round(seconds, 3) for seconds, _ in content]}")


def test_a_stream_through_a_pool_reaches_the_client_chunk_by_chunk(pooled):
    pooled.set_mock("qianwen", chunk_delay_ms=CHUNK_DELAY_MS)
    before = pooled.mock("qianwen")
    try:
        arrivals = stream_chat(pooled, "cheap")
    finally:
        pooled.reset_mock("qianwen")
    assert_streamed_incrementally(arrivals, "qianwen", "qwen-turbo")
    after = pooled.mock("qianwen")
    assert after["streams"] == before["streams"] + 1
    assert after["usage"]["prompt_tokens"] - before["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert after["usage"]["completion_tokens"] - before["usage"]["completion_tokens"] == CHUNKS


def test_a_stream_chosen_on_the_headers_reaches_the_client_chunk_by_chunk(stack, loads):
    loads(minmax=90, qianwen=10)
    stack.set_mock("qianwen", chunk_delay_ms=CHUNK_DELAY_MS)
    try:
        arrivals = stream_chat(stack, "auto")
    finally:
        stack.reset_mock("qianwen")
    assert_streamed_incrementally(arrivals, "qianwen", MODEL_OF["qianwen"])


def test_models_list_shows_the_pools_when_the_gateway_lists_them(pooled):
    models = list(client_of(pooled).models.list())
    assert sorted(model.id for model in models) == ["auto", "cheap"]
    assert {model.object for model in models} == {"model"}


def test_models_list_without_list_models_is_a_providers_own(stack):
    # The shipped configuration lists nothing itself: the general route's provider answers.
    models = list(client_of(stack).models.list())
    assert len(models) == 1, models
    assert models[0].id in MODEL_OF  # a mock lists its model_name, its own name by default
    assert models[0].owned_by == models[0].id


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_an_unknown_model_raises_the_sdks_not_found_error(pooled, streamed):
    seen = {name: pooled.mock(name)["requests"] for name in MODEL_OF}
    options = {"stream": True} if streamed else {}
    with pytest.raises(openai.NotFoundError) as raised:
        client_of(pooled).chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi"}], **options)
    error = raised.value
    assert error.status_code == 404
    assert error.code == "model_not_found"
    assert error.type == "invalid_request_error"
    assert "`gpt-5`" in error.message and "auto" in error.message, error.message
    assert {name: pooled.mock(name)["requests"] for name in MODEL_OF} == seen
