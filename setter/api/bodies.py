"""Every body is honoured exactly or refused: the one place that knows which keys a body may
have and which strings PostgreSQL can store.

A key the server does not know is never dropped quietly: `{"scheduled_for": ...}` on start
used to start the campaign now. Each unknown key is named, and a snake_case spelling of a
known camelCase key gets the spelling it should have. A NUL character cannot be stored or
compared by PostgreSQL (the query fails), so a body or a path carrying one is refused before
any query runs, with the place of the string.
"""

import re
from collections.abc import Iterable

from .errors import BadRequest

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unknown_keys(obj: dict, known: Iterable[str], where: str = "") -> list[tuple[str, str]]:
    """(place, message) for each key of obj that is not one of `known`."""
    known = list(known)
    problems = []
    for key in obj:
        if key in known:
            continue
        place = f"{where}.{key}" if where else str(key)
        camel = camel_case(str(key))
        if camel != key and camel in known:
            problems.append((place, f"unknown key: did you mean {camel}?"))
        elif known:
            problems.append((place, f"unknown key (expected {', '.join(known)})"))
        else:
            problems.append((place, "unknown key (this call takes no body)"))
    return problems


def nul_place(data, where: str = "") -> str | None:
    """The place of the first key or string value in the JSON data holding a NUL, or None."""
    stack = [(data, where)]
    while stack:
        value, place = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return place or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{place}.{key}" if place else str(key)
                if isinstance(key, str) and "\x00" in key:
                    return place or "body"
                stack.append((item, child))
        elif isinstance(value, list):
            stack.extend((item, f"{place}[{index}]") for index, item in enumerate(value))
    return None


NUL_MESSAGE = "contains a NUL character (\\u0000), which cannot be stored"


def json_object(data) -> dict:
    """The JSON object body (`{}` when there is none), refused with a 400 when it is another
    JSON value or holds a NUL anywhere (a key, a string, inside a free-form filter)."""
    if data is None or data == b"" or (hasattr(data, "dict") and not data):
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("body: expected a JSON object")
    refuse_nul(data)
    return data


def refuse_nul(data, where: str = "") -> None:
    place = nul_place(data, where)
    if place is not None:
        raise BadRequest(f"{place}: {NUL_MESSAGE}")


def refuse_control_characters_in_path(kwargs: dict) -> None:
    """Ids in the path are printable: a NUL would fail the query, other control characters
    (`\\x1c`–`\\x1f` pass str.strip()) would silently miss."""
    for name, value in kwargs.items():
        if isinstance(value, str) and _CONTROL.search(value):
            raise BadRequest(f"{name}: control characters are not allowed in an id")


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
