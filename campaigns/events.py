"""The status changes of campaigns and sends, announced to the apps above campaigns (webhooks
turns them into partner events) without campaigns importing them.

Announced inside the transaction that saves the new status; receivers run there, in order of
connection, and an error in one fails the transition, as a direct call would.
"""

from django.dispatch import Signal

# Sent with obj (the Campaign or Send, its new status saved) and previous_status.
status_changed_signal = Signal()


def status_changed(obj, previous_status: str) -> None:
    status_changed_signal.send(sender=type(obj), obj=obj, previous_status=previous_status)
