"""What the sandbox knows and remembers: its behaviour, numbers, templates and requests.

Everything here lives on the sandbox's one event loop thread, so it needs no locks.
"""

import dataclasses
import gc
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from messaging.models import PARAMETER_PATTERN

from .stats import max_in_any_window


@dataclass
class SandboxConfig:
    """Run-time behaviour; every field can be changed with POST /_sandbox/config."""

    latency_ms: float = 0.0
    ratio_slow: float = 0.0  # answers delayed by slow_ms_min..slow_ms_max on top of latency
    slow_ms_min: float = 1000.0
    slow_ms_max: float = 3000.0
    ratio_429: float = 0.0  # 130429 throughput errors
    ratio_5xx: float = 0.0  # HTTP 500, code 131000
    ratio_permanent: float = 0.0  # HTTP 400 with permanent_code
    permanent_code: int = 131026
    # Like Meta on an ordinary day, a few accepted messages are never delivered.
    ratio_async_failure: float = 0.02  # accepted, then a `failed` status webhook
    async_failure_code: int = 131026
    read_ratio: float = 1.0  # share of delivered messages that are then read
    # As Meta does, no reads from the EEA, the UK, Japan and South Korea (off: read_ratio).
    limited_reporting: bool = True
    webhook_url: str = ""
    app_secret: str = ""
    sent_delay_ms: float = 50.0
    delivered_delay_ms: float = 300.0
    read_delay_ms: float = 800.0
    webhook_batch_size: int = 100
    seed: int | None = None

    def update(self, changes: dict) -> None:
        """Apply a partial update; unknown keys or wrong types raise ValueError."""
        known = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown setting {name!r}")
            current = getattr(self, name)
            if name == "seed":
                value = None if value is None else int(value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif isinstance(current, str):
                value = str(value)
            elif isinstance(current, int):
                value = int(value)
            else:
                value = float(value)
            if name.startswith("ratio_") or name == "read_ratio":
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name} must be between 0 and 1")
            elif isinstance(value, int | float) and value < 0:
                raise ValueError(f"{name} must not be negative")
            setattr(self, name, value)
        if self.ratio_429 + self.ratio_5xx + self.ratio_permanent > 1.0:
            raise ValueError("ratio_429 + ratio_5xx + ratio_permanent must not exceed 1")
        if self.slow_ms_min > self.slow_ms_max:
            raise ValueError("slow_ms_min must not exceed slow_ms_max")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SandboxNumber:
    phone_number_id: str
    waba_id: str
    access_token: str
    display_phone_number: str = ""
    messaging_limit_tier: str = "TIER_250"
    quality_rating: str = "GREEN"
    throughput_level: str = "STANDARD"
    mm_lite_terms_accepted: bool = True

    @property
    def display_digits(self) -> str:
        return "".join(ch for ch in self.display_phone_number if ch.isdigit())


@dataclass
class SandboxTemplate:
    waba_id: str
    name: str
    language: str
    category: str
    status: str = "APPROVED"
    components: list = field(default_factory=list)
    id: str = ""

    @property
    def parameter_count(self) -> int:
        return self.expected_parameters().get("body", 0)

    def expected_parameters(self) -> dict[str, int]:
        """How many parameters a send must give per component, as Meta counts them: the
        body's and a TEXT header's highest {{n}}, each URL button's (key "button <index>",
        its place among the buttons). Components without parameters are left out."""
        expected: dict[str, int] = {}
        for component in self.components:
            kind = str(component.get("type", "")).upper()
            if kind == "BODY":
                expected["body"] = _highest(component.get("text"))
            elif kind == "HEADER" and str(component.get("format", "TEXT")).upper() == "TEXT":
                expected["header"] = _highest(component.get("text"))
            elif kind == "BUTTONS":
                for index, button in enumerate(component.get("buttons") or []):
                    if isinstance(button, dict) and str(button.get("type", "")).upper() == "URL":
                        expected[f"button {index}"] = _highest(button.get("url"))
        return {key: count for key, count in expected.items() if count}

    def as_graph(self) -> dict:
        """The template as GET /{waba_id}/message_templates lists it."""
        return {
            "name": self.name,
            "parameter_format": "POSITIONAL",
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        }


def _highest(text) -> int:
    return max((int(n) for n in PARAMETER_PATTERN.findall(str(text or ""))), default=0)


def number_from_json(data: dict) -> SandboxNumber:
    known = {f.name for f in dataclasses.fields(SandboxNumber)}
    missing = {"phone_number_id", "waba_id", "access_token"} - data.keys()
    if missing:
        raise ValueError(f"missing {sorted(missing)}")
    values = {key: value for key, value in data.items() if key in known}
    for key in ("phone_number_id", "waba_id", "access_token"):
        values[key] = str(values[key])
    return SandboxNumber(**values)


