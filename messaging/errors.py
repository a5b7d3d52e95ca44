"""Meta's Graph API errors, sorted by what the send engine must do next.

Meta answers a failed call with an HTTP status and an error object
(`error.code`, `error_subcode`, `error_data.details`, `fbtrace_id`). The code, not the HTTP
status, says what went wrong, so the classification is a table from code to class; the
HTTP status only decides for codes the table does not know (5xx: transient, 429: throughput).

* ThroughputLimited: the number sends faster than Meta allows; slow the number, retry.
* PairRateLimited: too many messages to this one recipient; delay only that recipient.
* TransientError: Meta or the network hiccuped; retry with jittered exponential backoff.
* RecipientPermanentError: this recipient can never get this message; fail it, go on.
* SendLevelError: every recipient would fail the same way (template, token, account);
  pause the send and tell the marketer why instead of burning through the audience.

Some recipient codes say more than "this message failed": `recipient_verdict` is the one
place that decides what, for the send answer and the `failed` status webhook alike, and
campaigns.feedback.act_on_verdicts the one place that acts on it.
"""

import random
from typing import NamedTuple

from setter.phones import normalize_phone

# The user stopped marketing messages from this business (Meta error 131050).
MARKETING_STOPPED_CODES = frozenset({131050})
# Marketing not delivered (131049): for a US number that is Meta's geographic block; for
# anyone else it is the per-user marketing cap, which says nothing about the country.
MARKETING_BLOCKED_CODES = frozenset({131049})


class RecipientVerdict(NamedTuple):
    """What a recipient's failure means beyond the one message."""

    opts_out_marketing: bool = False  # remember a marketing opt-out for the phone
    ineligible_geo: bool = False  # the lead can never get marketing: Meta blocks its country


def recipient_verdict(code: int | str | None, to: str = "") -> RecipientVerdict:
    """The verdict for error `code` (an int, or the string a status webhook carries) on a
    message to `to` (E.164 or Meta's digits; "" when unknown)."""
    code = _as_int(code)
    blocked = code in MARKETING_BLOCKED_CODES and bool(to) and is_marketing_blocked(to)
    return RecipientVerdict(code in MARKETING_STOPPED_CODES, blocked)


def is_marketing_blocked(to: str) -> bool:
    """The recipient's country is one where Meta blocks marketing (the US)."""
    return normalize_phone("+" + to.lstrip("+"), strict=False).marketing_blocked


class WhatsAppError(Exception):
    """A Graph API call that did not send; codes the table does not know stay this class."""

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        subcode: int | None = None,
        title: str = "",
        details: str = "",
        fbtrace_id: str = "",
        http_status: int | None = None,
        to: str = "",
    ):
        self.to = to
        self.code = code
        self.subcode = subcode
        self.title = title or message
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        super().__init__(message or title or f"WhatsApp error {code}")


class ThroughputLimited(WhatsAppError):
    pass


class PairRateLimited(WhatsAppError):
    pass


class TransientError(WhatsAppError):
    """Retryable. may_have_been_sent: the request reached Meta but no answer came back
    (read timeout, connection dropped mid-answer), so Meta may have accepted the message."""

    may_have_been_sent = False


class RecipientPermanentError(WhatsAppError):
    """This recipient can never get this message; `to` (the recipient) decides the verdict."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.verdict = recipient_verdict(self.code, self.to)


class SendLevelError(WhatsAppError):
    @property
    def marketer_message(self) -> str:
        """Why the send was paused and what to do, in the marketer's words."""
        reason = plain_words(self.code)
        reason = reason or "Meta refused the send for a reason that applies to every recipient."
        return f"{reason} (Meta error {self.code}: {self.title})"


def plain_words(code: int | str | None) -> str:
    """What Meta's error `code` (an int, or the string a recipient row or a status webhook
    keeps) means, in the marketer's words; "" for a code the table does not explain."""
    code = _as_int(code)
    if code is None:
        return ""
    if code not in _PLAIN_WORDS and 132000 <= code < 133000:
        code = 132000
    return _PLAIN_WORDS.get(code, "")


