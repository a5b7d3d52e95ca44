"""Settings for Setter Campaigns.

Every knob comes from an environment variable with a default that runs the embedded shape
(SQLite, a file-system Celery broker, the built-in Meta sandbox). Production sets
DATABASE_URL, REDIS_URL and the WhatsApp variables; see the settings table in README.md.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SETTER_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# The fallback key only suits the embedded developer shape; production must set SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY", "insecure-development-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "setter",
    "messaging",
    "audiences",
    "campaigns",
    "webhooks",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's CSS/JS from STATIC_ROOT with DEBUG off, in every shape (no nginx needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'setter.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded shape runs web, worker and beat against one file. WAL lets readers go
    # on while one writes; IMMEDIATE transactions take the write lock up front, so a
    # writer waits (up to the timeout) instead of failing with "database is locked" when a
    # read transaction would have had to upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A fresh clone has no var/ yet; SQLite creates the file but not its folder.
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
# Uploaded CSVs are never public media: the admin serves each to its organization's staff.
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

# Uploaded CSVs are streamed to disk and ingested by a worker, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_DIR = Path(os.environ.get("CELERY_BROKER_DIR", VAR_DIR / "broker"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's file-system transport, but a consumer never gets a half-written message
    # (see setter/broker.py): beat, web and the worker all enqueue into one folder.
    CELERY_BROKER_TRANSPORT = "setter.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat writes each entry's last_run_at after every task it sends (not every 3 minutes), so
# the "engine-tick" row is a heartbeat /readyz can read.
CELERY_BEAT_SYNC_EVERY = 1
CELERY_TIMEZONE = "UTC"
# Time is driven from the database by this one tick, never by long ETA/countdown tasks.
CELERY_BEAT_SCHEDULE = {
    "engine-tick": {
        "task": "campaigns.tasks.engine_tick_task",
        "schedule": float(os.environ.get("ENGINE_TICK_SECONDS", "1")),
        "options": {"expires": 10},
    },
    "outbound-webhooks": {
        "task": "webhooks.tasks.deliver_due_webhooks_task",
        "schedule": float(os.environ.get("OUTBOUND_WEBHOOK_TICK_SECONDS", "2")),
        "options": {"expires": 10},
    },
}

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Setter Campaigns API",
    "DESCRIPTION": "Inbound webhooks and the public REST API of Setter Campaigns.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The interactive docs load Swagger UI / Redoc from our own static files, so they work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "setter.api.schema.body_rules",
        "setter.api.schema.document_errors",
    ],
}

# Inbound partner webhooks (audience filter, lead events) take bodies up to this size: a
# 100,000-lead filter is several megabytes, past DATA_UPLOAD_MAX_MEMORY_SIZE, which still
# guards every other endpoint.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 16 * 1024 * 1024)

# Outbound events: seconds to wait before each try (the first is immediate), Standard
# Webhooks' schedule cut to about 27 h; a delivery fails after the last. And the request timeout.
OUTBOUND_WEBHOOK_RETRY_SCHEDULE = [
    int(delay)
    for delay in env_list(
        "OUTBOUND_WEBHOOK_RETRY_SCHEDULE",
        ["0", "5", "300", "1800", "7200", "18000", "36000", "36000"],
    )
]
OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("OUTBOUND_WEBHOOK_TIMEOUT_SECONDS", "10"))
# Endpoints on loopback addresses (a receiver on the developer's machine). Off in production,
# where 127.0.0.1 is our own Redis and admin; the embedded demo turns it on.
OUTBOUND_WEBHOOK_ALLOW_LOOPBACK = env_bool("OUTBOUND_WEBHOOK_ALLOW_LOOPBACK", False)
# `purge_webhook_logs` deletes deliveries and filter events finished longer ago than this.
WEBHOOK_LOG_RETENTION_DAYS = env_int("WEBHOOK_LOG_RETENTION_DAYS", 30)
# `purge_recipients` deletes the recipient rows of sends finished longer ago than this (their
# figures stay on the send). 90: Meta reports a message's statuses for at most 30 days, and
# operators get a quarter to export recipients before they go.
RECIPIENT_RETENTION_DAYS = env_int("RECIPIENT_RETENTION_DAYS", 90)

# --- Product ------------------------------------------------------------------------------
# Rows per database round trip during audience ingest. Also what each parser process holds
# at a time: at 5000 a 1M-row ingest peaked at 206–214 MB over the process tree, at 2500
# at 188 MB (bench/ingest.py; issue 17.6 asks ≤ 200 MB).
AUDIENCE_INGEST_BATCH_SIZE = env_int("AUDIENCE_INGEST_BATCH_SIZE", 2500)
# Phone parsing dominates ingest CPU: files from this size up are parsed by this many
# processes beside the one feeding the database (1 turns it off).
AUDIENCE_INGEST_PROCESSES = env_int("AUDIENCE_INGEST_PROCESSES", os.cpu_count() or 1)
AUDIENCE_INGEST_PARALLEL_MIN_BYTES = env_int("AUDIENCE_INGEST_PARALLEL_MIN_BYTES", 4_000_000)
# Default region used to parse phone numbers written without a country code.
AUDIENCE_DEFAULT_REGION = os.environ.get("AUDIENCE_DEFAULT_REGION", "US")

# Test sends (a send rendered for one lead, sent now to a staff member's phone) an
# organization may make per rolling hour.
TEST_SENDS_PER_HOUR = env_int("TEST_SENDS_PER_HOUR", 30)

# The materializer fills a send's recipient queue this long before it fires.
SEND_MATERIALIZE_AHEAD_SECONDS = env_int("SEND_MATERIALIZE_AHEAD_SECONDS", 60)
# A send whose fire time passed longer ago than this (the system was down) is marked missed
# instead of being blasted late.
SEND_MISSED_AFTER_SECONDS = env_int("SEND_MISSED_AFTER_SECONDS", 3600)

# Dispatch: messages in flight per worker process (one event loop drives them), dispatch
# tasks per send, how long one task works before handing over to a fresh one, and retry
# policy.
DISPATCH_CONCURRENCY = env_int("DISPATCH_CONCURRENCY", 128)
DISPATCH_TASKS_PER_SEND = env_int("DISPATCH_TASKS_PER_SEND", 2)
DISPATCH_SLICE_SECONDS = env_int("DISPATCH_SLICE_SECONDS", 50)
# Rows claimed at once: this many seconds at the send's rate (at least 10), at most
# DISPATCH_CONCURRENCY.
DISPATCH_BATCH_SECONDS = float(os.environ.get("DISPATCH_BATCH_SECONDS", "0.5"))
DISPATCH_START_AHEAD_SECONDS = env_int("DISPATCH_START_AHEAD_SECONDS", 2)
# How often a dispatch run takes the next moment's slots and writes the answers it got.
DISPATCH_TICK_SECONDS = float(os.environ.get("DISPATCH_TICK_SECONDS", "0.02"))
# A thread woken this late for its slot takes a fresh one instead of sending in a burst.
DISPATCH_LATE_SLOT_SECONDS = float(os.environ.get("DISPATCH_LATE_SLOT_SECONDS", "0.005"))
# A dispatcher renews the lease on the rows it holds every third of this; rows whose lease
# lapsed lost their worker: claimed ones are queued again, sending ones become `unknown`.
# Must exceed the Graph API read timeout.
DISPATCH_LEASE_SECONDS = float(os.environ.get("DISPATCH_LEASE_SECONDS", "6"))
DISPATCH_MAX_ATTEMPTS = env_int("DISPATCH_MAX_ATTEMPTS", 5)
# A 130429 says the number is busy, not that the message is bad: more attempts for those.
DISPATCH_MAX_THROTTLED_ATTEMPTS = env_int("DISPATCH_MAX_THROTTLED_ATTEMPTS", 15)
# Retries back off exponentially from this base, with full jitter, up to the cap.
DISPATCH_RETRY_BASE_SECONDS = float(os.environ.get("DISPATCH_RETRY_BASE_SECONDS", "1"))
DISPATCH_RETRY_CAP_SECONDS = float(os.environ.get("DISPATCH_RETRY_CAP_SECONDS", "4"))
DISPATCH_PAIR_RATE_DELAY_SECONDS = float(os.environ.get("DISPATCH_PAIR_RATE_DELAY_SECONDS", "6"))
# A send whose dispatchers have not reported for this long gets new ones.
DISPATCH_STALE_SECONDS = env_int("DISPATCH_STALE_SECONDS", 30)

# A number's throughput under Meta's 130429 answers: each window with refusals cuts its
# rate by the refused share (at most THROUGHPUT_MAX_CUT) and pauses it once, briefly; the
# rate then regains THROUGHPUT_RECOVERY_PER_SECOND of the cap each second.
THROUGHPUT_WINDOW_SECONDS = float(os.environ.get("THROUGHPUT_WINDOW_SECONDS", "1"))
THROUGHPUT_RECOVERY_PER_SECOND = float(os.environ.get("THROUGHPUT_RECOVERY_PER_SECOND", "0.2"))
THROUGHPUT_MAX_CUT = float(os.environ.get("THROUGHPUT_MAX_CUT", "0.5"))
THROUGHPUT_PAUSE_SECONDS = float(os.environ.get("THROUGHPUT_PAUSE_SECONDS", "0.1"))

# The rate limiter all workers share; without Redis (embedded shape) it is in-process.
RATE_LIMIT_REDIS_URL = os.environ.get("RATE_LIMIT_REDIS_URL", REDIS_URL)

WHATSAPP_GRAPH_URL = os.environ.get("WHATSAPP_GRAPH_URL", "http://127.0.0.1:8765")
WHATSAPP_GRAPH_VERSION = os.environ.get("WHATSAPP_GRAPH_VERSION", "v21.0")
WHATSAPP_VERIFY_TOKEN = os.environ.get("WHATSAPP_VERIFY_TOKEN", "setter-verify-token")
WHATSAPP_APP_SECRET = os.environ.get("WHATSAPP_APP_SECRET", "setter-sandbox-app-secret")

# --- Operations ---------------------------------------------------------------------------
# /readyz: how old beat's last engine tick may be, and how long each component check may take.
BEAT_HEARTBEAT_MAX_AGE_SECONDS = env_int("BEAT_HEARTBEAT_MAX_AGE_SECONDS", 30)
READINESS_TIMEOUT_SECONDS = float(os.environ.get("READINESS_TIMEOUT_SECONDS", "2"))
# Set by `runstack` for its children: where its supervisor publishes restart counts for /readyz.
SUPERVISOR_STATE_FILE = os.environ.get("SETTER_SUPERVISOR_STATE", "")
# When set, /metrics wants `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# `plain` for people, `json` (one object per line, with the engine's ids) for log shippers.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ValueError(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
# Celery replaces the root logger's handlers with its own format unless told not to.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "plain"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.ops.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Beat's engine tick is a task every second: Celery's own "sending due task", "received"
    # and "succeeded" lines would drown what happened. The engine logs each thing it did
    # (materialized, started, recovered, ended, missed) at INFO, and an idle tick not at all.
    "loggers": {
        name: {"level": os.environ.get("CELERY_TASK_LOG_LEVEL", "WARNING")}
        for name in ("celery.beat", "celery.app.trace", "celery.worker.strategy")
    },
}
