"""Quiet, useful logs: an idle engine tick says nothing; each thing the engine does is one
INFO line naming the send and its campaign."""

import datetime as dt
import logging

import pytest
from django.utils import timezone

from campaigns import engine
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, SendFactory

pytestmark = pytest.mark.django_db


def enqueued():
    calls = []
    return calls, calls.append


def test_an_idle_tick_logs_nothing_at_info(caplog):
    CampaignFactory(status=Campaign.Status.DRAFT)
    calls, enqueue = enqueued()

    with caplog.at_level(logging.INFO):
        engine.tick(enqueue)

    assert calls == []
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_what_the_engine_does_is_one_info_line_each_with_its_ids(caplog, settings):
    settings.DISPATCH_TASKS_PER_SEND = 1
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    LeadFactory(audience=audience, phone_e164="+442079460001")
    send = SendFactory(campaign=campaign, scheduled_for=timezone.now() + dt.timedelta(seconds=30))
    calls, enqueue = enqueued()
    materialize_send(send.pk)
    Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())

    with caplog.at_level(logging.INFO):
        engine.tick(enqueue)

    assert calls == [send.pk]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert f"send {send.pk} of campaign {campaign.pk} started" in lines


@pytest.mark.parametrize("name", ["celery.beat", "celery.app.trace", "celery.worker.strategy"])
def test_celerys_per_task_lines_are_kept_out_of_the_info_log(name):
    assert not logging.getLogger(name).isEnabledFor(logging.INFO)
