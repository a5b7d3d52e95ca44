"""The send editor's parameter drop-downs, as a marketer uses them (send_editor.js)."""

from playwright.sync_api import expect

FIXED_TEXT = "__fixed__"


def parameter(page, index: int, slot: int | str):
    """The line of body {{slot}} (a number) or of a parameter by its label ("header {{1}}",
    "button Shop {{1}}") in the editor of send row `index`."""
    label = f"{{{{{slot}}}}}" if isinstance(slot, int) else slot
    return page.locator(f"#sends-{index} .send-parameter[data-slot='{label}']")


def choose_parameter(page, index: int, slot: int | str, entry: str) -> None:
    """Pick a column for a parameter, or a fixed text when `entry` is in double quotes."""
    line = parameter(page, index, slot)
    expect(line).to_be_visible()
    if entry.startswith('"') and entry.endswith('"'):
        line.locator("select").select_option(FIXED_TEXT)
        line.locator("input.send-parameter-text").fill(entry[1:-1])
    else:
        line.locator("select").select_option(entry)
