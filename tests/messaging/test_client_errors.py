"""Meta's error answers decide what the send engine does next."""

import pytest

from messaging import errors


def meta_error(code, subcode=None, details="details", message="message"):
    error = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "AbCdEf",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(
    "code, http_status, expected",
    [
        (130429, 429, errors.ThroughputLimited),
        (130429, 400, errors.ThroughputLimited),
        (131056, 400, errors.PairRateLimited),
        (131000, 500, errors.TransientError),
        (131016, 503, errors.TransientError),
        (131049, 400, errors.RecipientPermanentError),
        (131026, 400, errors.RecipientPermanentError),
        (131047, 400, errors.RecipientPermanentError),
        (131050, 400, errors.RecipientPermanentError),
        (132000, 400, errors.SendLevelError),
        (132001, 404, errors.SendLevelError),
        (132015, 400, errors.SendLevelError),
        (132016, 400, errors.SendLevelError),
        (132069, 400, errors.SendLevelError),
        (131055, 400, errors.SendLevelError),
        (131063, 400, errors.SendLevelError),
        (190, 401, errors.SendLevelError),
        (131031, 400, errors.SendLevelError),
        (368, 400, errors.SendLevelError),
    ],
)
def test_every_code_the_engine_acts_on_has_its_class(code, http_status, expected):
    error = errors.classify(http_status, meta_error(code))

    assert type(error) is expected
    assert error.code == code
    assert error.http_status == http_status


def test_error_object_fields_are_kept():
    error = errors.classify(
        400, meta_error(131026, subcode=2494055, details="Receiver is incapable", message="Nope")
    )

    assert (error.code, error.subcode, error.title) == (131026, 2494055, "Nope")
    assert error.details == "Receiver is incapable"
    assert error.fbtrace_id == "AbCdEf"


def test_recipient_flags():
    us_block = errors.classify(400, meta_error(131049), to="12025550143")
    capped = errors.classify(400, meta_error(131049), to="+5511912345678")
    stopped = errors.classify(400, meta_error(131050), to="+5511912345678")
    undeliverable = errors.classify(400, meta_error(131026), to="12025550143")

    assert us_block.verdict == errors.RecipientVerdict(ineligible_geo=True)
    assert capped.verdict == errors.RecipientVerdict()  # the marketing cap
    assert stopped.verdict == errors.RecipientVerdict(opts_out_marketing=True)
    assert undeliverable.verdict == errors.RecipientVerdict()


@pytest.mark.parametrize(
    ("code", "to", "verdict"),
    [
        (131050, "+447400123456", errors.RecipientVerdict(opts_out_marketing=True)),
        ("131050", "447400123456", errors.RecipientVerdict(opts_out_marketing=True)),
        (131049, "+12025550143", errors.RecipientVerdict(ineligible_geo=True)),
        ("131049", "12025550143", errors.RecipientVerdict(ineligible_geo=True)),
        (131049, "+447400123456", errors.RecipientVerdict()),
        (131049, "", errors.RecipientVerdict()),
        (131026, "+12025550143", errors.RecipientVerdict()),
        ("", "+12025550143", errors.RecipientVerdict()),
    ],
)
def test_one_verdict_per_code_for_send_answers_and_status_webhooks(code, to, verdict):
    """Status webhooks carry the code as a string and the recipient as digits."""
    assert errors.recipient_verdict(code, to) == verdict


@pytest.mark.parametrize(
    "http_status, body, expected",
    [
        (502, "<html>Bad gateway</html>", errors.TransientError),
        (503, {}, errors.TransientError),
        (429, {}, errors.ThroughputLimited),
        (401, {}, errors.SendLevelError),
        (400, meta_error(999999), errors.WhatsAppError),
    ],
)
def test_unknown_codes_fall_back_on_the_http_status(http_status, body, expected):
    assert type(errors.classify(http_status, body)) is expected


def test_send_level_errors_explain_themselves_to_the_marketer():
    expired = errors.classify(401, meta_error(190, message="Error validating access token"))
    template = errors.classify(400, meta_error(132012, message="Parameter format mismatch"))

    assert "access token" in expired.marketer_message
    assert "190" in expired.marketer_message
    assert "template" in template.marketer_message


def test_backoff_is_full_jitter_capped_exponential():
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (20, 10.0)]:
        delays = [errors.backoff_delay(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not a constant
    assert errors.backoff_delay(2, base=0.5, cap=1.0) <= 1.0
