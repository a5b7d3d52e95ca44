"""Celery entry points of the send engine: thin wrappers around materializer and dispatcher."""

from celery import shared_task
from django.conf import settings

from . import dispatcher, materializer


@shared_task(ignore_result=True)
def engine_tick_task():
    """Beat's heartbeat for every send: materialize, start, recover, finish."""
    materializer.materialize_due_sends()
    for send_id in dispatcher.start_due_sends() + dispatcher.stalled_send_ids():
        for _ in range(settings.DISPATCH_TASKS_PER_SEND):
            dispatch_send_task.delay(send_id)
    dispatcher.recover_lost_recipients()
    dispatcher.finish_sends()


@shared_task(ignore_result=True)
def dispatch_send_task(send_id):
    if dispatcher.dispatch_send(send_id):
        dispatch_send_task.delay(send_id)
