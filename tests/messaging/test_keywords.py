"""Which replies are opt-outs: the whole message is a STOP-style keyword, or starts with one
followed by punctuation."""

import pytest

from messaging.keywords import is_stop_message


@pytest.mark.parametrize(
    "text",
    [
        "stop",
        "STOP",
        "Stop",
        "  stop  ",
        "stop.",
        "STOP!!!",
        "stop?",
        "unsubscribe",
        "Unsubscribe.",
        "unsub",
        "cancel",
        "END",
        "quit",
        "remove me",
        "Remove   me!",
        "opt out",
        "opt-out",
        "OPT-OUT",
        "optout",
        "stop, please",
        "STOP - I never signed up",
        "unsubscribe. thanks",
        "stop\n",
    ],
)
def test_opt_out_replies(text):
    assert is_stop_message(text)


@pytest.mark.parametrize(
    "text",
    [
        "please don't stop sending these",
        "don't stop",
        "stop sending me this",
        "stopping by later",
        "stopwatch",
        "ends tomorrow?",
        "the end of the month",
        "can I cancel my order",
        "quite good",
        "remove",
        "opt in",
        "hello",
        "",
        "   ",
        None,
        "🛑",
    ],
)
def test_replies_that_are_not_opt_outs(text):
    assert not is_stop_message(text)
