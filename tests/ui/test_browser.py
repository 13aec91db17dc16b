"""End-to-end: `assistant ui` on 127.0.0.1, driven in headless Chromium (Debian package) with Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MESSAGE = "My Skerry Rain Shell from order #4521 arrived with a torn sleeve. What can you do?"
XSS = '<script>window.__xss=1</script> <img src=x onerror="window.__xss=2">'
DRAFT_LABEL = "Draft reply (edit before sending)"
TIMEOUT_MS = 90_000

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); required in CI", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ui_server(data_dir: Path, log: Path, **env_extra: str):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_DATA_DIR": str(data_dir), "ASSISTANT_BACKEND": "composer", **env_extra})
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "ui", "--server.port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"assistant ui did not start:\n{log.read_text()}")
            time.sleep(0.3)
        first = log.read_text().splitlines()[0]
        assert first.startswith("Support Reply Assistant UI: open http://127.0.0.1:"), first
        yield url
    finally:
        proc.terminate()  # `assistant ui` forwards SIGTERM to streamlit
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: this reaches streamlit too
            proc.wait()
        if not _group_gone(proc.pid, timeout=20):
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("streamlit outlived `assistant ui` (SIGTERM was not forwarded)")


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(small_kb_data_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    data = base / "data"
    shutil.copytree(small_kb_data_dir, data)
    with ui_server(data, base / "server.log") as url:
        yield url, data


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    yield pg
    context.close()


def _idle(page) -> None:
    """Wait until Streamlit has finished the current script run. A text from the top of the page can be
    visible before the rest of the rerun has reached the browser; a click then sends stale widget values."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def _draft(page, message: str = MESSAGE):
    page.get_by_label("Customer message").fill(message)
    page.get_by_role("button", name="Draft reply", exact=True).click()
    page.get_by_label(DRAFT_LABEL).wait_for()
    return page.get_by_label(DRAFT_LABEL)


def _rows(data: Path) -> list[dict]:
    path = data / "feedback.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY id")]


def _wait_for(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_paste_draft_edit_accept_writes_feedback(server, page):
    from playwright.sync_api import expect

    url, data = server
    before = len(_rows(data))
    page.goto(url)
    editor = _draft(page)
    text = editor.input_value()
    assert "within 3 business days" in text
    page.get_by_text("NOT written by an LLM").first.wait_for()
    page.get_by_text("Checklist").wait_for()
    page.get_by_text("Sources").wait_for()
    assert "?s=" in page.url  # the session id that lets a refresh restore the draft

    # a refresh keeps the unaccepted draft
    page.reload()
    # The box can be drawn a moment before the restored value reaches it; wait for the value itself.
    expect(page.get_by_label(DRAFT_LABEL)).to_have_value(text)

    editor = page.get_by_label(DRAFT_LABEL)
    editor.fill(text + "\nP.S. Edited in the browser.")
    page.get_by_role("button", name="Accept", exact=True).click()
    page.get_by_text("Saved as feedback").wait_for()
    rows = _wait_for(lambda: [r for r in _rows(data)[before:]])
    assert len(rows) == 1
    assert rows[0]["action"] == "accepted_with_edits"
    assert rows[0]["final_text"].endswith("P.S. Edited in the browser.")
    assert rows[0]["backend"] == "composer"


def test_template_edit_new_version_publish_next_draft_reports_it(server, page):
    url, data = server
    from assistant.settings import Settings
    from assistant.templates import TemplateStore

    store = TemplateStore(Settings.from_env({"ASSISTANT_DATA_DIR": str(data)}))
    expected = store.latest_version("reply") + 1

    page.goto(url)
    page.get_by_role("link", name="Templates").click()
    source = page.get_by_label("Template source (Jinja2)")
    source.wait_for()
    source.fill(source.input_value() + "\n{# edited in the browser test #}\n")
    page.get_by_label("Your name").fill("Browser Lead")
    page.get_by_role("button", name="Save as new version").click()
    page.get_by_text(f"Saved reply v{expected}").wait_for()
    assert store.get("reply", expected).author == "Browser Lead"
    _idle(page)  # the "Version to publish" box must show the new version before Publish is clicked

    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text(f"Published reply v{expected}").wait_for()
    assert store.get("reply").version == expected

    page.get_by_role("link", name="Agent").click()
    _draft(page)
    page.get_by_text(f"template reply v{expected}").wait_for()


_FAKE_SITECUSTOMIZE = textwrap.dedent("""
    # Test-only: make the "fake" backend answer with the reply in UI_TEST_FAKE_REPLY.
    import os

    if os.environ.get("UI_TEST_FAKE_REPLY"):
        from assistant.backends import register_backend
        from assistant.backends.fake import FakeBackend

        register_backend("fake", lambda settings: FakeBackend([os.environ["UI_TEST_FAKE_REPLY"]]))
""")


def test_html_in_a_draft_and_in_sources_is_inert(small_kb_data_dir, tmp_path, page):
    data = tmp_path / "data"
    shutil.copytree(small_kb_data_dir, data)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_FAKE_SITECUSTOMIZE, encoding="utf-8")
    reply = ("Hello,\n\nI'm sorry your jacket arrived torn. " + XSS + "\n[click me](javascript:window.__xss=5) "
             "![x](x)\n\nWe will resolve this within 3 business days.\n\nKind regards,\nFernway Outfitters Support")
    env = {"ASSISTANT_BACKEND": "fake", "UI_TEST_FAKE_REPLY": reply, "PYTHONPATH": str(hook)}
    with ui_server(data, tmp_path / "server.log", **env) as url:
        page.goto(url)
        editor = _draft(page, "My jacket arrived with a torn sleeve " + XSS)
        assert XSS in editor.input_value()  # shown as text, verbatim
        # The hostile article (HTML in its title and text) is among the sources, rendered as text.
        page.get_by_text("window.__xss=4").first.wait_for(state="attached")
        for expander in page.locator("[data-testid='stExpander'] summary").all():
            expander.click()  # open every source
        editor.fill(editor.input_value() + "\n" + XSS)
        page.get_by_role("button", name="Accept", exact=True).click()
        page.get_by_text("Saved as feedback").wait_for()
        page.get_by_role("link", name="Insights").click()
        page.get_by_text("Recent feedback").wait_for()
        time.sleep(1)
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("a[href^='javascript']").count() == 0