# Meta's titles are terse and technical ("Re-engagement message"): what each code means for
# the marketer, for a paused send's reason and a recipient's failure alike.
_PLAIN_WORDS = {
    # The number, the recipient: one recipient's message.
    130429: "The number sent faster than Meta allows; the message was retried more slowly.",
    131056: "Too many messages to this phone in a short time; Meta asked to wait.",
    131000: "Meta had an internal problem with this message.",
    131016: "Meta was overloaded when this message was sent.",
    131009: "A parameter value (this lead's data) is not valid for the template.",
    131021: "The recipient is the sending number itself.",
    131026: "The message could not be delivered: the phone may not use WhatsApp, or has not "
    "accepted WhatsApp's latest terms.",
    131030: "The phone is not on the number's allowed list (a test number can only message "
    "the phones registered for it).",
    131047: "More than 24 hours passed since the person last wrote: only a template message "
    "may be sent.",
    131049: "Meta did not deliver this marketing message (the person's marketing limit, or "
    "Meta blocks marketing to US numbers).",
    131050: "The person stopped marketing messages from this business.",
    130472: "Meta held the message back: the person's number is part of a Meta experiment.",
    130497: "The business may not message people in this person's country.",
    # The send: every recipient would fail the same way.
    100: "Meta rejected the request as invalid (unknown number or bad parameters).",
    190: "The number's access token expired or was revoked: update it on the WhatsApp number.",
    131031: "Meta locked the WhatsApp Business Account: resolve it in WhatsApp Manager.",
    368: "Meta temporarily blocked the account for a policy violation.",
    131055: "Marketing Messages Lite is not available for this send: accept the MM Lite "
    "terms for the WABA, and use a MARKETING template.",
    131063: "Marketing messages are disabled for this WhatsApp Business Account.",
    132000: "The template does not match what Meta approved (name, language, status or "
    "parameters): check it in WhatsApp Manager and sync templates.",
    132001: "The template does not exist in this language or is not approved.",
    132015: "Meta paused the template for low quality.",
    132016: "Meta disabled the template.",
    133010: "The phone number is not registered with the Cloud API.",
}

# Code → class. Every 132xxx (template) code is send-level as well, see classify().
ERROR_CLASSES: dict[int, type[WhatsAppError]] = {
    4: ThroughputLimited,  # application request limit
    80007: ThroughputLimited,  # WABA rate limit
    130429: ThroughputLimited,  # throughput (messages per second) reached
    131056: PairRateLimited,  # too many messages to one recipient
    1: TransientError,  # unknown API error
    2: TransientError,  # service temporarily unavailable
    131000: TransientError,  # something went wrong
    131016: TransientError,  # service overloaded
    133004: TransientError,  # server temporarily unavailable
    131009: RecipientPermanentError,  # a parameter value (this recipient's data) is invalid
    131021: RecipientPermanentError,  # recipient is the sender
    131026: RecipientPermanentError,  # message undeliverable
    131030: RecipientPermanentError,  # recipient not in the allowed list
    131047: RecipientPermanentError,  # re-engagement message outside the 24 h window
    131049: RecipientPermanentError,  # marketing not delivered (US block / engagement cap)
    131050: RecipientPermanentError,  # user stopped marketing messages
    130472: RecipientPermanentError,  # user's number is part of an experiment
    130497: RecipientPermanentError,  # business may not message users in this country
    3: SendLevelError,  # capability missing
    10: SendLevelError,  # permission denied
    100: SendLevelError,  # invalid parameter / unknown object
    190: SendLevelError,  # access token expired or invalid
    200: SendLevelError,  # permissions
    368: SendLevelError,  # temporarily blocked for policy violations
    131008: SendLevelError,  # required parameter missing
    131031: SendLevelError,  # account locked
    131037: SendLevelError,  # display name not approved
    131042: SendLevelError,  # payment problem
    131045: SendLevelError,  # certificate / registration
    131055: SendLevelError,  # method not allowed (MM Lite terms, non-marketing template)
    131063: SendLevelError,  # marketing messages disabled
    133010: SendLevelError,  # phone number not registered
}


