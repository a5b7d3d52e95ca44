"""The shape of a send window (issue 16.2, quiet hours), which an organization sets as the
default of its campaigns and a campaign may set for itself; campaigns.send_window applies it.
Here, at the bottom, so both models check a window by the one rule."""

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = list(range(7))  # 0 = Monday


def every_day() -> list[int]:
    return list(ALL_DAYS)


class WindowOutside(models.TextChoices):
    """What happens to a recipient outside the window."""

    WAIT = "wait", "Wait for the window to open"
    SKIP = "skip", "Skip them (reason: outside_window)"


def window_problems(start, end, days) -> dict[str, str]:
    """Field → problem for a window (both times or neither; start before end: an inverted
    window is refused, not read as overnight; a window opens on at least one day)."""
    problems = {}
    if (start is None) != (end is None):
        problems["window_end" if end is None else "window_start"] = (
            "Give both the start and the end of the send window, or neither."
        )
    elif start is not None and start >= end:
        problems["window_end"] = "The send window must end after it starts (the same day)."
    if not isinstance(days, list) or any(d not in ALL_DAYS for d in days):
        problems["window_days"] = "Days of the week are 0 (Monday) … 6 (Sunday)."
    elif start is not None and not days:
        problems["window_days"] = "Pick at least one day of the week the window opens."
    return problems


class WeekdaysField(models.JSONField):
    """Days of the week as a JSON list of 0 (Monday) … 6; a row of checkboxes in forms."""

    def formfield(self, form_class=None, choices_form_class=None, **kwargs):
        return forms.TypedMultipleChoiceField(
            coerce=int,
            choices=[(n, name.capitalize()) for n, name in enumerate(WEEKDAYS)],
            widget=forms.CheckboxSelectMultiple,
            required=False,
            label=self.verbose_name.capitalize(),
            help_text=self.help_text,
        )


class SendWindowFields(models.Model):
    """The four fields of a window, on the organization (the default) and the campaign (its
    own; a campaign without one follows its organization's), checked by the one rule."""

    window_start = models.TimeField(
        null=True,
        blank=True,
        verbose_name="send window opens",
        help_text="Messages reach people only from this local time (each recipient's own zone, "
        "from their phone) to the close below. Empty: any hour — a campaign then follows its "
        "organization's window.",
    )
    window_end = models.TimeField(
        null=True, blank=True, verbose_name="send window closes", help_text="e.g. 20:00."
    )
    window_days = WeekdaysField(
        default=every_day,
        blank=True,
        verbose_name="send window days",
        help_text="Days of the week the window opens (in the API: 0 = Monday … 6 = Sunday).",
    )
    window_outside = models.CharField(
        max_length=8,
        choices=WindowOutside.choices,
        default=WindowOutside.WAIT,
        verbose_name="outside the window",
        help_text="Recipients whose local time is outside the window wait for its next opening, "
        "or are skipped.",
    )

    class Meta:
        abstract = True

    def clean(self):
        super().clean()
        problems = window_problems(self.window_start, self.window_end, self.window_days)
        if problems:
            raise ValidationError(problems)
