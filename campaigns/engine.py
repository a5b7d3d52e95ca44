"""Beat's engine tick: every send moves one step through materialize → start → dispatch →
recover → finish (a local-time send's later waves materialize and start on their own
instants; a retry wave of a completed send starts it again). The caller says how a
dispatch is enqueued, so beat, the tests and the benchmarks drive the same tick against
their own queues."""

from collections.abc import Callable

from django.conf import settings

from . import materializer, retries, sends, waves


def tick(enqueue_dispatch: Callable[[int], object]) -> None:
    """Rows of dead dispatchers are recovered first, so a send they stranded is seen as
    needing dispatchers in the same tick."""
    materializer.materialize_due_sends()
    waves.materialize_due_waves()
    sends.recover_lost_recipients()
    due = (
        sends.start_due_sends()
        + waves.start_due_local_waves()
        + retries.start_due_retry_waves()
        + sends.stalled_send_ids()
    )
    for send_id in dict.fromkeys(due):
        for _ in range(settings.DISPATCH_TASKS_PER_SEND):
            enqueue_dispatch(send_id)
    sends.finish_sends()
