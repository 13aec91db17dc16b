"""Row "unsafe output": drafts (and messages, sources) with <script>, event handlers, markdown images
pointing outside.

The UI never renders HTML (every text goes through st.text / st.code / escaped markdown): the browser
test tests/ui/test_browser.py::test_html_in_a_draft_and_in_sources_is_inert drives it in Chromium. Here:
the same guarantee statically for every UI page, the product's other HTML output (the eval report)
opened in Chromium with every request intercepted, and the checks that flag outside links and images.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.wiring import build_drafter

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    "Hello, I'm sorry your jacket arrived torn. <script>window.__xss=1</script>"
    '<img src="https://evil.example/pixel.png" onerror="window.__xss=2"> '
    "![tracking](https://evil.example/track.png?u=1) [click](javascript:window.__xss=3) "
    '<a href="https://evil.example/phish" onclick="window.__xss=4">refund form</a> '
    "We will resolve this within 3 business days.\n\nKind regards,\nFernway Outfitters Support"
)
MESSAGE = "My jacket arrived with a torn sleeve <svg onload=window.__xss=5></svg>"


def _ui_files() -> list[Path]:
    return sorted((ROOT / "ui").glob("*.py"))


@pytest.mark.parametrize("path", _ui_files(), ids=lambda p: p.name)
def test_no_ui_page_can_render_raw_html(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("unsafe_allow_html", "allow_html"):
            assert isinstance(node.value, ast.Constant) and node.value.value is False, (path, node.lineno)
        if isinstance(node, ast.Attribute) and node.attr in ("html", "components", "iframe"):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            assert name not in ("st", "streamlit", "components", "v1"), (path, node.lineno, node.attr)


def test_outside_links_and_images_in_a_draft_are_flagged(kb_module_settings):
    result = build_drafter(kb_module_settings, backend=FakeBackend([HOSTILE])).draft(MESSAGE)
    spans = [u.span for u in result.checks.unsupported if "link" in u.reason]
    assert any("evil.example/track.png" in s for s in spans), result.checks.unsupported
    assert any("evil.example/pixel.png" in s for s in spans), result.checks.unsupported
    assert any("evil.example/phish" in s for s in spans), result.checks.unsupported
    assert not result.checks.passed
    assert result.text.count("<script>") == 1  # kept verbatim as text for the agent to see: never rendered


@pytest.fixture(scope="module")
def hostile_report(kb_module_settings, tmp_path_factory):
    from assistant.evaluation.runner import run_eval

    out = tmp_path_factory.mktemp("report")
    dataset = out / "hostile.jsonl"
    import json

    rows = [{"id": "x<script>1</script>", "message": MESSAGE, "must_not_include": ["<script>"],
             "notes": "<img src=https://evil.example/n.png onerror=window.__xss=6>"}]
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    run = run_eval(dataset, kb_module_settings, backend=FakeBackend([HOSTILE]), out_dir=out / "run", progress=False)
    return run.out_dir / "report.html"


def test_the_eval_report_escapes_every_draft_and_message(hostile_report):
    from html.parser import HTMLParser

    tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, attrs))

    page = hostile_report.read_text(encoding="utf-8")
    Collect().feed(page)
    names = {t for t, _ in tags}
    assert not names & {"script", "img", "iframe", "object", "embed", "link", "a", "form", "base", "meta-refresh"}
    for tag, attrs in tags:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            if name in ("src", "href", "xlink:href", "action"):
                assert not re.match(r"\s*(https?:|javascript:|//)", value or "", re.I), (tag, name, value)
    assert html.escape("<script>window.__xss=1</script>", quote=False) in page  # shown, as text


@pytest.mark.slow
@pytest.mark.browser
def test_the_eval_report_is_inert_in_a_browser(hostile_report):
    """Chromium opens the report: no script runs and no request leaves the file (every request is logged)."""
    chromium = "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                    "--disable-background-networking"])
        try:
            context = browser.new_context()
            context.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()
                                                 if route.request.url.startswith(("file:", "data:")) else route.abort()))
            page = context.new_page()
            page.goto(hostile_report.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(500)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert page.locator("script, img, iframe, object, embed").count() == 0
            assert "<script>window.__xss=1</script>" in page.text_content("body")
            outside = [u for u in requests if not u.startswith(("file:", "data:"))]
            # The logger sees outside requests: a probe fetched by the test itself shows up.
            page.evaluate("fetch('https://probe.invalid/x').catch(() => 0)")
            page.wait_for_timeout(300)
        finally:
            browser.close()
    assert outside == [], outside
    assert "https://probe.invalid/x" in requests
