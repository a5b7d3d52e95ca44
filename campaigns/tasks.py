from celery import shared_task

from . import materializer


@shared_task(ignore_result=True)
def materialize_due_sends_task():
    materializer.materialize_due_sends()
