"""axe-core (tests/e2e/vendor) run in a page under test, for the browser tests."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("critical", "serious")


def axe_violations(page: Page, *, impacts=BLOCKING) -> list[str]:
    """The page's accessibility violations of these impacts, one line each.

    axe is evaluated through the browser's debugging protocol, which the
    page's Content-Security-Policy does not govern: nothing is added to the
    page's own scripts, and MedServer never serves it.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    violations = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at "
        + "; ".join(_where(node) for node in v["nodes"][:5])
        for v in violations
        if v["impact"] in impacts
    ]


def _where(node: dict) -> str:
    """The element, and what axe found there (the colours, for a contrast failure)."""
    found = [check["message"] for check in node.get("any", []) if check.get("message")]
    return " ".join(node["target"]) + (f" [{found[0]}]" if found else "")
