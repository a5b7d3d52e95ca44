"""Celery entry points of the send engine: thin wrappers around the engine and dispatcher."""

from celery import shared_task

from . import dispatcher, engine


@shared_task(ignore_result=True)
def engine_tick_task():
    """Beat's heartbeat for every send: materialize, start, recover, finish."""
    engine.tick(dispatch_send_task.delay)


@shared_task(ignore_result=True)
def dispatch_send_task(send_id):
    if dispatcher.dispatch_send(send_id):
        dispatch_send_task.delay(send_id)