def template_from_json(data: dict, next_id: int) -> SandboxTemplate:
    missing = {"waba_id", "name", "category"} - data.keys()
    if missing:
        raise ValueError(f"missing {sorted(missing)}")
    components = data.get("components") or [{"type": "BODY", "text": data.get("body_text", "")}]
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise ValueError("components must be a list of objects")
    return SandboxTemplate(
        waba_id=str(data["waba_id"]),
        name=str(data["name"]),
        language=str(data.get("language") or "en_US"),
        category=str(data["category"]).upper(),
        status=str(data.get("status") or "APPROVED").upper(),
        components=components,
        id=str(data.get("id") or next_id),
    )


class Registry:
    """The numbers (with their tokens) and templates the sandbox accepts sends for."""

    def __init__(self):
        self.numbers: dict[str, SandboxNumber] = {}
        self.templates: dict[tuple[str, str, str], SandboxTemplate] = {}
        self._next_template_id = 1_000_000_000_000

    def add_number(self, number: SandboxNumber) -> None:
        self.numbers[number.phone_number_id] = number

    def add_template(self, template: SandboxTemplate) -> None:
        self.templates[(template.waba_id, template.name, template.language)] = template

    def new_template_id(self) -> int:
        self._next_template_id += 1
        return self._next_template_id

    def templates_of(self, waba_id: str) -> list[SandboxTemplate]:
        return [t for (waba, _, _), t in self.templates.items() if waba == waba_id]

    def copy(self) -> "Registry":
        clone = Registry()
        clone.numbers = {key: dataclasses.replace(n) for key, n in self.numbers.items()}
        clone.templates = {key: dataclasses.replace(t) for key, t in self.templates.items()}
        clone._next_template_id = self._next_template_id
        return clone


class SendRecord(NamedTuple):
    """One send request the sandbox answered."""

    at: float  # when it arrived: monotonic seconds in the sandbox process
    received_at: float  # when it arrived: Unix time, to compare with the product's instants
    answered_at: float  # when it was answered: monotonic, like `at`
    phone_number_id: str
    endpoint: str
    to: str  # digits, as Meta takes them
    template: str
    http_status: int
    error_code: int | None
    wamid: str  # "" when refused
    callback_data: str  # biz_opaque_callback_data
    parameters: list  # the body parameters' texts
    product_policy: str | None = None  # MM Lite's product_policy as sent; None when absent
    components: tuple = ()  # the template's components as sent (header, body, buttons)


class Recorder:
    """Every send request the sandbox answered, for tests and benchmarks to count."""

    FREEZE_EVERY = 1000

    def __init__(self, max_records: int = 2_000_000):
        self.max_records = max_records
        self.records: list[SendRecord] = []
        self.total = 0
        self.accepted_per_recipient: Counter = Counter()
        self.errors: Counter = Counter()
        self.http_statuses: Counter = Counter()
        self.started = time.monotonic()

    def record(self, record: SendRecord) -> None:
        self.total += 1
        self.http_statuses[record.http_status] += 1
        if record.wamid:
            self.accepted_per_recipient[record.to] += 1
        else:
            self.errors[str(record.error_code)] += 1
        if len(self.records) < self.max_records:
            self.records.append(record)
            if len(self.records) % self.FREEZE_EVERY == 0:
                # The records kept so far leave the cycle collector's view: a full
                # collection over all of them stopped the process for 125 ms after 8,000
                # records, and the requests that arrived meanwhile were stamped in one
                # burst, which read as the sender exceeding its rate (bench/engine.py's
                # rate case: 426-479 in a second at 400/s, 404 with this). Records hold no
                # cycles, so reference counting still frees them on a reset; only a cycle
                # alive at a freeze outlives its use.
                gc.freeze()

    def matching(self, phone: str = "", phone_number_id: str = "") -> list[dict]:
        phone = phone.lstrip("+")
        return [
            record._asdict()
            for record in self.records
            if (not phone or record.to == phone)
            and (not phone_number_id or record.phone_number_id == phone_number_id)
        ]

    def stats(self) -> dict:
        accepted = sum(self.accepted_per_recipient.values())
        return {
            "requests": self.total,
            "accepted": accepted,
            "errors": dict(self.errors),
            "recipients": len(self.accepted_per_recipient),
            "duplicate_recipients": sum(1 for n in self.accepted_per_recipient.values() if n > 1),
            "http_statuses": {str(code): n for code, n in sorted(self.http_statuses.items())},
            "max_requests_in_any_second": max_in_any_window(r.at for r in self.records),
            "seconds": round(time.monotonic() - self.started, 3),
        }


def make_rng(seed: int | None) -> random.Random:
    return random.Random(seed)
