"""Prometheus /metrics, computed at scrape time from shared state.

The engine's work happens in Celery worker processes and the web runs several gunicorn
workers, so counters kept in one process's memory would see a fraction of the truth. The
engine's figures are aggregates of the rows it writes, exact whichever process is scraped, at
the cost of a few grouped queries per scrape (see docs/ops.md). What leaves no row is read
where every worker writes it: rate-limiter waits from the limiter's Redis counters, queue
depth from the broker.
"""

import hmac
import logging

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu.exceptions import ChannelError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from campaigns.models import Send, SendRecipient
from campaigns.pacing import send_rate
from config.celery import app as celery_app
from messaging.ratelimit import get_rate_limiter
from webhooks.selectors import rejected_status_counts

logger = logging.getLogger(__name__)
RecipientStatus = SendRecipient.Status


def _elapsed(start: str, end: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


class EngineCollector:
    """Yields the engine's metrics from SendRecipient and Send rows."""

    def collect(self):
        yield from self._messages()
        yield from self._sends()
        yield from self._durations()
        yield self._rejected_statuses()
        yield from _guarded("rate limiter", self._rate_limiter_waits)
        yield from _guarded("rate limiter", self._send_rates)
        yield from _guarded("broker", self._broker_queues)

    def _messages(self):
        by_status = GaugeMetricFamily(
            "setter_messages",
            "Messages (send recipients) by send category and current status.",
            labels=["category", "status"],
        )
        sent = CounterMetricFamily(
            "setter_messages_sent",
            "Messages Meta accepted, by send category.",
            labels=["category"],
        )
        failed = CounterMetricFamily(
            "setter_messages_failed",
            "Messages that failed, by send category and Meta error code.",
            labels=["category", "error_code"],
        )
        queued = GaugeMetricFamily(
            "setter_recipients_queued",
            "Queue depth: messages waiting, held by a dispatcher or in flight "
            "(queued + claimed + sending).",
        )
        # Sends whose recipient rows were purged count through their rollup, so the
        # counters never go down (campaigns.retention).
        counts: dict[tuple[str, str], int] = {}
        sent_by_category: dict[str, int] = {}
        failures: dict[tuple[str, str], int] = {}
        live = SendRecipient.objects.filter(send__recipients_purged_at=None)
        rows = (
            live.values("send__category", "status")
            .annotate(count=Count("id"), sent=Count("sent_at"))
            .order_by()
        )
        for row in rows:
            category = row["send__category"]
            counts[category, row["status"]] = row["count"]
            sent_by_category[category] = sent_by_category.get(category, 0) + row["sent"]
        failed_rows = (
            live.filter(status=RecipientStatus.FAILED)
            .values("send__category", "error_code")
            .annotate(count=Count("id"))
            .order_by()
        )
        for row in failed_rows:
            failures[row["send__category"], row["error_code"] or "none"] = row["count"]
        purged = Send.objects.exclude(recipients_purged_at=None).values_list(
            "category", "recipient_rollup"
        )
        for category, rollup in purged.iterator():
            for status, count in rollup["counts"].items():
                if count:
                    counts[category, status] = counts.get((category, status), 0) + count
            sent_by_category[category] = sent_by_category.get(category, 0) + rollup["sent"]
            for code, _title, count in rollup["errors"]:
                key = (category, code or "none")
                failures[key] = failures.get(key, 0) + count
        for (category, status), count in sorted(counts.items()):
            by_status.add_metric([category, status], count)
        for category, count in sorted(sent_by_category.items()):
            sent.add_metric([category], count)
        for (category, code), count in sorted(failures.items()):
            failed.add_metric([category, code], count)
        queue_depth = sum(
            count for (_, status), count in counts.items() if status in SendRecipient.OPEN_STATUSES
        )
        queued.add_metric([], queue_depth)
        yield from (by_status, sent, failed, queued)

    def _sends(self):
        sends = GaugeMetricFamily("setter_sends", "Sends by status.", labels=["status"])
        rows = Send.objects.values("status").annotate(count=Count("id")).order_by("status")
        for row in rows:
            sends.add_metric([row["status"]], row["count"])
        yield sends

    def _durations(self):
        dispatch = Send.objects.filter(
            started_at__isnull=False, completed_at__isnull=False
        ).aggregate(count=Count("id"), total=Sum(_elapsed("started_at", "completed_at")))
        yield _summary(
            "setter_send_dispatch_seconds",
            "Time from a send's first dispatch to its end, over every finished send.",
            dispatch["count"],
            _seconds(dispatch["total"]),
        )
        # The materializer may start this long before the fire time; lag is measured from then.
        lag = Send.objects.filter(materialized_at__isnull=False).aggregate(
            count=Count("id"), total=Sum(_elapsed("scheduled_for", "materialized_at"))
        )
        ahead = settings.SEND_MATERIALIZE_AHEAD_SECONDS
        yield _summary(
            "setter_send_materialization_lag_seconds",
            "Time from the moment a send became due for materialization to its recipients "
            "being written, over every materialized send.",
            lag["count"],
            _seconds(lag["total"]) + ahead * lag["count"],
        )
        materialization = Send.objects.filter(materialization_seconds__isnull=False).aggregate(
            count=Count("id"), total=Sum("materialization_seconds")
        )
        yield _summary(
            "setter_send_materialization_seconds",
            "Time the materializer took to write a send's recipients, over every send it "
            "materialized.",
            materialization["count"],
            materialization["total"] or 0.0,
        )

    def _rejected_statuses(self):
        rejected = CounterMetricFamily(
            "setter_whatsapp_statuses_rejected",
            "Meta status reports skipped because a field could not be stored as sent, by field.",
            labels=["field"],
        )
        for field, count in rejected_status_counts().items():
            rejected.add_metric([field], count)
        return rejected

    def _rate_limiter_waits(self):
        seconds = CounterMetricFamily(
            "setter_rate_limiter_wait_seconds",
            "Seconds dispatchers waited with messages in hand for a rate-limit slot, by the "
            "limit that held them back (send: the send's max messages per second; number: the "
            "number's throughput, as Meta's 130429 answers adapted it).",
            labels=["scope"],
        )
        waits = CounterMetricFamily(
            "setter_rate_limiter_waits",
            "Times dispatchers waited with messages in hand for a rate-limit slot, by the "
            "limit that held them back.",
            labels=["scope"],
        )
        for scope, totals in get_rate_limiter().wait_totals().items():
            seconds.add_metric([scope], totals.seconds)
            waits.add_metric([scope], totals.count)
        return [seconds, waits]

    def _send_rates(self):
        """Each sending send's configured and effective rate (messages per second)."""
        rates = GaugeMetricFamily(
            "setter_send_rate_messages_per_second",
            "Sending sends' rate: configured (max_messages_per_second) and effective (after "
            "the number's throughput, as Meta's 130429 answers adapted it).",
            labels=["send_id", "number_id", "kind"],
        )
        sending = Send.objects.filter(status=Send.Status.SENDING).select_related(
            "campaign__whatsapp_number"
        )
        for send in sending:
            rate = send_rate(send)
            labels = [str(send.pk), str(send.campaign.whatsapp_number_id)]
            rates.add_metric([*labels, "configured"], rate.configured)
            rates.add_metric([*labels, "effective"], rate.effective)
        return [rates]

    def _broker_queues(self):
        """Messages waiting in each Celery queue, not yet taken by a worker."""
        depth = GaugeMetricFamily(
            "setter_broker_queue_depth",
            "Celery messages waiting in the broker, by queue.",
            labels=["queue"],
        )
        timeout = settings.READINESS_TIMEOUT_SECONDS
        with celery_app.connection_for_write(connect_timeout=timeout) as broker:
            channel = broker.default_channel
            for name in sorted(celery_app.amqp.queues):
                depth.add_metric([name], _queue_size(channel, name))
        return [depth]


def _guarded(source: str, collect) -> list:
    """A figure whose source is down is left out (and logged); the rest of the scrape stands."""
    try:
        return collect()
    except Exception:
        logger.warning("metrics: %s unavailable", source, exc_info=True)
        return []


def _queue_size(channel, name: str) -> int:
    """A passive declare reports the message count on every kombu transport; the Redis
    transport deletes an emptied queue, which then reads as not found."""
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except ChannelError:
        return 0


def _seconds(duration) -> float:
    return duration.total_seconds() if duration is not None else 0.0


def _summary(name: str, documentation: str, count: int, seconds: float) -> SummaryMetricFamily:
    return SummaryMetricFamily(name, documentation, count_value=count, sum_value=seconds)


registry = CollectorRegistry(auto_describe=False)
registry.register(EngineCollector())


def _authorized(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    return hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()
    )


@require_GET
@never_cache
def metrics(request):
    if not _authorized(request):
        return HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