def error_class_for(code: int | None, http_status: int | None) -> type[WhatsAppError]:
    if code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if code is not None and 132000 <= code < 133000:
        return SendLevelError
    if http_status is not None and http_status >= 500:
        return TransientError
    if http_status == 429:
        return ThroughputLimited
    if http_status == 401:
        return SendLevelError
    return WhatsAppError


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify(http_status: int | None, error_json, *, to: str = "") -> WhatsAppError:
    """The exception for a failed Graph API answer; error_json is the decoded body (any shape),
    `to` the recipient of the message it answers ("" for calls that send nothing)."""
    error = error_json.get("error") if isinstance(error_json, dict) else None
    error = error if isinstance(error, dict) else {}
    code = _as_int(error.get("code"))
    error_data = error.get("error_data")
    error_data = error_data if isinstance(error_data, dict) else {}
    message = str(error.get("message") or f"HTTP {http_status}")
    error_class = error_class_for(code, http_status)
    return error_class(
        message,
        code=code,
        subcode=_as_int(error.get("error_subcode")),
        title=str(error.get("error_user_title") or message),
        details=str(error_data.get("details") or error.get("error_user_msg") or ""),
        fbtrace_id=str(error.get("fbtrace_id") or ""),
        http_status=http_status,
        to=to,
    )


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 10.0) -> float:
    """Seconds before retry number `attempt` (0-based): "full jitter" exponential backoff.

    A uniform draw in [0, min(cap, base·2^attempt)] spreads the retries of many recipients
    that failed together, so they do not come back as one burst.
    """
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt)))


class RetryClass:
    """What retrying a failed recipient means (issue 15.2), by its last error code.

    A retry of a send re-messages the RETRIED_BY_DEFAULT classes: Meta or the network
    failed (the attempts ran out), or something every recipient shared and the marketer may
    have fixed since (template, token, account). The recipient-permanent classes say the
    phone itself will fail again; each is retried only when the marketer includes it."""

    RETRYABLE = "retryable"
    SEND_LEVEL = "send_level"
    UNDELIVERABLE = "undeliverable"  # 131026
    MARKETING_BLOCKED = "marketing_blocked"  # 131049
    MARKETING_STOPPED = "marketing_stopped"  # 131050
    RECIPIENT_PERMANENT = "recipient_permanent"  # any other recipient-permanent code

    RETRIED_BY_DEFAULT = (RETRYABLE, SEND_LEVEL)
    INCLUDABLE = (UNDELIVERABLE, MARKETING_BLOCKED, MARKETING_STOPPED, RECIPIENT_PERMANENT)
    NOT_INCLUDABLE = "{input!r} is not a failure class that can be included; one of {choices}"
    LABELS = {
        RETRYABLE: "Meta or the network failed and the attempts ran out",
        SEND_LEVEL: "A template, token or account problem (every recipient failed alike)",
        UNDELIVERABLE: "Undeliverable (131026): the phone may not use WhatsApp",
        MARKETING_BLOCKED: "Marketing not delivered (131049): the person's marketing limit, "
        "or a US number",
        MARKETING_STOPPED: "Stopped marketing (131050): the person opted out at Meta",
        RECIPIENT_PERMANENT: "Another problem with the phone or its data (e.g. 131009)",
    }
    # Why an included permanent class needs a second thought: shown where it is picked.
    WARNINGS = {
        UNDELIVERABLE: "Meta said these phones cannot get the message; most will fail again "
        "and repeated failures hurt the number's quality rating.",
        MARKETING_BLOCKED: "Meta withheld these on purpose; US numbers are never delivered "
        "and others only once the person's marketing limit has passed.",
        MARKETING_STOPPED: "These people told Meta to stop marketing; they are messaged only "
        "if their opt-out was removed since.",
        RECIPIENT_PERMANENT: "Meta refused these for the phone or its data; they fail again "
        "unless the lead's data was corrected.",
    }

    _CODES = {131026: UNDELIVERABLE, 131049: MARKETING_BLOCKED, 131050: MARKETING_STOPPED}

    @classmethod
    def of(cls, code: int | str | None) -> str:
        """The class of a failure with error `code` (as a recipient row keeps it; "" when the
        failure carried none, e.g. the network)."""
        number = _as_int(code)
        if number in cls._CODES:
            return cls._CODES[number]
        error_class = error_class_for(number, None)
        if issubclass(error_class, RecipientPermanentError):
            return cls.RECIPIENT_PERMANENT
        if issubclass(error_class, SendLevelError):
            return cls.SEND_LEVEL
        return cls.RETRYABLE
