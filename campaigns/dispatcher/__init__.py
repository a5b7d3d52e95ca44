"""The dispatcher: delivers a send's queued recipients through Meta at the allowed rate, and
finishes under Meta's everyday faults (130429, 5xx, slow answers) and killed workers.

Safety before speed, liveness right after. A dispatch run claims rows under a lease
(campaigns.recipients), renews that lease while it works (however long it waits for slots),
and marks a row `sending` only just before its request leaves: a worker that dies gives its
claimed rows back to the queue within a lease, and only the requests it had in flight become
`unknown`, never resent. Outcomes are written in small groups as answers arrive, not after a
whole batch.

Pacing: every few tens of milliseconds the run takes the rate-limit slots of the next
moment only (messaging.ratelimit), never a batch's worth ahead, so a stopped send frees its
number at once. A delivery that wakes late for its slot gives it up and takes a fresh one
instead of sending in a burst (unless at the send's rate even all of the process's requests
at once are no burst). Meta's 130429 answers adapt the number's rate (reported per
group of answers); transient errors come back with jittered backoff until their attempts run
out. A process never has more rows `sending` than it has wire slots (DISPATCH_CONCURRENCY).

Requests leave from one event loop per process (messaging.client.AsyncWhatsAppClient), in a
thread of its own, shared by the process's dispatch runs: the run's own thread does the
database work (claims, marks, outcomes) and hands each tick's rows to the loop in one call.
"""

from .guard import FailureGuard
from .loop import reset_delivery_loop
from .run import DispatchRun, dispatch_send
from .slots import FreshSlots

__all__ = ["DispatchRun", "FailureGuard", "FreshSlots", "dispatch_send", "reset_delivery_loop"]
