"""The send editor's parameter drop-downs, as a marketer uses them (send_editor.js)."""

from playwright.sync_api import expect

FIXED_TEXT = "__fixed__"


def parameter(page, index: int, position: int):
    """The line of {{position}} in the editor of send row `index`."""
    return page.locator(f"#sends-{index} .send-parameter[data-position='{position}']")


def choose_parameter(page, index: int, position: int, entry: str) -> None:
    """Pick a column for {{position}}, or a fixed text when `entry` is in double quotes."""
    line = parameter(page, index, position)
    expect(line).to_be_visible()
    if entry.startswith('"') and entry.endswith('"'):
        line.locator("select").select_option(FIXED_TEXT)
        line.locator("input.send-parameter-text").fill(entry[1:-1])
    else:
        line.locator("select").select_option(entry)
