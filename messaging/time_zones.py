"""Where an organization's sends start: its own default zone, else its first number's country.

A new send in the editor takes this zone, so a marketer in São Paulo does not have to find
America/Sao_Paulo among 600 zones for every send; the zone stays the marketer's to change.
"""

import functools

import phonenumbers
from phonenumbers import timezone as number_zones

from setter.models import Organization

from .models import WhatsAppNumber

FALLBACK_ZONE = "UTC"
UNKNOWN_ZONE = "Etc/Unknown"


def number_time_zone(number: WhatsAppNumber) -> str:
    """The zone of the number's country by libphonenumber: the number's own zone when its
    area has one (+1 415 …: America/Los_Angeles), else the zone of its country's example
    landline (+1 555 …: America/New_York), UTC when the number cannot be read."""
    own, country = _zones(number.display_phone_number)
    if len(own) == 1:
        return own[0]
    return (country or own or [FALLBACK_ZONE])[0]


@functools.lru_cache(maxsize=100_000)
def phone_time_zone(phone_e164: str, fallback: str) -> str:
    """A recipient's zone (issue 16.2's send window): the phone's own zone when its area has
    one; when it maps to several (an Australian mobile: eight), `fallback` (the send's own
    zone) if it is one of them, else its country's as number_time_zone reads it; `fallback`
    when the phone cannot be read."""
    own, country = _zones(phone_e164)
    if len(own) == 1:
        return own[0]
    if fallback in own:
        return fallback
    return (country or own or [fallback])[0]


def _zones(text: str) -> tuple[list[str], list[str]]:
    """The phone's own zones, and those of its country's example landline."""
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return [], []
    own = [zone for zone in number_zones.time_zones_for_number(parsed) if zone != UNKNOWN_ZONE]
    if len(own) == 1 or parsed.country_code is None:  # parse() always sets it; the stub allows None
        return own, []
    region = phonenumbers.region_code_for_country_code(parsed.country_code)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    if example is None:
        return own, []
    return own, [z for z in number_zones.time_zones_for_number(example) if z != UNKNOWN_ZONE]


def organization_time_zone(organization: Organization) -> str:
    """The zone a new send of the organization takes."""
    if organization.default_time_zone:
        return organization.default_time_zone
    first = organization.whatsapp_numbers.order_by("created_at", "pk").first()
    return number_time_zone(first) if first else FALLBACK_ZONE
