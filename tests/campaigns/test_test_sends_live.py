"""A test send's status webhooks, posted by the sandbox to our live webhook, move the test
send (sent → delivered → read) and nothing else."""

import pytest

from campaigns import testsends
from campaigns.models import SendRecipient
from campaigns.models import TestSend as TestSendRow
from tests.support import STAFF_PHONE, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_webhooks_move_the_test_send_and_nothing_else(
    testable_send, sandbox, whatsapp_client, live_server
):
    sandbox.configure(
        webhook_url=live_server.url + "/webhooks/whatsapp",
        sent_delay_ms=0,
        delivered_delay_ms=10,
        read_delay_ms=20,
    )

    result = testsends.send_test(testable_send, phone=STAFF_PHONE, client=whatsapp_client)

    wait_until(
        lambda: TestSendRow.objects.get(pk=result.pk).status == TestSendRow.Status.READ,
        timeout=20,
        describe="the test send read",
    )
    read = TestSendRow.objects.get(pk=result.pk)
    assert read.sent_at and read.delivered_at <= read.read_at
    assert not SendRecipient.objects.exists()
