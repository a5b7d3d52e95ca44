"""The naive design bench/baselines.py measures: one Celery task per message, each POSTing
its message with `requests`, as a typical Django app sends through a Graph API.

    cd bench && ../.venv/bin/celery -A naive_tasks worker --pool threads --concurrency 200

A Celery app of the bench's own, not the product's (config/celery.py): its own broker
(NAIVE_BROKER_URL, default Redis db 12), no result backend, no Django, no database.
The module-level Session's pool holds NAIVE_POOL_MAXSIZE connections (default 200, a
threads worker's concurrency), so threads reuse keep-alive connections rather than each
opening its own and the pool discarding it.
"""

import os

import requests
from celery import Celery
from requests.adapters import HTTPAdapter

BROKER_URL = os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/12")
QUEUE = "naive-sends"

app = Celery("naive_tasks", broker=BROKER_URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

session = requests.Session()
session.mount("http://", HTTPAdapter(pool_maxsize=int(os.environ.get("NAIVE_POOL_MAXSIZE", "200"))))


@app.task(name="naive.send_message")
def send_message(url: str, headers: dict, body: str) -> int:
    """POST one template message; the status code (the sandbox records what it answered)."""
    response = session.post(url, data=body.encode(), headers=headers, timeout=60)
    return response.status_code
