"""The sandbox keeps every request it answered without pausing to do so: its arrival stamps
are what the rate benchmarks judge the dispatcher by."""

import gc

from messaging.sandbox.state import Recorder, SendRecord


def a_record(n: int) -> SendRecord:
    return SendRecord(
        at=float(n),
        received_at=float(n),
        answered_at=float(n),
        phone_number_id="pn-1",
        endpoint="messages",
        to=f"4479{n:08d}",
        template="promo",
        http_status=200,
        error_code=None,
        wamid=f"wamid.{n}",
        callback_data=str(n),
        parameters=[f"Ada {n}"],
    )


def test_the_kept_records_leave_the_cycle_collectors_view_as_they_grow():
    recorder = Recorder()
    gc.unfreeze()
    try:
        for n in range(Recorder.FREEZE_EVERY - 1):
            recorder.record(a_record(n))
        assert gc.get_freeze_count() == 0

        recorder.record(a_record(Recorder.FREEZE_EVERY))

        # The records (and their parameter lists) no longer cost a full collection anything.
        assert gc.get_freeze_count() >= Recorder.FREEZE_EVERY
        assert len(recorder.records) == Recorder.FREEZE_EVERY
    finally:
        gc.unfreeze()
