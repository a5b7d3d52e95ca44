"""Celery entry points for audiences."""

import logging

from celery import shared_task

from . import services
from .models import Audience

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def ingest_audience_task(audience_id):
    """Ingest an uploaded CSV; acks_late redelivers it after a worker crash and it restarts."""
    try:
        services.ingest_audience(audience_id)
    except Audience.DoesNotExist:
        logger.info("Audience %s was deleted before its ingest ran", audience_id)
