"""How fast a send goes: its own max_messages_per_second, its number's throughput (synced
from Meta), and that throughput as Meta's 130429 answers adapted it. The dispatcher paces by
these limits; the editor, the API and /metrics show the same figures and say why a send goes
slower than it was set to."""

from typing import NamedTuple

from messaging.models import WhatsAppNumber
from messaging.ratelimit import Limit, get_rate_limiter

from .models import Send


def number_limit(number: WhatsAppNumber) -> Limit:
    """The number's throughput, adapted to Meta's 130429 answers."""
    return Limit(f"number:{number.pk}", float(number.throughput_mps), adaptive=True)


def send_limits(send: Send) -> list[Limit]:
    return [
        Limit(f"send:{send.pk}", float(send.max_messages_per_second)),
        number_limit(send.campaign.whatsapp_number),
    ]


class SendRate(NamedTuple):
    configured: int
    effective: float
    reason: str  # why effective < configured; empty when it is not

    def as_json(self) -> dict:
        return {
            "configured": self.configured,
            "effective": round(self.effective, 1),
            "reason": self.reason or None,
        }


def capped_by_number_warning(send: Send) -> str:
    """A warning when the number's throughput is below the send's rate (empty if not)."""
    cap = send.campaign.whatsapp_number.throughput_mps
    if cap >= send.max_messages_per_second:
        return ""
    return (
        f"{send}: the number's throughput is {cap} messages/s (synced from Meta), so this send "
        f"goes at most {cap}/s, not the {send.max_messages_per_second}/s it is set to."
    )


def rate_warnings(sends) -> list[str]:
    """What the marketer is told at scheduling: sends their number will hold back."""
    return [warning for send in sends if (warning := capped_by_number_warning(send))]


def send_rate(send: Send) -> SendRate:
    """The rate the send goes at now, and the reason when it is below its own setting."""
    configured = send.max_messages_per_second
    adapted = get_rate_limiter().adapted_rate(number_limit(send.campaign.whatsapp_number))
    effective = min(float(configured), adapted.rate)
    if effective >= configured:
        return SendRate(configured, float(configured), "")
    if adapted.reduced and adapted.rate < configured:
        reason = (
            f"Meta answered {adapted.refused_share:.0%} of a second's messages with 130429 "
            f"(throughput reached) at {adapted.cut_at:%H:%M:%S} UTC: the number slowed to "
            f"{adapted.rate:.0f}/s and recovers towards its {adapted.cap:.0f}/s."
        )
    else:
        reason = capped_by_number_warning(send)
    return SendRate(configured, effective, reason)
