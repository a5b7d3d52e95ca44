"""One slice of dispatch for one send in this process (see the package's docstring)."""

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections import deque

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from audiences.time_zones import ZONE_FIELDS, lead_time_zone, lead_zone
from messaging import errors
from messaging.client import TemplateMessage
from messaging.ratelimit import Grant, WaitTotals, get_rate_limiter
from setter.phones import phone_zones
from setter.send_windows import WindowOutside

from .. import eligibility, feedback, recipients, sends
from ..models import Campaign, Send, SendRecipient
from ..pacing import number_limit, send_limits
from ..recipients import ClaimedRow, Outcome
from ..rendering import TEMPLATE_LEAD_FIELDS, MissingParameter, send_renderer
from ..send_window import SendWindow
from .guard import FailureGuard
from .loop import delivery_loop
from .outcomes import failure, retry
from .slots import FreshSlots

logger = logging.getLogger(__name__)

Status = SendRecipient.Status
SkipReason = SendRecipient.SkipReason


class DispatchRun:
    """One slice of dispatch for one send in this process: claims, paces, hands rows to the
    delivery loop and writes their outcomes, until the slice ends or the send stops."""

    def __init__(self, send: Send, slice_seconds: float):
        self.send = send
        self.token = uuid.uuid4().hex
        self.number = send.campaign.whatsapp_number
        self.graph_url = settings.WHATSAPP_GRAPH_URL
        self.number_limit = number_limit(self.number)
        self.limits = send_limits(send)
        self.fresh_slots = FreshSlots(self.limits)
        self.render_parameters = send_renderer(send)
        self.slots = send.template.parameter_slots  # parsed from the template's text
        self.deadline = time.monotonic() + slice_seconds
        # No more than the wire holds at once: a claim is the one long step of the run's
        # thread, and no slot is refilled meanwhile (a thousand-row claim left a worker's
        # connections idle for a third of its time at 150 ms latency).
        self.batch_size = min(
            settings.DISPATCH_CONCURRENCY,
            max(10, int(send.max_messages_per_second * settings.DISPATCH_BATCH_SECONDS)),
        )
        # Claimed, not yet handed to the loop: each row with its rendered parameters.
        self.held: deque[tuple[ClaimedRow, list[str]]] = deque()
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.in_flight = 0
        self.stop = threading.Event()  # deliveries waiting for their slot give it up
        # Set by the loop once enough answers wait to be written (or the run must stop):
        # their wire slots are free only once written, so the run's thread does not sleep
        # out its tick on them.
        self.wake = threading.Event()
        self.wake_after = max(1, settings.DISPATCH_CONCURRENCY // 16)
        self.stop_reason = ""  # a skip reason when the campaign ended the send
        self.pause_reason = ""  # a send-level error: the campaign pauses
        self.more_work = True
        # Waiting with rows in hand because a limit had no slot: since when, behind which
        # limit, and the waits so far per scope (flushed to /metrics' counters).
        self.blocked: tuple[float, str] | None = None
        self.last_hand_out = time.monotonic()
        self.waits: dict[str, WaitTotals] = {}
        self.failure_guard = FailureGuard.of(send.campaign.organization)
        self.window = SendWindow.of(send.campaign)
        self.window_note = ""

    # The loop. Every tick: look at the campaign, keep the lease, write outcomes, take the
    # next moment's slots and hand their rows to the delivery loop.
    def run(self) -> bool:
        tick = settings.DISPATCH_TICK_SECONDS
        next_check = next_renewal = 0.0
        handed_back = False
        while True:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.5
                self._check_campaign()
            if now >= next_renewal:
                next_renewal = now + settings.DISPATCH_LEASE_SECONDS / 3
                self._renew()
            self._write_outcomes()
            if self.stop.is_set() or now >= self.deadline:
                if not handed_back:
                    self._hand_back_held()
                    handed_back = True
                if not self.in_flight:
                    self._flush_waits()
                    return self.more_work
                time.sleep(tick)  # the loop finishes the requests already on the wire
                continue
            # Rows in hand go out before the next claim: the slots the outcomes just freed
            # are not left idle behind the claim's query.
            wait = self._hand_out()
            if len(self.held) < self.batch_size // 2 and self._claim():
                continue  # the new rows go out at once, not a tick later
            if not self.held and not self.in_flight:
                if self._idle():
                    continue
                self._flush_waits()
                return self.more_work
            self._sleep(min(tick, wait) if wait else tick)

    def _sleep(self, seconds: float) -> None:
        """Until the tick ends or the loop has answers enough to write."""
        if self.outcomes.qsize() < self.wake_after and not self.stop.is_set():
            self.wake.wait(seconds)
        self.wake.clear()

    def _check_campaign(self) -> None:
        if self.stop.is_set():
            return
        campaign_status, stop_at, send_status = (
            Send.objects.filter(pk=self.send.pk)
            .values_list("campaign__status", "campaign__stop_at", "status")
            .get()
        )
        now = timezone.now()
        if campaign_status == Campaign.Status.CANCELLED:
            self.stop_reason = SkipReason.CANCELLED
        elif campaign_status == Campaign.Status.STOPPED or (stop_at and stop_at <= now):
            self.stop_reason = SkipReason.STOPPED
        elif send_status == Send.Status.SENDING and campaign_status in Campaign.ACTIVE_STATUSES:
            return
        self.more_work = False
        self.stop.set()

    def _renew(self) -> None:
        recipients.renew(self.send.pk, self.token, settings.DISPATCH_LEASE_SECONDS)
        Send.objects.filter(pk=self.send.pk).update(dispatch_heartbeat_at=timezone.now())
        self._flush_waits()

    def _note_grant(self, grant: Grant) -> None:
        """A wait starts when a limit refuses rows in hand and ends at the next grant."""
        now = time.monotonic()
        if not grant.count:
            if self.blocked is None:
                self.blocked = (now, grant.held_by)
            return
        if self.blocked is not None:
            since, scope = self.blocked
            seconds, count = self.waits.get(scope, (0.0, 0))
            self.waits[scope] = WaitTotals(seconds + now - since + grant.first_wait, count + 1)
            self.blocked = None

    def _flush_waits(self) -> None:
        if self.waits:
            get_rate_limiter().add_waits(self.waits)
            self.waits = {}

    def _claim(self) -> int:
        """Claim the next rows and hold those to send; returns how many it added."""
        rows = recipients.claim(
            self.send.pk,
            self.token,
            self.batch_size,
            settings.DISPATCH_LEASE_SECONDS,
            lead_fields=(*TEMPLATE_LEAD_FIELDS, *ZONE_FIELDS),
        )
        incomplete = []
        held = len(self.held)
        for row in self._hold_outside_window(self._drop_no_longer_eligible(rows)):
            try:
                self.held.append((row, self.render_parameters(row.lead)))
            except MissingParameter:
                incomplete.append(row.pk)
        # A message with a hole in it never reaches a customer.
        recipients.skip(incomplete, SkipReason.MISSING_PARAMETER, holder=self.token)
        return len(self.held) - held

    def _drop_no_longer_eligible(self, rows: list[ClaimedRow]) -> list[ClaimedRow]:
        """Honour what changed since materialization: a STOP that arrived, or a message
        another campaign sent that puts the phone at the frequency cap. Those rows are
        skipped, with their reason."""
        for reason, re_check in (
            (SkipReason.OPTED_OUT, eligibility.opted_out_phones),
            (SkipReason.FREQUENCY_CAP, eligibility.capped_phones),
        ):
            if not rows:
                return rows
            dropped = re_check(self.send, [r.phone_e164 for r in rows])
            if dropped:
                recipients.skip(
                    [r.pk for r in rows if r.phone_e164 in dropped], reason, holder=self.token
                )
                rows = [r for r in rows if r.phone_e164 not in dropped]
        return rows

    def _hold_outside_window(self, rows: list[ClaimedRow]) -> list[ClaimedRow]:
        """Quiet hours: rows whose recipient's local time is outside the campaign's send
        window wait for its next opening in their zone (the send says so), or are skipped
        with reason outside_window. Every message, retries included, is claimed before it
        goes on the wire, so none leaves outside the window."""
        if self.window is None or not rows:
            return rows
        now = timezone.now()
        fallback = self.send.time_zone
        zones = {
            r.pk: lead_zone(r.lead, fallback)
            if r.lead
            else lead_time_zone("", *phone_zones(r.phone_e164), fallback)
            for r in rows
        }
        closed = self.window.waits(now, zones)
        if not closed:
            return rows
        outside = [r for r in rows if r.pk in closed]
        if self.window.outside == WindowOutside.SKIP:
            recipients.skip([r.pk for r in outside], SkipReason.OUTSIDE_WINDOW, holder=self.token)
        else:
            recipients.defer(self.token, {r.pk: closed[r.pk] for r in outside})
            note = (
                f"Waiting for the send window ({self.window.describe()}): recipients outside "
                f"it go out when it opens in their zone, the next at "
                f"{min(closed.values()):%Y-%m-%d %H:%M} UTC."
            )
            if note != self.window_note:
                Send.objects.filter(pk=self.send.pk).update(status_reason=note)
                self.window_note = note
        return [r for r in rows if r.pk not in closed]

    def _hand_out(self) -> float:
        """Take the next moment's slots for held rows and start their deliveries. Returns
        how long until the limiter has a slot again (0 when it was not the limit)."""
        delivery = delivery_loop()
        wire = delivery.wire_slots
        permits = 0
        while permits < len(self.held) and wire.acquire(blocking=False):
            permits += 1
        if not permits:
            return 0.0
        # Slots up to the next hand-out: a loop slowed by its database work must not leave
        # slots untaken (a limit that fell behind starts again from now, so untaken time is
        # lost to the send). Never more than a quarter second ahead.
        now = time.monotonic()
        tick = settings.DISPATCH_TICK_SECONDS
        horizon = min(0.25, max(2 * tick, 1.5 * (now - self.last_hand_out)))
        self.last_hand_out = now
        grant = get_rate_limiter().take(self.limits, permits, horizon=horizon)
        # The slots are counted from the moment they were granted, not from after the
        # database marked their rows: that write's varying latency would shift one grant's
        # slots onto the next one's and send them in a burst.
        granted_at = time.monotonic()
        for _ in range(permits - grant.count):
            wire.release()
        self._note_grant(grant)
        if not grant.count:
            return grant.first_wait
        late_after = self._late_after(grant, delivery.concurrency)
        batch = [self.held.popleft() for _ in range(grant.count)]
        marked = recipients.mark_sending(self.token, [(r.pk, p) for r, p in batch])
        deliveries = []
        for (recipient, parameters), wait in zip(batch, grant.waits(), strict=True):
            if recipient.pk not in marked:  # skipped by a stop meanwhile
                wire.release()
                continue
            slot_at = granted_at + wait
            deliveries.append(self._deliver(recipient, parameters, slot_at, late_after))
        self.in_flight += len(deliveries)
        delivery.start(deliveries)
        return 0.0

    @staticmethod
    def _late_after(grant: Grant, concurrency: int) -> float:
        """How late a delivery of this grant may start on its slot. Late deliveries bunch,
        so a few milliseconds' worth of slots at most: DISPATCH_LATE_SLOT_SECONDS. At a rate
        where even the process's every request at once is no more than that, any lateness
        is (a fresh slot each would only cost a limiter round trip while holding a
        connection)."""
        late_after = settings.DISPATCH_LATE_SLOT_SECONDS
        return float("inf") if grant.spacing * concurrency <= late_after else late_after

    def _hand_back_held(self) -> None:
        """Winding down: rows held but not sent go back to the queue (or are skipped, when
        the campaign ended the send); whether work remains decides the next slice."""
        if self.held:
            recipients.release(self.token, [r.pk for r, _ in self.held], self.stop_reason)
            self.held.clear()
        if self.more_work:
            self.more_work = SendRecipient.objects.filter(
                send_id=self.send.pk, status=Status.QUEUED
            ).exists()

    def _idle(self) -> bool:
        """Nothing held or in flight. True to go on: queued rows come due (retries backing
        off) before the slice ends. False when this run has nothing left to do."""
        queued = SendRecipient.objects.filter(send_id=self.send.pk, status=Status.QUEUED)
        left = queued.aggregate(n=Count("id"), next_at=Min("next_attempt_at"))
        self.more_work = bool(left["n"])
        if not left["n"]:
            return False
        tick = settings.DISPATCH_TICK_SECONDS
        wait = (left["next_at"] - timezone.now()).total_seconds() if left["next_at"] else tick
        if time.monotonic() + wait >= self.deadline:
            # A next slice follows at once for rows due soon (backoff); rows due later (a
            # send window's opening) beat re-dispatches once due (sends.stalled_send_ids).
            self.more_work = wait < settings.DISPATCH_STALE_SECONDS
            return False
        self.stop.wait(min(max(wait, tick), 1.0))
        return True

    def _write_outcomes(self) -> None:
        outcomes = []
        while True:
            try:
                outcomes.append(self.outcomes.get_nowait())
            except queue.Empty:
                break
        if not outcomes:
            return
        recipients.record(outcomes, stop_reason=self.stop_reason)
        feedback.act_on_verdicts(
            {o.recipient_id: o.verdict for o in outcomes if o.kind == "failed"}
        )
        tripped = self.failure_guard.observe(outcomes)
        if tripped and not self.pause_reason:
            self.pause_reason = tripped
            self.more_work = False
            self.stop.set()
        answered = sum(o.answered for o in outcomes)
        if answered:
            get_rate_limiter().report(self.number_limit, answered, sum(o.refused for o in outcomes))
        wire = delivery_loop().wire_slots
        for _ in outcomes:
            wire.release()
        self.in_flight -= len(outcomes)

    # A delivery, on the loop: wait for the slot, call Meta, classify the answer. Never raises.
    async def _deliver(
        self, recipient: ClaimedRow, parameters: list[str], slot_at: float, late_after: float
    ):
        try:
            outcome = await self._attempt(recipient, parameters, slot_at, late_after)
        except Exception as error:  # a bug must not strand the recipient in `sending`
            logger.exception(
                "unexpected dispatch error",
                extra={"send_id": self.send.pk, "recipient_id": recipient.pk},
            )
            outcome = retry(recipient, error)
        self.outcomes.put(outcome)
        if self.stop.is_set() or self.outcomes.qsize() >= self.wake_after:
            self.wake.set()

    async def _attempt(
        self, recipient: ClaimedRow, parameters: list[str], slot_at: float, late_after: float
    ) -> Outcome:
        while True:
            delay = slot_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            # A pause or a stop makes the slot given up, not used.
            if self.stop.is_set():
                return Outcome(recipient.pk, "requeue")
            if time.monotonic() - slot_at <= late_after:
                break
            # Woken too late (a busy loop): sending now would burst; take a fresh slot.
            slot_at = await self.fresh_slots.slot()
        send = self.send
        message = TemplateMessage(
            number=self.number,
            to=recipient.phone_e164,
            template_name=send.template.name,
            language=send.template.language,
            parameters=parameters,
            category=send.category,
            callback_data=str(recipient.pk),
            product_policy=send.campaign.product_policy,
            slots=self.slots,
        )
        try:
            result = await delivery_loop().client(self.graph_url).send_template(message)
        except errors.WhatsAppError as error:
            return self._outcome_of_error(recipient, error)
        return Outcome(recipient.pk, "sent", at=timezone.now(), wamid=result.wamid, answered=True)

    def _outcome_of_error(self, recipient: ClaimedRow, error: errors.WhatsAppError) -> Outcome:
        """What Meta's refusal (as messaging.errors classified it) means for the recipient."""
        if isinstance(error, errors.SendLevelError):
            self.pause_reason = self.pause_reason or error.marketer_message
            self.more_work = False
            self.stop.set()
            return Outcome(recipient.pk, "requeue", answered=True)
        if isinstance(error, errors.TransientError):
            if error.may_have_been_sent:
                # The request reached Meta and no answer came back: it may have been sent.
                # Never risk a second message; a status webhook will tell what happened.
                return Outcome(recipient.pk, "unknown", error_title=str(error)[:255])
            return retry(recipient, error)
        if isinstance(error, errors.ThroughputLimited):
            # The number is busy, not this message bad: the limiter slows the number, so
            # the message itself comes back soon, with more attempts than other errors.
            return retry(
                recipient,
                error,
                attempts=settings.DISPATCH_MAX_THROTTLED_ATTEMPTS,
                base=settings.DISPATCH_RETRY_BASE_SECONDS / 4,
                refused=True,
            )
        if isinstance(error, errors.PairRateLimited):
            return retry(recipient, error, minimum=settings.DISPATCH_PAIR_RATE_DELAY_SECONDS)
        if isinstance(error, errors.RecipientPermanentError):
            return failure(recipient, error, verdict=error.verdict, permanent=True)
        return retry(recipient, error)


def dispatch_send(send_id: int, *, slice_seconds: float | None = None) -> bool:
    """Deliver queued recipients of a sending send for up to slice_seconds.

    Returns True when work remains and another slice should follow (the task re-enqueues
    itself rather than holding a worker for an hour-long send).
    """
    send = (
        Send.objects.select_related(
            "campaign__whatsapp_number", "campaign__organization", "template"
        )
        .filter(pk=send_id, status=Send.Status.SENDING)
        .first()
    )
    if send is None:
        return False
    lead_time = (send.scheduled_for - timezone.now()).total_seconds()
    if lead_time > 0:
        time.sleep(min(lead_time, settings.DISPATCH_START_AHEAD_SECONDS))
    run = DispatchRun(send, slice_seconds or settings.DISPATCH_SLICE_SECONDS)
    more_work = run.run()
    if run.pause_reason:
        sends.pause_automatically(send, run.pause_reason)
        return False
    sends.settle_send(send_id)
    return more_work
