"""Opt-outs: written by STOP replies, Meta's marketing preferences, Meta errors and staff.

Always per organization: a phone that stops org A still hears from org B.
"""

from .models import OptOut


def record_opt_out(organization_id: int, phone_e164: str, *, scope: str, source: str) -> bool:
    """Remember that a phone opted out; True when it is new."""
    _, created = OptOut.objects.get_or_create(
        organization_id=organization_id,
        phone_e164=phone_e164,
        scope=scope,
        defaults={"source": source},
    )
    return created


def lift_marketing_opt_out(organization_id: int, phone_e164: str) -> int:
    """A phone resumed marketing messages (Meta's `resume`): its marketing opt-out goes.

    A STOP reply (scope all) stays: only the person can lift that, by a new opt-in.
    """
    deleted, _ = OptOut.objects.filter(
        organization_id=organization_id, phone_e164=phone_e164, scope=OptOut.Scope.MARKETING
    ).delete()
    return deleted
