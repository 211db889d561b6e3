"""Chat-completion request bodies of an exact byte size, for benchmarks.

Python twin of `bench/rewrite/src/lib.rs` (`chat_body`): both must produce byte-identical
bodies, so a measurement through Envoy sends exactly what the native benchmark rewrote. The
recipe is documented there; `python3 bench/bodies.py` prints the sha256 of each benchmark size and
of all small sizes concatenated, which the Rust tests pin.
"""

import hashlib
import json

PREFIX = b'{"model":"auto","messages":['
SUFFIX = b'],"stream":false}'
CLOSE = b'"}'
ROLES = (b"user", b"assistant")
LETTERS = b"abcdefghijklmnopqrstuvwxyz"

# One message's content exactly as it appears on the wire (already JSON-escaped). Only the
# two-byte escapes \n and \" occur, never \\ or \u, which keeps the safe-cut rule simple.
PARAGRAPH = (
    r"Hi! I'm planning a three-day trip to Lyon and Paris next month and I'd love some help "
    r"with the itinerary.\nI arrive at a café near Gare de Lyon around noon on day one; my "
    r"friend Zoë says the \"bouchon\" restaurants in Lyon are a must, so please suggest two or "
    r"three that take reservations for four people. A colleague from Shanghai joins us on day "
    r"two and only knows a few words of French, so she asked me to learn how to greet people "
    r"properly (she taught me 你好 and 谢谢 in exchange). Could you also compare the TGV and "
    r"Ouigo trains for the Lyon–Paris leg in terms of price, comfort and luggage rules? We care "
    r"more about arriving relaxed than saving ten euros.\nFinally, give me a rainy-day plan for "
    r"Paris: museums that are not too crowded on a Saturday, a bakery with a good pain au "
    r"chocolat, and somewhere we can sit for an hour with laptops and decent Wi-Fi. Thanks — and "
    r"keep the answer under 300 words, please."
).encode("utf-8")

BENCH_SIZES = (1024, 102400, 1048576, 10485760)
# Every way the last message can be cut and padded occurs among these sizes.
SMALL_SIZES = range(73, 4 * len(PARAGRAPH))


def _opening(index: int) -> bytes:
    separator = b"," if index else b""
    return separator + b'{"role":"' + ROLES[index % 2] + b'","content":"'


def _fitted_content(budget: int) -> bytes:
    """PARAGRAPH cut to at most `budget` bytes, then padded with letters to exactly `budget`."""
    cut = min(budget, len(PARAGRAPH))
    # Never split a UTF-8 character (continuation bytes are 0b10xxxxxx) or a backslash escape.
    while cut > 0 and cut < len(PARAGRAPH) and (
        PARAGRAPH[cut] & 0xC0 == 0x80 or PARAGRAPH[cut - 1] == ord("\\")
    ):
        cut -= 1
    padding = bytes(LETTERS[i % len(LETTERS)] for i in range(budget - cut))
    return PARAGRAPH[:cut] + padding


def chat_body(size: int) -> bytes:
    """A valid JSON chat body of exactly `size` bytes (see the recipe in the Rust twin)."""
    body = bytearray(PREFIX)
    index = 0
    while True:
        opening = _opening(index)
        budget = size - len(body) - len(opening) - len(CLOSE) - len(SUFFIX)
        if budget < 0:
            raise ValueError(f"size {size} is too small for one message")
        # Full paragraphs while at least two still fit, so the last (fitted) message holds
        # between roughly one and two paragraphs and every message looks like real chat.
        last = budget < 2 * len(PARAGRAPH)
        content = _fitted_content(budget) if last else PARAGRAPH
        body += opening + content + CLOSE
        index += 1
        if last:
            break
    body += SUFFIX
    assert len(body) == size
    return bytes(body)


if __name__ == "__main__":
    for size in BENCH_SIZES:
        body = chat_body(size)
        json.loads(body)
        print(size, hashlib.sha256(body).hexdigest())
    small = hashlib.sha256()
    for size in SMALL_SIZES:
        body = chat_body(size)
        json.loads(body)
        small.update(body)
    print(f"{SMALL_SIZES.start}..{SMALL_SIZES.stop} concatenated", small.hexdigest())
