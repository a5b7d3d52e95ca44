"""Where an organization's sends start: its own default zone, else its first number's country.

A new send in the editor takes this zone, so a marketer in São Paulo does not have to find
America/Sao_Paulo among 600 zones for every send; the zone stays the marketer's to change.
"""

from setter.models import Organization
from setter.phones import phone_zones

from .models import WhatsAppNumber

FALLBACK_ZONE = "UTC"


def number_time_zone(number: WhatsAppNumber) -> str:
    """The zone of the number's country by libphonenumber (setter.phones.phone_zones): the
    number's own zone when its area has one (+1 415 …: America/Los_Angeles), else its
    country's main zone (+1 555 …: America/New_York), UTC when the number cannot be read."""
    return phone_zones(number.display_phone_number).zone or FALLBACK_ZONE


def organization_time_zone(organization: Organization) -> str:
    """The zone a new send of the organization takes."""
    if organization.default_time_zone:
        return organization.default_time_zone
    first = organization.whatsapp_numbers.order_by("created_at", "pk").first()
    return number_time_zone(first) if first else FALLBACK_ZONE
