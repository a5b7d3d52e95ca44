"""Instants read from outside (API bodies, filters, partner events).

Python can parse year 1 or 9999 with any offset, but converting such an instant to UTC
overflows, a 500 instead of a 400. Every instant we accept lies in a range any database and
any conversion handle.
"""

import datetime as dt

EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def in_supported_range(moment: dt.datetime) -> bool:
    """Whether the aware instant lies in 1970–9000 (converting it to UTC cannot overflow)."""
    try:
        return EARLIEST <= moment.astimezone(dt.UTC) < LATEST
    except OverflowError:
        return False
