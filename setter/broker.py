"""The embedded shape's Celery broker: kombu's file-system transport, made safe to share.

kombu's stock transport creates a message file and then writes it, while a consumer moves and
reads any file it lists, so under concurrent producers a consumer can take a file that is
still empty and the worker dies on a JSONDecodeError. Here a producer writes each message under
a temporary name in a hidden folder beside the queue and renames it in (atomic on POSIX: a
consumer sees the whole file or none), and a consumer claims a file by renaming it away
(exactly one consumer wins) and logs and sets aside a file it cannot decode instead of raising.

Selected in settings with `CELERY_BROKER_TRANSPORT` whenever the broker URL is `filesystem://`.
"""

import json
import logging
import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# Hidden folders inside the queue folder, on the same file system so a rename stays atomic;
# their names have no `.<queue>.msg` in them, so no consumer mistakes them for messages.
INCOMING = ".incoming"
CLAIMED = ".claimed"
REJECTED = ".rejected"


class Channel(filesystem.Channel):
    # The signatures of kombu's filesystem.Channel, which this overrides; the stubs only
    # describe the abstract base's.
    def _put(self, queue, payload, **kwargs):  # type: ignore[override]
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        incoming = Path(self.data_folder_out) / INCOMING
        temporary = incoming / name
        try:
            incoming.mkdir(exist_ok=True)
            with open(temporary, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.rename(temporary, Path(self.data_folder_out) / name)
        except OSError as error:
            raise ChannelError(f"Cannot add {name!r} to {self.data_folder_out!r}") from error

    def _get(self, queue):  # type: ignore[override]
        suffix = f".{queue}.msg"
        folder = Path(self.data_folder_in)
        claimed_folder = folder / CLAIMED
        claimed_folder.mkdir(exist_ok=True)
        for name in sorted(os.listdir(folder)):
            if name.startswith(".") or not name.endswith(suffix):
                continue
            claimed = claimed_folder / name
            try:
                os.rename(folder / name, claimed)
            except FileNotFoundError:  # another consumer took it first
                continue
            try:
                raw = claimed.read_bytes()
            except OSError as error:
                raise ChannelError(f"Cannot read {claimed} from the queue") from error
            try:
                payload = loads(bytes_to_str(raw))
            except (ValueError, UnicodeDecodeError) as error:
                self._reject(claimed, len(raw), error)
                continue
            self._done(claimed)
            return payload
        raise Empty()

    def _reject(self, claimed: Path, size: int, error: Exception) -> None:
        """Keep an undecodable file for a person to look at; the worker carries on."""
        rejected_folder = claimed.parent.parent / REJECTED
        rejected_folder.mkdir(exist_ok=True)
        os.rename(claimed, rejected_folder / claimed.name)
        logger.warning(
            "Skipped broker file %s (%d bytes, not a message: %s); moved it to %s",
            claimed.name,
            size,
            error,
            rejected_folder,
        )

    def _done(self, claimed: Path) -> None:
        if self.store_processed:
            Path(self.processed_folder).mkdir(parents=True, exist_ok=True)
            os.replace(claimed, Path(self.processed_folder) / claimed.name)
        else:
            claimed.unlink()

    def get_table(self, exchange):
        """The exchange's bindings; a table caught mid-write counts as none yet, not a crash."""
        try:
            return super().get_table(exchange)
        except json.JSONDecodeError:
            logger.warning("Exchange table %s was being written; read it as empty", exchange)
            return []


class Transport(filesystem.Transport):
    Channel = Channel
