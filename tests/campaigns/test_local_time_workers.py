"""A send at each recipient's local time, end to end (issue 16.1): real Celery workers, the
sandbox over a socket, beat's tick driven by the test. Six zones — two whose clocks changed
that week, two countries with several zones, a lead with its own zone — and every phone
gets its message at 10:00 on its own clock, by the sandbox's receive time.

The send spans 18 hours. The test and its worker run on one virtual clock (tests.clocked,
time-machine) that jumps to just before each wave and then ticks at real speed.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from campaigns import engine, local_time
from campaigns.models import Campaign, Send, SendRecipient, SendWave
from campaigns.tasks import dispatch_send_task
from tests import clocked
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, LocalTimeSendFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt.UTC
# Monday 15 March 2027: North America moved to summer time the day before, London has not.
DAY = dt.date(2027, 3, 15)
TEN = dt.time(10, 0)
# phone: (the lead's own zone or "", the zone its message must reach it in)
RECIPIENTS = {
    "+61412345678": ("", "Australia/Sydney"),  # an Australian mobile: eight zones, the main
    "+61412345679": ("Australia/Perth", "Australia/Perth"),  # the lead says where it is
    "+919812345678": ("", "Asia/Calcutta"),
    "+447911123456": ("", "Europe/London"),
    # Canada (Meta blocks marketing to US numbers): Toronto, on summer time since Sunday.
    "+14165550123": ("", "America/Toronto"),
    "+16475550124": ("", "America/Toronto"),
    "+16045550123": ("", "America/Vancouver"),
}
# From the wave's instant to the sandbox's receipt: the dispatcher's claim poll and one
# request on this machine.
TOLERANCE = dt.timedelta(seconds=10)


def ten_in(zone: str) -> dt.datetime:
    return dt.datetime.combine(DAY, TEN, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.usefixtures("fast_engine")
def test_every_recipient_reads_the_message_at_ten_on_its_own_clock(
    sandbox, number, marketing_template, workers, queue, tmp_path
):
    expected_waves = sorted({ten_in(zone) for _, zone in RECIPIENTS.values()})
    assert len(expected_waves) == 6
    assert ten_in("America/Toronto").hour == 14  # EDT, not EST: the change that week counts
    with time_machine.travel(expected_waves[0] - dt.timedelta(hours=2), tick=True) as clock:
        campaign = CampaignFactory(
            organization=number.organization,
            whatsapp_number=number,
            status=Campaign.Status.SCHEDULED,
        )
        audience = AudienceFactory(organization=number.organization)
        campaign.audiences.add(audience)
        for phone, (own_zone, _) in RECIPIENTS.items():
            LeadFactory(
                audience=audience,
                phone_e164=phone,
                time_zone=own_zone,
                first_name="Ann",
                variables={"coupon": "C1"},
            )
        send = LocalTimeSendFactory(
            campaign=campaign,
            template=marketing_template,
            parameter_mapping=["first_name", "variables.coupon"],
        )
        local_time.place_first_waves(campaign)
        assert Send.objects.get(pk=send.pk).scheduled_for == expected_waves[0]

        def tick():
            engine.tick(lambda send_id: dispatch_send_task.apply_async([send_id], queue=queue))

        clock_file = tmp_path / "clock"
        clocked.write(clock_file, dt.datetime.now(UTC))
        # Short slices: a dispatcher idling before a jump of the clock ends soon after it.
        worker = workers(clock=clock_file, slice_seconds=1)
        wait_until(worker.ready, timeout=60, interval=0.2)
        for number_of_wave, at in enumerate(expected_waves, start=1):
            # The clocks jump only while the worker holds no task: a broker message held
            # across a jump of hours would look long lost to its transport.
            wait_until(worker.idle, timeout=30, interval=0.2)
            clock.move_to(at - dt.timedelta(seconds=1))
            clocked.write(clock_file, at - dt.timedelta(seconds=1))
            tick()  # materializes the wave (and fixes the waves at the first)
            wave = SendWave.objects.get(send=send, kind=SendWave.Kind.LOCAL, number=number_of_wave)
            assert (wave.scheduled_for, wave.status) == (at, SendWave.Status.MATERIALIZED)

            def wave_delivered(wave=wave):
                tick()
                rows = SendRecipient.objects.filter(send=send, wave=wave.number)
                return rows.exists() and not rows.exclude(status=SendRecipient.Status.SENT).exists()

            wait_until(
                wave_delivered,
                timeout=60,
                interval=0.2,
                describe=lambda: (
                    f"rows (wave, status, error) "
                    f"{list(SendRecipient.objects.filter(send=send).values_list('wave', 'status', 'error_code'))}"
                    f" at {dt.datetime.now(UTC)}"
                ),
            )

        wait_until(
            lambda: (tick(), Send.objects.get(pk=send.pk).status == Send.Status.COMPLETED)[1],
            timeout=10,
        )

    requests = sandbox.requests(limit=1000)["requests"]
    assert sorted("+" + r["to"].lstrip("+") for r in requests) == sorted(RECIPIENTS)
    for request in requests:
        _, zone = RECIPIENTS["+" + request["to"].lstrip("+")]
        received = dt.datetime.fromtimestamp(request["received_at"], ZoneInfo(zone))
        ten = dt.datetime.combine(DAY, TEN, tzinfo=ZoneInfo(zone))
        assert ten <= received <= ten + TOLERANCE, (zone, received)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED
