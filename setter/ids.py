"""Primary keys read from outside text: URL paths, request bodies, query strings, the
callback data Meta echoes back.

`str.isdigit()` is not the test: it accepts '²' and other Unicode digits, which `int()` and the
database refuse with a 500. Only ASCII digits that fit a bigint are ids.
"""

import re

_PK = re.compile(r"[0-9]{1,18}")
# The largest primary key (PostgreSQL's bigint).
MAX_ID = 2**63 - 1
# Ids partners choose (campaigns, segments): URL-safe, so an id can sit in a path.
API_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# "query" is the query endpoints' name in the same paths.
RESERVED_API_IDS = ("query",)


def pk_from_text(value) -> int | None:
    """The integer id the text spells exactly, or None (which should match nothing).

    Not stripped: `strip()` also removes `\x1c`–`\x1f`, which `int()` then trips over, and an
    id with spaces around it is not the id.
    """
    if isinstance(value, str) and _PK.fullmatch(value):
        return int(value)
    return None


def api_id_problem(value, *, numeric_allowed: bool = True) -> str | None:
    """Why a partner's chosen id cannot be used, or None. Segments refuse all-digit ids:
    those are the numbers of segments that have no chosen id."""
    if not isinstance(value, str) or not API_ID_PATTERN.fullmatch(value):
        return "1 to 100 characters: letters, digits and . _ : - (not first)"
    if value in RESERVED_API_IDS:
        return f"{value!r} is reserved"
    if not numeric_allowed and _PK.fullmatch(value):
        return "not only digits (those are the ids of segments without a chosen one)"
    return None
