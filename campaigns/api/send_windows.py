"""A send window (issue 16.2, quiet hours) as the REST API takes and shows it: on a campaign
(`sendWindow` of the campaign body) and as the organization's default (delivery settings),
declared once in campaigns.api.contract. Days are named (mon … sun); the model keeps them as
0 (Monday) … 6."""

import datetime as dt

from setter.send_windows import ALL_DAYS, WEEKDAYS, WindowOutside, window_problems

# Model field → the key of the API's window object.
KEYS = {"window_start": "start", "window_end": "end", "window_days": "days"}


def window_fields(value: dict | None) -> dict:
    """The model fields a validated `sendWindow` sets (null: no window of its own)."""
    if value is None:
        return {
            "window_start": None,
            "window_end": None,
            "window_days": list(ALL_DAYS),
            "window_outside": WindowOutside.WAIT,
        }
    return {
        "window_start": dt.time.fromisoformat(value["start"]),
        "window_end": dt.time.fromisoformat(value["end"]),
        "window_days": sorted({WEEKDAYS.index(day) for day in value.get("days", WEEKDAYS)}),
        "window_outside": value.get("outside", WindowOutside.WAIT),
    }


def window_problem_paths(fields: dict, path: str) -> list[str]:
    """The window rule's problems (setter.send_windows) named by their place in the body."""
    problems = window_problems(fields["window_start"], fields["window_end"], fields["window_days"])
    return [f"{path}.{KEYS[field]}: {message}" for field, message in problems.items()]


def window_json(owner) -> dict | None:
    """A campaign's or an organization's own window, or None."""
    if owner.window_start is None or owner.window_end is None:
        return None
    return {
        "start": owner.window_start.isoformat(timespec="minutes"),
        "end": owner.window_end.isoformat(timespec="minutes"),
        "days": [WEEKDAYS[day] for day in owner.window_days or ALL_DAYS],
        "outside": owner.window_outside,
    }
