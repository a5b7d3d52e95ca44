"""Reading an audience CSV: which column is what, and what each row becomes.

Nothing here touches Django or the database, so parser processes import only this module
and `phonenumbers` (see `audiences.services.ingest_audience`). Every reason written here is
shown to the marketer as is.
"""

import csv
import functools
import io
import re
import zoneinfo
from dataclasses import dataclass, replace

import orjson

from setter.phones import normalize_phone, phone_zones

# Header spellings, compared after lower-casing and dropping spaces, "_", "-" and ".".
# The phone aliases are in order of preference when a file has several of them.
PHONE_HEADERS = (
    "phonee164",
    "e164",
    "phone",
    "phonenumber",
    "whatsapp",
    "whatsappnumber",
    "whatsappphone",
    "mobile",
    "mobilephone",
    "mobilenumber",
    "cellphone",
    "cell",
    "msisdn",
    "telephone",
    "tel",
)
KNOWN_HEADERS = {
    "external_id": ("externalid", "leadid", "customerid"),
    "first_name": ("firstname", "givenname", "forename"),
    "last_name": ("lastname", "surname", "familyname"),
    "email": ("email", "emailaddress", "mail"),
    "time_zone": ("timezone", "tz", "ianatimezone"),
}
SNIFFED_DELIMITERS = (",", ";", "\t", "|")

# Model field lengths: COPY rejects a whole batch over one value that does not fit.
MAX_LENGTHS = {"external_id": 255, "phone_raw": 64, "name": 200, "email": 254, "reason": 255}
UNKNOWN_TIME_ZONE_REASON = "unknown time zone {zone!r}: use an IANA name such as Europe/London"

# Columns of the rows produced here, in order.
LEAD_FIELDS = (
    "row_number",
    "external_id",
    "phone_raw",
    "phone_e164",
    "region",
    "first_name",
    "last_name",
    "email",
    "variables",
    "ingest_status",
    "reject_reason",
    "limited_reporting",
    "time_zone",
    "phone_zone",
    "phone_zones",
)

INELIGIBLE_GEO_REASON = (
    "{region} number: Meta blocks marketing messages to it (error 131049); "
    "utility messages can still reach it"
)

_HEADER_NOISE = re.compile(r"[\s_\-.]+")


class IngestError(Exception):
    """A file we cannot ingest; the message tells the marketer why and what to do."""


def header_key(header: str) -> str:
    return _HEADER_NOISE.sub("", header).lower()


