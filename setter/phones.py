"""Phone normalisation and the regional rules Meta applies to marketing messages.

Every phone that enters the system (CSV rows, segment persons, webhook payloads, Meta
webhooks) goes through `normalize_phone`, so equal numbers compare equal everywhere.
"""

import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import ValidationResult
from phonenumbers import timezone as number_zones

# Meta blocks marketing messages to US numbers with error 131049.
MARKETING_BLOCKED_REGIONS = frozenset({"US"})

# Meta returns no read (or click) metrics for these regions: the EEA (EU member states plus
# Iceland, Liechtenstein and Norway), the United Kingdom, Japan and South Korea. Guernsey,
# Jersey and the Isle of Man share the UK's +44 numbering plan, and Meta's UK rule goes by
# the plan the marketer sees, so they count as the UK: the conservative reading is the safe one.
LIMITED_REPORTING_REGIONS = frozenset(
    {
        # European Union
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        # Rest of the EEA
        "IS", "LI", "NO",
        # United Kingdom with the crown dependencies, Japan, South Korea
        "GB", "GG", "JE", "IM", "JP", "KR",
    }
)  # fmt: skip

_CANONICAL_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_LENGTH_PROBLEMS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "the wrong length",
}


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

    Numbers with a leading + (or 00) carry their country. A number written the way
    default_region writes its own (parentheses, a leading trunk 0, or digits that form a
    possible number there) is read only as a number of that region: if it is not valid
    there it is invalid, never reread as another country's (a Brazilian "(20) 97200-5463"
    with an unknown area code must not become +20, Egypt). Only digits that cannot be a
    national number of default_region ("5511987654321" for BR) are read as an
    international number written without the +.

    strict (audience ingest) demands a number libphonenumber knows to be assigned, so bad
    rows are flagged before a send instead of failing at Meta. Partner payloads (lead
    events, filters) only need to parse to a possible number: they are matched against
    phones that were validated on the way in, and seed 001 treats +15551234567 as valid.
    """
    text = (raw or "").strip()
    if not text:
        return NormalizedPhone("", "", "missing phone number")
    shown = repr(text[:40])
    if text.startswith("00"):
        text = "+" + text[2:]
    region = (default_region or "").upper()
    national = None
    if not text.startswith("+") and region in phonenumbers.SUPPORTED_REGIONS:
        parsed = _parse(text, region)
        if parsed is not None:
            national = _checked(parsed, strict, f"not a valid {region} phone number: {shown}")
            if _written_nationally(text, parsed, region):
                return national
    parsed = _parse(text if text.startswith("+") else "+" + text, None)
    international = (
        NormalizedPhone("", "", f"not a phone number: {shown}")
        if parsed is None
        else _checked(parsed, strict, f"not a valid phone number: {shown}")
    )
    if international.is_valid or national is None:
        return international
    return national  # the marketer wrote for their region: say why it is not a number there


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _written_nationally(text: str, number: phonenumbers.PhoneNumber, region: str) -> bool:
    """Whether text, written without a country, can only mean a number of region."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if "(" in text or digits.startswith("0"):
        return True  # area-code brackets and trunk 0s are national writing; no country code starts with 0
    return phonenumbers.is_possible_number_with_reason(number) in (
        ValidationResult.IS_POSSIBLE,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ) and number.country_code == phonenumbers.country_code_for_region(region)


def _checked(number: phonenumbers.PhoneNumber, strict: bool, invalid: str) -> NormalizedPhone:
    length = phonenumbers.is_possible_number_with_reason(number)
    if length in _LENGTH_PROBLEMS:
        return NormalizedPhone("", "", f"{invalid} ({_LENGTH_PROBLEMS[length]})")
    if length == ValidationResult.INVALID_COUNTRY_CODE:
        return NormalizedPhone("", "", f"{invalid} (unknown country code)")
    if strict and not phonenumbers.is_valid_number(number):
        return NormalizedPhone("", "", f"{invalid} (no such area code or number range)")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(
        number
        # A parsed number always has its country code; the stub's field is Optional because an
        # empty PhoneNumber() can be built.
    ) or phonenumbers.region_code_for_country_code(number.country_code)  # type: ignore[arg-type]
    region = "" if region == phonenumbers.UNKNOWN_REGION else region
    return NormalizedPhone(e164, region, "")


def canonical_or_normalized(raw: str, default_region: str = "US") -> str:
    """E.164 for matching against stored phones: "" when it cannot be a number.

    A value already written in canonical E.164 is used as is: it can only match a phone we
    stored after validating it, so validating it again would cost ~40 µs for nothing.
    """
    text = (raw or "").strip()
    if _CANONICAL_E164.match(text):
        return text
    return normalize_phone(text, default_region, strict=False).e164


UNKNOWN_ZONE = "Etc/Unknown"


class PhoneZones(NamedTuple):
    """Where a phone is on the clock, by libphonenumber, as a lead stores it at ingest."""

    zone: str  # its area's zone when it has one, else its country's main zone; "" unknown
    zones: str  # when its area spans several zones, all of them, space-separated; else ""

    @property
    def candidates(self) -> list[str]:
        return self.zones.split() if self.zones else []


def phone_zones(text: str) -> PhoneZones:
    """A phone's zones: its own (an area code of +1 415: America/Los_Angeles) or, when its
    area spans several (an Australian mobile: eight), those with its country's main zone,
    the zone of the country's example landline (Australia/Sydney), to fall back on."""
    parsed = _parse(text, None) if text else None
    if parsed is None:
        return PhoneZones("", "")
    own = [zone for zone in number_zones.time_zones_for_number(parsed) if zone != UNKNOWN_ZONE]
    if len(own) == 1:
        return PhoneZones(own[0], "")
    main = own[0] if own else ""
    region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    if example is not None:
        country = [z for z in number_zones.time_zones_for_number(example) if z != UNKNOWN_ZONE]
        main = country[0] if country else main
    return PhoneZones(main, " ".join(own) if len(own) > 1 else "")
