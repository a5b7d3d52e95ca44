"""Primary keys read from outside text: URL paths, request bodies, query strings, the
callback data Meta echoes back.

`str.isdigit()` is not the test: it accepts '²' and other Unicode digits, which `int()` and the
database refuse with a 500. Only ASCII digits that fit a bigint are ids.
"""

import re

_PK = re.compile(r"[0-9]{1,18}")


def pk_from_text(value) -> int | None:
    """The integer id the text spells exactly, or None (which should match nothing).

    Not stripped: `strip()` also removes `\x1c`–`\x1f`, which `int()` then trips over, and an
    id with spaces around it is not the id.
    """
    if isinstance(value, str) and _PK.fullmatch(value):
        return int(value)
    return None
