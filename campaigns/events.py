"""The status changes of campaigns and sends (and the engine pausing a send by itself), announced to the apps above campaigns (webhooks
turns them into partner events) without campaigns importing them.

Announced inside the transaction that saves the new status; receivers run there, in order of
connection, and an error in one fails the transition, as a direct call would.
"""

from django.dispatch import Signal

# Sent with obj (the Campaign or Send, its new status saved) and previous_status.
status_changed_signal = Signal()


def status_changed(obj, previous_status: str) -> None:
    status_changed_signal.send(sender=type(obj), obj=obj, previous_status=previous_status)


# Sent with send (its campaign just paused by the engine, not by a person) and reason.
send_paused_signal = Signal()


def send_paused(send, reason: str) -> None:
    send_paused_signal.send(sender=type(send), send=send, reason=reason)
