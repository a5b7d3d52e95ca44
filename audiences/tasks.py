"""Celery entry points for audiences."""

import logging

from celery import shared_task

from . import segments, services
from .models import Audience

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def ingest_audience_task(audience_id):
    """Ingest an uploaded CSV; acks_late redelivers it after a worker crash and it restarts."""
    try:
        services.ingest_audience(audience_id)
    except Audience.DoesNotExist:
        logger.info("Audience %s was deleted before its ingest ran", audience_id)


@shared_task(ignore_result=True)
def refresh_segment_size_task(audience_id):
    """Count a dynamic segment's members after its filter changed or a send materialized it."""
    segments.refresh_size(audience_id)
