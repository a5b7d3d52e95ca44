"""Standard Webhooks signatures: the spec's test vector, and what `verify` refuses."""

import base64
import datetime as dt

import pytest

from webhooks.outbound.signing import (
    WebhookVerificationError,
    generate_secret,
    sign,
    signature_headers,
    verify,
)

# The reference libraries' test vector (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py, test_sign_function).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
BODY = b'{"type":"campaign.started","campaign":{"status":"in_progress"}}'


def headers_at(secret, moment, body=BODY, msg_id="msg_0f1e"):
    return signature_headers([secret], msg_id, body, moment)


def test_signatures_match_the_specs_test_vector():
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    spec_headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    verify(
        SPEC_SECRET, spec_headers, SPEC_BODY, now=dt.datetime.fromtimestamp(SPEC_TIMESTAMP, dt.UTC)
    )


def test_secrets_are_whsec_and_at_least_24_random_bytes():
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert generate_secret() != secret


def test_a_signed_delivery_verifies_with_case_insensitive_headers():
    secret = generate_secret()
    headers = headers_at(secret, NOW)
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")

    verify(secret, {name.title(): value for name, value in headers.items()}, BODY, now=NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b.replace(b"in_progress", b"completed")), id="body"),
        pytest.param(lambda h, b: ({**h, "webhook-id": "msg_other"}, b), id="id"),
        pytest.param(
            lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
            id="timestamp",
        ),
        pytest.param(lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), id="signature"),
        pytest.param(lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), id="bad-timestamp"),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
            id="missing-signature",
        ),
    ],
)
def test_a_tampered_delivery_is_rejected(tamper):
    secret = generate_secret()
    headers, body = tamper(headers_at(secret, NOW), BODY)
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, body, now=NOW)


def test_another_secret_is_rejected():
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(generate_secret(), headers_at(generate_secret(), NOW), BODY, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamps_more_than_five_minutes_off_are_replays(offset):
    secret = generate_secret()
    headers = headers_at(secret, NOW + dt.timedelta(seconds=offset))
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(secret, headers, BODY, now=NOW)
    verify(secret, headers, BODY, now=NOW, tolerance=dt.timedelta(seconds=302))


def test_during_a_rotation_either_secret_verifies():
    old, new = generate_secret(), generate_secret()
    headers = signature_headers([new, old], "msg_1", BODY, NOW)
    assert len(headers["webhook-signature"].split()) == 2
    verify(old, headers, BODY, now=NOW)
    verify(new, headers, BODY, now=NOW)
