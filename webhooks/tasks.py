"""Celery entry points of outbound webhooks: thin wrappers around webhooks.outbound.delivery."""

from celery import shared_task

from webhooks.outbound import delivery


def queue_deliveries(ids=None):
    """Claim due deliveries (these, or any) and hand each to a worker."""
    for delivery_id in delivery.claim_due(ids=ids):
        attempt_webhook_delivery_task.delay(delivery_id)


@shared_task(ignore_result=True)
def deliver_due_webhooks_task():
    """Beat's webhook tick: new events whose first kick was lost, retries that came due, and
    deliveries whose worker died."""
    queue_deliveries()


@shared_task(ignore_result=True)
def attempt_webhook_delivery_task(delivery_id):
    delivery.attempt(delivery_id)
