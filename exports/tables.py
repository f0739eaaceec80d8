"""The tables in an answer (lab values with their units), as CSV for a spreadsheet.

An answer is Markdown; the page renders its tables (chat.markdown). This reads
them with the same parser, cell by cell as text (emphasis and links reduced to
their words), so what the CSV holds is what the page shows.
"""

from __future__ import annotations

import csv
import io

from markdown_it import MarkdownIt

_parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# A cell a spreadsheet would run as a formula gets a leading apostrophe. A minus
# sign starts both a formula and a negative number ("-2.1" base excess): numbers
# are left as they are.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def answer_tables(text: str) -> list[list[list[str]]]:
    """Return each table of the Markdown `text`: its rows, header first, each a
    list of cell texts."""
    tables: list[list[list[str]]] = []
    row: list[str] | None = None
    for token in _parser.parse(text):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            tables[-1].append(row)
            row = None
        elif token.type == "inline" and row is not None:
            row.append(_plain(token))
    return tables


def tables_csv(text: str) -> str:
    """The tables of `text` as one CSV file, a blank line between tables; "" when
    it has none."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for number, table in enumerate(answer_tables(text)):
        if number:
            writer.writerow([])
        writer.writerows([[_safe_cell(cell) for cell in row] for row in table])
    return out.getvalue()


def _plain(inline) -> str:
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def _safe_cell(value: str) -> str:
    if value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
