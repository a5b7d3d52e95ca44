"""Recognising an opt-out reply, conservatively, as seed 004 describes.

A reply opts out only when the whole message is a STOP-style keyword, or when it starts
with one followed by punctuation ("STOP!", "unsubscribe, thanks"). Phrases that merely
contain a keyword ("please don't stop sending these") never do: a false opt-out silently
loses a customer, a missed one is caught by the next explicit STOP.
"""

import re

STOP_KEYWORDS = (
    "stop",
    "unsubscribe",
    "unsub",
    "cancel",
    "end",
    "quit",
    "remove me",
    "opt out",
    "opt-out",
)

_KEYWORD = "|".join(
    re.escape(keyword).replace(r"\ ", r"\s+").replace(r"\-", r"[-\s]?")
    for keyword in sorted(STOP_KEYWORDS, key=len, reverse=True)
)
# The keyword alone (with trailing punctuation), or the keyword then punctuation then anything.
_STOP_MESSAGE = re.compile(
    rf"^\s*(?:{_KEYWORD})\s*(?:[^\w\s]+.*)?$", re.IGNORECASE | re.DOTALL | re.UNICODE
)


def is_stop_message(text: str | None) -> bool:
    """True when an inbound text is a request to stop receiving messages."""
    if not text:
        return False
    return _STOP_MESSAGE.match(text) is not None
