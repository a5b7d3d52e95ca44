"""Phone normalisation and the regional rules Meta applies to marketing messages.

Every phone that enters the system (CSV rows, segment persons, webhook payloads, Meta
webhooks) goes through `normalize_phone`, so equal numbers compare equal everywhere.
"""

import re
from typing import NamedTuple

import phonenumbers

# Meta blocks marketing messages to US numbers with error 131049.
MARKETING_BLOCKED_REGIONS = frozenset({"US"})

# Meta returns no read (or click) metrics for these regions: the EEA (EU member states plus
# Iceland, Liechtenstein and Norway), the United Kingdom, Japan and South Korea.
LIMITED_REPORTING_REGIONS = frozenset(
    {
        # European Union
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        # Rest of the EEA
        "IS", "LI", "NO",
        # United Kingdom, Japan, South Korea
        "GB", "JP", "KR",
    }
)  # fmt: skip

_CANONICAL_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class NormalizedPhone(NamedTuple):
    e164: str  # "" when invalid
    region: str  # ISO 3166-1 alpha-2, "" when unknown
    error: str  # "" when valid, otherwise a reason for the marketer

    @property
    def is_valid(self) -> bool:
        return not self.error

    @property
    def marketing_blocked(self) -> bool:
        return self.region in MARKETING_BLOCKED_REGIONS

    @property
    def limited_reporting(self) -> bool:
        return self.region in LIMITED_REPORTING_REGIONS


def normalize_phone(
    raw: str, default_region: str = "US", *, strict: bool = True
) -> NormalizedPhone:
    """Parse a phone as written by a person or a partner system.

    Numbers with a leading + (or 00) carry their country; bare digits are tried first as
    written for default_region and then, if that fails, as an international number
    without the + ("15551234567" is +1 555 123 4567).

    strict (audience ingest) demands a number libphonenumber knows to be assigned, so bad
    rows are flagged before a send instead of failing at Meta. Partner payloads (lead
    events, filters) only need to parse to a possible number: they are matched against
    phones that were validated on the way in, and seed 001 treats +15551234567 as valid.
    """
    check = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
    text = (raw or "").strip()
    if not text:
        return NormalizedPhone("", "", "missing phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    candidates = [text] if text.startswith("+") else [text, "+" + text]
    region_hint = None if text.startswith("+") else (default_region or None)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region_hint)
        except phonenumbers.NumberParseException:
            continue
        if check(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            region = phonenumbers.region_code_for_number(
                number
            ) or phonenumbers.region_code_for_country_code(number.country_code)
            region = "" if region == phonenumbers.UNKNOWN_REGION else region
            return NormalizedPhone(e164, region, "")
    return NormalizedPhone("", "", f"not a valid phone number: {raw.strip()[:40]!r}")


def canonical_or_normalized(raw: str, default_region: str = "US") -> str:
    """E.164 for matching against stored phones: "" when it cannot be a number.

    A value already written in canonical E.164 is used as is: it can only match a phone we
    stored after validating it, so validating it again would cost ~40 µs for nothing.
    """
    text = (raw or "").strip()
    if _CANONICAL_E164.match(text):
        return text
    return normalize_phone(text, default_region, strict=False).e164
