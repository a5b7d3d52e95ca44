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


def opt_out_marketing_from_meta(organization_id: int, phones) -> int:
    """Meta said these phones stopped marketing from the business (error 131050, in a send
    answer or a `failed` status webhook): a marketing opt-out each. Returns how many are new.

    Two statements for a whole batch of a dispatcher or a webhook delivery, whatever its size;
    a phone already opted out keeps its first source.
    """
    phones = sorted({phone for phone in phones if phone})
    if not phones:
        return 0
    already = set(
        OptOut.objects.filter(
            organization_id=organization_id,
            scope=OptOut.Scope.MARKETING,
            phone_e164__in=phones,
        ).values_list("phone_e164", flat=True)
    )
    created = OptOut.objects.bulk_create(
        [
            OptOut(
                organization_id=organization_id,
                phone_e164=phone,
                scope=OptOut.Scope.MARKETING,
                source=OptOut.Source.META_ERROR,
            )
            for phone in phones
            if phone not in already
        ],
        ignore_conflicts=True,
    )
    return len(created)
