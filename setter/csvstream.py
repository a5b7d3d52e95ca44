"""CSV that a response streams: each row is formatted as it is produced and nothing is kept.

Every export a person may open in a spreadsheet goes through `line_writer`, which defuses
formula injection (OWASP "CSV Injection"): a text cell starting with `=`, `+`, `-`, `@`, a tab
or a carriage return is written with a leading single quote, so Excel, LibreOffice and Google
Sheets show it as text instead of evaluating it. Lead names, variables, error titles and raw
phones come from partners' files and APIs, so any of them may be `=HYPERLINK(...)`.

One exception: a cell that is exactly an E.164 phone (`+` and 1 to 15 digits, as every
normalised phone in an export is) is left alone. It cannot carry a formula — a spreadsheet
evaluates it, at worst, to the number it already shows — and an export that re-imports as
the same phones is worth more than a quote in front of each. Anything longer or with other
characters (`+44 20 7946 0958`, `+1=cmd|...`) is quoted like any other cell.
"""

import csv
import re

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9][0-9]{0,14}")


def neutralize_cell(value):
    """The cell as a spreadsheet may safely read it: `'`-prefixed if it could be a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        if not _E164.fullmatch(value):
            return "'" + value
    return value


class _Line:
    """A csv.writer target that hands back each formatted line instead of storing it."""

    def write(self, line: str) -> str:
        return line


class _SafeLineWriter:
    def __init__(self):
        self._writer = csv.writer(_Line())

    def writerow(self, row) -> str:
        return self._writer.writerow([neutralize_cell(value) for value in row])


def line_writer() -> _SafeLineWriter:
    """A csv writer whose writerow() returns the formatted line (for StreamingHttpResponse),
    every cell neutralised against formula injection."""
    return _SafeLineWriter()
