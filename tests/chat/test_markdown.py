"""The one Markdown renderer: model answers become formatted, safe HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from chat.markdown import MarkdownStream, render_markdown


class _Elements(HTMLParser):
    """Every start tag of a fragment with its attributes, and the text outside tags."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        self.text += data

    def named(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _elements(markdown: str) -> _Elements:
    return _Elements(render_markdown(markdown))


# --- formatting comes out


def test_headings_render():
    html = render_markdown("# Assessment\n\n## Plan\n\n###### Note")

    assert "<h1>Assessment</h1>" in html
    assert "<h2>Plan</h2>" in html
    assert "<h6>Note</h6>" in html


def test_bullet_and_numbered_lists_render_keeping_the_start_number():
    html = render_markdown("- aspirin\n- heparin\n\n3. third\n4. fourth")

    assert "<ul>\n<li>aspirin</li>\n<li>heparin</li>\n</ul>" in html
    assert '<ol start="3">' in html
    assert "<li>fourth</li>" in html


def test_tables_render_with_their_alignment():
    html = render_markdown("| Drug | Dose |\n|------|:----:|\n| Amoxicillin | 500 mg |")

    elements = _Elements(html)
    assert [tag for tag, _ in elements.tags] == [
        "table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td",
    ]  # fmt: skip
    # By class: the page's Content-Security-Policy allows no style attributes.
    assert elements.named("th")[1] == {"class": "align-center"}
    assert "<td>Amoxicillin</td>" in html


def test_fenced_code_block_renders_its_content_as_text():
    html = render_markdown('```python\nif dose > 4:\n    print("<b>high</b>")\n```')

    assert html.startswith("<pre><code")
    assert "if dose &gt; 4:" in html
    assert "&lt;b&gt;high&lt;/b&gt;" in html
    assert "<b>" not in html


def test_inline_emphasis_and_code_render():
    html = render_markdown("**STEMI** is *likely*; `ECG` now")

    assert "<strong>STEMI</strong>" in html
    assert "<em>likely</em>" in html
    assert "<code>ECG</code>" in html


def test_strikethrough_stays_struck_out():
    elements = _elements("~~give 10 mg~~ give 5 mg")

    struck = elements.named("s") + elements.named("del")
    assert len(struck) == 1


def test_blockquote_and_rule_render():
    html = render_markdown("> red flag\n\n---")

    assert "<blockquote>" in html
    assert "<hr>" in html


# --- links open safely


def test_links_open_in_a_new_tab_without_opener():
    elements = _elements("See [NICE guidance](https://www.nice.org.uk/ng185 'NICE').")

    (link,) = elements.named("a")
    assert link["href"] == "https://www.nice.org.uk/ng185"
    assert link["target"] == "_blank"
    assert "noopener" in link["rel"].split()
    assert link["title"] == "NICE"


def test_link_attributes_written_in_the_answer_cannot_override_the_safe_ones():
    elements = _elements('[x](https://example.org "t"){target=_self rel=opener}')

    (link,) = elements.named("a")
    assert link["target"] == "_blank"
    assert "opener" not in link["rel"].split()


def test_mailto_links_are_kept():
    (link,) = _elements("[write](mailto:ward@example.org)").named("a")

    assert link["href"] == "mailto:ward@example.org"


# --- nothing executable comes out

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="#" onclick="alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    '<a href="javascript:alert(1)">raw link</a>',
    "![x](javascript:alert(1))",
    '![x](https://example.org/a.png "x" onerror=alert(1))',
    "<iframe src=https://evil.example></iframe>",
    "`<script>` in code is fine\n\n    <script>alert(1)</script>",
    "| a |\n|---|\n| <script>alert(1)</script> |",
    "<<script>script>alert(1)<</script>/script>",
]


