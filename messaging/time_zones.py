"""Where an organization's sends start: its own default zone, else its first number's country.

A new send in the editor takes this zone, so a marketer in São Paulo does not have to find
America/Sao_Paulo among 600 zones for every send; the zone stays the marketer's to change.
"""

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
    try:
        parsed = phonenumbers.parse(number.display_phone_number, None)
    except phonenumbers.NumberParseException:
        return FALLBACK_ZONE
    own = [zone for zone in number_zones.time_zones_for_number(parsed) if zone != UNKNOWN_ZONE]
    if len(own) == 1:
        return own[0]
    if parsed.country_code is None:  # parse() always sets it; the stub allows None
        return FALLBACK_ZONE
    region = phonenumbers.region_code_for_country_code(parsed.country_code)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    if example is None:
        return own[0] if own else FALLBACK_ZONE
    country = [z for z in number_zones.time_zones_for_number(example) if z != UNKNOWN_ZONE]
    return (country or own or [FALLBACK_ZONE])[0]


def organization_time_zone(organization: Organization) -> str:
    """The zone a new send of the organization takes."""
    if organization.default_time_zone:
        return organization.default_time_zone
    first = organization.whatsapp_numbers.order_by("created_at", "pk").first()
    return number_time_zone(first) if first else FALLBACK_ZONE
