"""PDF lab reports for tests, written with fpdf2: pages of results in a table, and
the metadata a lab's system puts in the file (which names the patient)."""

from __future__ import annotations

from fpdf import FPDF

# What a lab system writes into the file's metadata; none of it may be stored.
PDF_METADATA = {
    "title": "Lab report Doe^Jane MRN-88231774",
    "author": "Springfield General Laboratory",
    "subject": "Patient Jane Doe born 1961-04-12",
    "keywords": "ACC9931177",
}
METADATA_TEXT = ("Doe^Jane", "MRN-88231774", "Springfield General", "1961-04-12", "ACC9931177")
RESULTS = [
    ("Hemoglobin", "13.5", "g/dL", "12.0-15.5"),
    ("White cell count", "11.8", "10^9/L", "4.0-11.0"),
    ("Platelets", "250", "10^9/L", "150-400"),
    ("Sodium", "138", "mmol/L", "135-145"),
    ("Potassium", "5.9", "mmol/L", "3.5-5.1"),
]


def lab_report(pages: int = 2) -> bytes:
    """A lab report of `pages` A4 pages, each with a heading and a table of results."""
    pdf = FPDF(format="A4")
    pdf.set_title(PDF_METADATA["title"])
    pdf.set_author(PDF_METADATA["author"])
    pdf.set_subject(PDF_METADATA["subject"])
    pdf.set_keywords(PDF_METADATA["keywords"])
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 16)
        pdf.cell(0, 12, f"Laboratory report, page {number}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        with pdf.table() as table:
            table.row(["Test", "Result", "Unit", "Reference range"])
            for row in RESULTS:
                table.row(list(row))
    return bytes(pdf.output())