@pytest.mark.parametrize("markdown", HOSTILE)
def test_hostile_markdown_yields_no_script_handler_or_javascript_url(markdown):
    elements = _elements(markdown)

    for tag, attrs in elements.tags:
        assert tag not in ("script", "iframe", "svg", "img", "style", "object", "embed"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style" or value == "" or value.startswith("text-align"), value
            compact = "".join(value.split()).lower()
            if name in ("href", "src"):
                assert compact.startswith(("http:", "https:", "mailto:", "#", "/")), value


@pytest.mark.parametrize("markdown", HOSTILE)
def test_hostile_markdown_never_yields_a_live_tag_in_the_raw_html(markdown):
    html = render_markdown(markdown)

    # Escaped text (&lt;script&gt;) is harmless; only real tags are checked.
    tags = re.findall(r"<[^>]*>", html)
    for tag in tags:
        compact = "".join(tag.split()).lower()
        assert not compact.startswith("<script"), tag
        assert "javascript:" not in compact, tag
        assert re.search(r"\son[a-z]+\s*=", tag, re.IGNORECASE) is None, tag


def test_raw_html_in_an_answer_is_shown_as_text():
    elements = _elements("Use <b>bold</b> here")

    assert elements.named("b") == []
    assert "<b>bold</b>" in elements.text


# --- streaming: closed blocks rendered once, the open block re-rendered

ANSWER = (
    "## Assessment\n\n"
    "Likely **community-acquired pneumonia**.\n\n"
    "1. Chest X-ray\n2. CURB-65\n\n"
    "   Score it on arrival.\n\n"
    "```text\nline one\n\nline two after a blank line\n```\n\n"
    "| Drug | Dose |\n|---|---|\n| Amoxicillin | 1 g |\n\n"
    "Review in 48 hours."
)


def _stream(text: str, piece: int) -> tuple[list[str], MarkdownStream]:
    stream = MarkdownStream()
    closed = [stream.feed(text[i : i + piece]) for i in range(0, len(text), piece)]
    return [block for block in closed if block], stream


@pytest.mark.parametrize("piece", [1, 3, 17, len(ANSWER)])
def test_streamed_text_is_cut_into_the_same_blocks_however_it_arrives(piece):
    blocks, stream = _stream(ANSWER, piece)

    assert "".join(blocks) + stream.tail == ANSWER
    assert (stream.text[: stream.closed], stream.tail) == MarkdownStream.split(ANSWER)
    assert stream.tail == "Review in 48 hours."


def test_a_block_closes_only_once_unindented_text_follows_a_blank_line():
    stream = MarkdownStream()
    assert stream.feed("First paragraph.\n\n") == ""  # what comes next may be indented
    assert stream.feed("   continued list text\n\n") == ""
    assert stream.feed("N") == "First paragraph.\n\n   continued list text\n\n"
    assert stream.tail == "N"


def test_a_blank_line_inside_fenced_code_does_not_close_it():
    blocks, stream = _stream(ANSWER, 1)

    assert "```text\nline one\n\nline two after a blank line\n```\n\n" in blocks
    assert not any(block.startswith("line two") for block in blocks)


def test_an_open_code_fence_stays_in_the_open_block_and_renders_as_code():
    closed, tail = MarkdownStream.split("Intro.\n\n```python\nx = 1\n\ny = 2")

    assert closed == "Intro.\n\n"
    assert tail == "```python\nx = 1\n\ny = 2"
    assert "<pre><code" in render_markdown(tail)


def test_the_pieces_render_to_what_the_whole_answer_renders_to():
    blocks, stream = _stream(ANSWER, 5)

    def words(html: str) -> list[str]:
        return _Elements(html).text.split()

    pieces = "".join(render_markdown(block) for block in blocks) + render_markdown(stream.tail)
    assert words(pieces) == words(render_markdown(ANSWER))
    tags = [tag for tag, _ in _Elements(pieces).tags]
    assert [tags.count(tag) for tag in ("h2", "ol", "pre", "table")] == [1, 1, 1, 1]
