"""The quality guard's failure share, over a dispatch run's latest answers from Meta."""

from collections import deque

from ..recipients import Outcome


class FailureGuard:
    """The quality guard's failure share (issue 16.4): over this run's latest `window` answers
    from Meta, more than `percent` recipient-permanent failures (undeliverable, blocked,
    stopped marketing) pause the send: an audience that bad damages the number's quality."""

    def __init__(self, percent: int, window: int):
        self.percent = percent
        self.answers: deque[bool] = deque(maxlen=window)
        self.failures = 0

    @classmethod
    def of(cls, organization) -> "FailureGuard":
        return cls(organization.guard_failure_percent, organization.guard_failure_window)

    def observe(self, outcomes: list[Outcome]) -> str:
        """Count the answers; the reason to pause once the share passes the threshold."""
        for outcome in outcomes:
            if outcome.kind not in ("sent", "failed") or not outcome.answered:
                continue
            if len(self.answers) == self.answers.maxlen:
                self.failures -= self.answers[0]
            self.answers.append(outcome.permanent)
            self.failures += outcome.permanent
        window = self.answers.maxlen or 0
        if len(self.answers) < window or self.failures * 100 <= self.percent * window:
            return ""
        return (
            f"{self.failures} of Meta's last {window} answers were recipient-permanent "
            f"failures (over {self.percent}%): check the audience's numbers before resuming."
        )
