"""The embedded broker: concurrent producers never make a consumer read a half-written message.

The race is kombu's: its file-system transport creates a message file, then writes it, while a
consumer moves and reads any file it lists. Real producer processes and a consumer polling as
the worker does reproduce the stock transport's JSONDecodeError; ours delivers every message
once. Large bodies widen the window between create and write, so the stock failure shows within
seconds even on a loaded machine.
"""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kombu import Connection

from tests.support import wait_until

STOCK = "kombu.transport.filesystem:Transport"
OURS = "setter.broker:Transport"
QUEUE = "race"
PRODUCERS = 3
MESSAGES_EACH = 150
BODY_BYTES = 64 * 1024
ROOT = Path(__file__).resolve().parents[2]

PRODUCER = """
    import json, sys
    from kombu import Connection
    transport, options, ident, count, size = sys.argv[1:]
    with Connection("filesystem://", transport=transport,
                    transport_options=json.loads(options)) as connection:
        producer = connection.Producer()
        for n in range(int(count)):
            producer.publish({"producer": int(ident), "n": n, "pad": "x" * int(size)},
                             routing_key="race", serializer="json")
"""


def broker_options(root: Path) -> dict:
    options = {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        "control_folder": str(root / "control"),
        "processed_folder": str(root / "processed"),
    }
    for folder in options.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    return options


def connect(transport: str, options: dict) -> Connection:
    return Connection("filesystem://", transport=transport, transport_options=options)


def start_producers(transport: str, options: dict) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(PRODUCER),
                transport,
                json.dumps(options),
                str(ident),
                str(MESSAGES_EACH),
                str(BODY_BYTES),
            ],
            cwd=ROOT,
        )
        for ident in range(PRODUCERS)
    ]


def consume_while_producing(transport: str, options: dict, timeout: float = 60.0):
    """Poll the queue as a worker does until every message came or a read raised."""
    received = []
    with connect(transport, options) as connection:
        channel = connection.default_channel
        channel.queue_declare(QUEUE)
        producers = start_producers(transport, options)
        deadline = time.monotonic() + timeout
        try:
            while len(received) < PRODUCERS * MESSAGES_EACH:
                assert time.monotonic() < deadline, f"only {len(received)} messages arrived"
                try:
                    message = channel.basic_get(QUEUE, no_ack=True)
                except json.JSONDecodeError as error:
                    return received, error
                if message is not None:
                    received.append((message.payload["producer"], message.payload["n"]))
        finally:
            for producer in producers:
                producer.wait(timeout=60)
    return received, None


def test_kombus_stock_transport_serves_a_half_written_message(tmp_path):
    """Most rounds fail (19 of 20 when measured here); ten clean rounds would be a kombu fix."""
    errors = []
    for round_number in range(10):
        _, error = consume_while_producing(STOCK, broker_options(tmp_path / str(round_number)))
        if error is not None:
            errors.append(error)
            break

    assert errors, "the stock transport delivered every message whole ten times over"
    assert errors[0].msg == "Expecting value"


def test_our_transport_delivers_every_message_once_under_concurrent_producers(tmp_path):
    options = broker_options(tmp_path)

    received, error = consume_while_producing(OURS, options)

    assert error is None
    expected = {(ident, n) for ident in range(PRODUCERS) for n in range(MESSAGES_EACH)}
    assert sorted(received) == sorted(expected)
    queue = Path(options["data_folder_in"])
    assert not list((queue / ".incoming").iterdir()) and not list((queue / ".claimed").iterdir())


@pytest.mark.parametrize("content", [b"", b"not json", b"\xff\xfe"])
def test_a_foreign_or_empty_file_is_logged_and_set_aside(tmp_path, caplog, content):
    options = broker_options(tmp_path)
    queue = Path(options["data_folder_in"])
    with connect(OURS, options) as connection:
        channel = connection.default_channel
        channel.queue_declare(QUEUE)
        (queue / f"0_foreign.{QUEUE}.msg").write_bytes(content)
        connection.Producer().publish({"n": 1}, routing_key=QUEUE, serializer="json")

        message = wait_until(lambda: channel.basic_get(QUEUE, no_ack=True))

    assert message.payload == {"n": 1}
    assert (queue / ".rejected" / f"0_foreign.{QUEUE}.msg").read_bytes() == content
    assert f"Skipped broker file 0_foreign.{QUEUE}.msg ({len(content)} bytes" in caplog.text