def sniff_delimiter(head: bytes) -> str:
    """The delimiter used most in the header line (comma when there is only one column).

    Header names seldom contain a delimiter, so counting on the first line is steadier than
    csv.Sniffer on data rows full of quoted free text.
    """
    first_line = head.split(b"\n", 1)[0].decode("utf-8", errors="ignore")
    counts = {delimiter: first_line.count(delimiter) for delimiter in SNIFFED_DELIMITERS}
    best = max(SNIFFED_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


@dataclass(frozen=True)
class ColumnMap:
    """Where each lead field sits in a row; `variables` are (index, header) pairs."""

    width: int
    phone: int
    variables: tuple[tuple[int, str], ...]
    external_id: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    email: int | None = None
    time_zone: int | None = None


def map_columns(header: list[str], phone_column: str = "") -> ColumnMap:
    headers = [name.strip() for name in header]
    keys = [header_key(name) for name in headers]
    listed = ", ".join(name or "(blank)" for name in headers)
    if phone_column:
        wanted = phone_column.strip()
        matches = [i for i, name in enumerate(headers) if name == wanted] or [
            i for i, key in enumerate(keys) if key == header_key(wanted)
        ]
        if not matches:
            raise IngestError(f"The file has no column named {wanted!r}: its headers are {listed}.")
        phone = matches[0]
    else:
        found = [keys.index(alias) for alias in PHONE_HEADERS if alias in keys]
        if not found:
            raise IngestError(
                "The file has no phone column: looked for "
                f"{', '.join(PHONE_HEADERS)} in headers {listed}. "
                "Rename the column or name it in the upload form."
            )
        phone = found[0]

    known = {}
    for field, aliases in KNOWN_HEADERS.items():
        for alias in (header_key(field), *aliases):
            if alias in keys and keys.index(alias) != phone:
                known[field] = keys.index(alias)
                break
    taken = {phone, *known.values()}
    variables = tuple(
        (i, name or f"column_{i + 1}") for i, name in enumerate(headers) if i not in taken
    )
    return ColumnMap(width=len(headers), phone=phone, variables=variables, **known)


@dataclass(frozen=True)
class ChunkJob:
    """One batch of raw CSV rows and everything needed to turn them into lead rows.

    Statuses come in from the model so this module keeps no copy of that vocabulary.
    `copy_prefix` set: the result is COPY-ready CSV text with those values first on each
    line; unset: a list of tuples in LEAD_FIELDS order.
    """

    rows: list[list[str]]
    first_row_number: int
    columns: ColumnMap
    default_region: str
    statuses: dict[str, str]
    copy_prefix: tuple = ()


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None else ""


def classify_rows(job: ChunkJob) -> list[tuple]:
    columns = job.columns
    lead_rows = []
    for row_number, row in enumerate(job.rows, start=job.first_row_number):
        if len(row) < columns.width:
            row = row + [""] * (columns.width - len(row))
        lead_rows.append(
            classify_lead(
                row_number=row_number,
                phone_raw=row[columns.phone],
                default_region=job.default_region,
                statuses=job.statuses,
                external_id=_cell(row, columns.external_id),
                first_name=_cell(row, columns.first_name),
                last_name=_cell(row, columns.last_name),
                email=_cell(row, columns.email),
                time_zone=_cell(row, columns.time_zone),
                variables={name: row[i].strip() for i, name in columns.variables},
            )
        )
    return lead_rows


def classify_lead(
    *,
    row_number: int,
    phone_raw: str,
    default_region: str,
    statuses: dict[str, str],
    external_id: str = "",
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    time_zone: str = "",
    variables: dict[str, str],
) -> tuple:
    """One lead row in LEAD_FIELDS order: its normalised phone, zones and ingest status.

    The one place a lead's status is decided, for CSV rows and API persons alike.
    Duplicates are settled later, across the whole audience. A time zone is an IANA name,
    in any letter case; any other value rejects the row rather than being ignored, since a
    local-time send would otherwise reach the lead at its phone's hour, not the one given.
    """
    phone_raw = phone_raw.strip()
    phone = normalize_phone(phone_raw, default_region, strict=True)
    zone = time_zone.strip()
    known_zone = _zone_names().get(zone.lower(), "") if zone else ""
    zones = phone_zones(phone.e164) if phone.is_valid else None
    if not phone.is_valid:
        status, reason = statuses["invalid_phone"], phone.error
    elif zone and not known_zone:
        status = statuses["invalid_time_zone"]
        reason = UNKNOWN_TIME_ZONE_REASON.format(zone=zone[:64])
    elif phone.marketing_blocked:
        status = statuses["ineligible_geo"]
        reason = INELIGIBLE_GEO_REASON.format(region=phone.region)
    else:
        status, reason = statuses["ok"], ""
    return (
        row_number,
        external_id[: MAX_LENGTHS["external_id"]],
        phone_raw[: MAX_LENGTHS["phone_raw"]],
        phone.e164,
        phone.region,
        first_name[: MAX_LENGTHS["name"]],
        last_name[: MAX_LENGTHS["name"]],
        email[: MAX_LENGTHS["email"]],
        variables,
        status,
        reason[: MAX_LENGTHS["reason"]],
        phone.limited_reporting,
        known_zone,
        zones.zone if zones else "",
        zones.zones if zones else "",
    )


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA zone by its lower-cased name."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def process_chunk(job: ChunkJob):
    """Classify a chunk; in COPY mode also format it, so parser processes do that work too."""
    if not job.copy_prefix:
        return classify_rows(job)
    text = _copy_text(job, classify_rows(job))
    if "\x00" in text or "\\u0000" in text:
        # PostgreSQL text and jsonb cannot hold NUL: drop it from the cells and go again.
        job = replace(job, rows=[[value.replace("\x00", "") for value in row] for row in job.rows])
        text = _copy_text(job, classify_rows(job))
    return text


def _copy_text(job: ChunkJob, lead_rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    prefix = job.copy_prefix
    variables_at = LEAD_FIELDS.index("variables")
    limited_at = LEAD_FIELDS.index("limited_reporting")
    for lead in lead_rows:
        values = list(lead)
        values[variables_at] = orjson.dumps(values[variables_at]).decode()
        values[limited_at] = "t" if values[limited_at] else "f"
        writer.writerow((*prefix, *values))
    return buffer.getvalue()
