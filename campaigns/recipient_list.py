"""One recipient as the recipient list (a send's drill-down) and its CSV export show it:
the contact's name, the message as sent, the status timeline, the failure in plain words."""

import datetime as dt
from collections.abc import Iterator

from django.db.models import QuerySet

from messaging.errors import plain_words
from messaging.models import parameter_slots
from setter.csvstream import line_writer

from . import rendering

# The steps of a recipient's timeline in the order they happen, each with the column that
# holds its time (set by the transitions of campaigns.recipients and Meta's reports).
RECIPIENT_TIMELINE = (
    ("queued", "queued_at"),
    ("sent", "sent_at"),
    ("delivered", "delivered_at"),
    ("read", "read_at"),
    ("failed", "failed_at"),
)


def contact_name(first_name: str | None, last_name: str | None) -> str:
    """The lead's name as the list shows it ("" when the lead has none, or is gone)."""
    return " ".join(part for part in (first_name, last_name) if part)


def recipient_message(
    template_body: str, parameters: list[str] | None, template_components=()
) -> str:
    """The message the recipient got: the send's body when it fired, filled with the
    parameters its last attempt carried, then its text header and URL buttons as they were
    then (one line each); "" for a row never put on the wire."""
    if parameters is None or not template_body:
        return ""
    slots = parameter_slots(template_body, template_components)
    return rendering.render_message(template_body, slots, parameters)


def failure_reason(error_code: str, error_title: str) -> str:
    """Why the row did not (yet) reach the person, in plain words: messaging.errors' words
    for Meta's code, else the row's own title (Meta's, a skip's, a lost worker's)."""
    return plain_words(error_code) or error_title


def timeline(row) -> list[tuple[str, dt.datetime]]:
    """The steps the recipient reached, with their times: queued → sent → delivered → read
    (or failed). `row` has the timeline's columns as attributes."""
    steps = [(step, getattr(row, column)) for step, column in RECIPIENT_TIMELINE]
    return [(step, at) for step, at in steps if at is not None]


RECIPIENT_CSV_COLUMNS = (
    "phone_e164",
    "contact_name",
    "send_id",
    "send__name",
    "send__campaign__name",
    "status",
    "message",
    "error_code",
    "failure_reason",
    "error_title",
    "attempts",
    "wamid",
    "limited_reporting",
    *(column for _, column in RECIPIENT_TIMELINE),
)
# What the export reads per row: its plain columns and what the derived ones are made of.
_DERIVED_CSV_COLUMNS = ("contact_name", "message", "failure_reason")
_RECIPIENT_CSV_VALUES = (
    *(column for column in RECIPIENT_CSV_COLUMNS if column not in _DERIVED_CSV_COLUMNS),
    "lead__first_name",
    "lead__last_name",
    "send__template_body",
    "send__template_components",
    "parameters",
)


def recipients_csv(recipients: QuerySet) -> Iterator[str]:
    """The recipients as CSV lines, with the recipient list's columns, read in chunks so a
    100,000-row send streams in constant memory."""
    writer = line_writer()
    yield writer.writerow(RECIPIENT_CSV_COLUMNS)
    for row in recipients.values(*_RECIPIENT_CSV_VALUES).iterator(chunk_size=2000):
        row["contact_name"] = contact_name(row["lead__first_name"], row["lead__last_name"])
        row["message"] = recipient_message(
            row["send__template_body"], row["parameters"], row["send__template_components"]
        )
        row["failure_reason"] = failure_reason(row["error_code"], row["error_title"])
        yield writer.writerow(
            [
                value.isoformat() if isinstance(value, dt.datetime) else value
                for value in (row[column] for column in RECIPIENT_CSV_COLUMNS)
            ]
        )
