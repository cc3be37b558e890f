"""The report in a real headless browser (Debian's chromium), driven over the DevTools protocol.

The protocol runs over a pipe (``--remote-debugging-pipe``: JSON messages separated by NUL on file
descriptors 3 and 4), so the test needs nothing beyond the standard library and the browser. It
checks that the page loads offline with no network request and no console error, shows Chinese
in the embedded font, that the findings table filters and sorts, prints to PDF, and saves
screenshots to tests/artifacts/ for a person to look at.

Without chromium the test is skipped, except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from audit.report import casetable
from tests.pdfpages import fill_colours, page_texts
from tests.test_report import build_report_db, invoke, make_report
from tests.test_report_process import open_vocabulary_db

ARTIFACTS = Path(__file__).parent / "artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]

LAUNCHER = """import fcntl, os, sys
a, b = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(a, 3)
os.dup2(b, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


def browser_path() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A chromium process and one page, spoken to over the DevTools pipe."""

    def __init__(self, exe: str, profile: Path):
        cmd_r, self._cmd_w = os.pipe()   # we write commands, the browser reads them on fd 3
        self._res_r, res_w = os.pipe()   # the browser writes replies on fd 4
        # A tiny launcher puts the pipe ends on fds 3 and 4, where --remote-debugging-pipe expects them.
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(cmd_r), str(res_w), exe, *FLAGS,
                                      f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(cmd_r, res_w))
        os.close(cmd_r)
        os.close(res_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._events: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()

    def call(self, method: str, session: bool = False, timeout: float = 30, **params) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next_id not in self._replies:
                left = deadline - time.monotonic()
                assert left > 0, f"no reply to {method} within {timeout}s"
                self._cond.wait(left)
            reply = self._replies.pop(self._next_id)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply.get("result", {})

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=True, **params)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e.get("method") == method:
                        return e
                left = deadline - time.monotonic()
                assert left > 0, f"no {method} within {timeout}s"
                self._cond.wait(left)

    def js(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type `text` as keyboard input."""
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.page("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        """Pick an option of a select (as a user's choice does: value, then a change event)."""
        self.js(f"""{{ const s = document.querySelector({json.dumps(selector)}); s.value = {json.dumps(value)};
                    s.dispatchEvent(new Event('change', {{bubbles: true}})); }}""")

    def screenshot(self, path: Path, **clip) -> None:
        params = {"format": "png"}
        if clip:
            params.update(clip=dict(clip, scale=1), captureBeyondViewport=True)
        data = self.page("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)


def require_browser() -> str:
    """The browser's path; the test is skipped without one, except in CI (``CI`` set), where it fails."""
    exe = browser_path()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI: apt-get install -y chromium")
        pytest.skip("chromium not installed (apt-get install -y chromium); runs in CI")
    return exe


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(require_browser(), tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def open_report(browser: Browser, path: Path, width: int = 1280) -> None:
    """Load a report from its file:// URL in `browser`, fonts included, at `width` CSS px."""
    browser.page("Emulation.setDeviceMetricsOverride", width=width, height=1600, deviceScaleFactor=1, mobile=False)
    browser.events.clear()
    browser.page("Page.navigate", url=path.as_uri())
    browser.wait_event("Page.loadEventFired")
    browser.js("document.fonts.ready.then(() => true)")


def print_pdf(browser: Browser) -> bytes:
    """The page printed as the browser's own "Save as PDF" does: the page's @page size and margins,
    no background graphics, the browser's own header and footer off."""
    data = browser.page("Page.printToPDF", preferCSSPageSize=True, printBackground=False, displayHeaderFooter=False)
    pdf = base64.b64decode(data["data"])
    assert pdf.startswith(b"%PDF")
    return pdf


@pytest.fixture(scope="module")
def loaded(browser, tmp_path_factory):
    """The report of the sample, opened from a file:// URL, with its load events recorded."""
    tmp = tmp_path_factory.mktemp("browser")
    out = tmp / "报告.html"
    with pytest.MonkeyPatch.context() as mp:  # fewer rows than findings: the page says so
        mp.setattr(casetable, "MAX_ROWS", 400)
        make_report(build_report_db(tmp / "audit.duckdb"), out)
    for domain in ("Network", "Runtime", "Log", "Page"):
        browser.page(f"{domain}.enable")
    open_report(browser, out)
    return browser, out


def row_values(browser, column: str) -> list[str]:
    index = {"severity": 0, "rule_id": 1, "city": 2, "hall": 3, "case_id": 4, "month": 5}[column]
    return browser.js(f"""[...document.querySelectorAll('#findings-table tbody tr')]
        .map(tr => {'tr.dataset.severity' if column == 'severity' else f'tr.cells[{index}].firstChild.textContent'})""")


def test_no_network_request_and_no_console_error(loaded):
    browser, out = loaded
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert [u for u in requests if not u.startswith("data:")] == [out.as_uri()]
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning"))]
    assert not errors, json.dumps(errors, ensure_ascii=False)[:2000]


def test_chinese_text_in_embedded_font(loaded):
    browser, _ = loaded
    text = browser.js("document.body.innerText")
    for words in ("帮办代办服务审计报告", "总体情况", "合规率", "延安", "宝鸡", "榆林", "问题办件清单"):
        assert words in text
    assert browser.js("[...document.fonts].some(f => f.family.includes('ReportSans') && f.status === 'loaded')")
    assert browser.js("document.fonts.check('16px ReportSans', '帮办代办合规率')")
    assert browser.js("document.querySelectorAll('svg.chart-svg').length") == 8
    # every element holding Chinese text can fall back to the embedded font (no tofu boxes)
    without = browser.js("""[...document.querySelectorAll('body *')].filter(e =>
        [...e.childNodes].some(n => n.nodeType === 3 && /[\u3000-\u9fff\uff00-\uffef]/.test(n.textContent))
        && !getComputedStyle(e).fontFamily.includes('ReportSans')).map(e => e.tagName + ': ' + e.textContent.slice(0, 40))""")
    assert not without
    assert "audit findings --format xlsx --out 整改清单.xlsx" in browser.js("document.getElementById('findings-capped').innerText")


def test_findings_filter_and_sort(loaded):
    browser, _ = loaded
    total = browser.js("JSON.parse(document.getElementById('findings-data').textContent).rows.length")
    assert total == 400 and len(row_values(browser, "case_id")) == total
    case_id = row_values(browser, "case_id")[57]
    browser.type_into("#f-text", case_id)
    shown = row_values(browser, "case_id")
    assert shown and set(shown) == {case_id}
    assert browser.js("document.getElementById('f-count').textContent") == f"显示 {len(shown)} / {total} 条"
    browser.js("{ const t = document.getElementById('f-text'); t.value = ''; t.dispatchEvent(new Event('input')); }")
    assert len(row_values(browser, "case_id")) == total

    browser.choose("#f-severity", "warning")
    warnings_ = browser.js("""JSON.parse(document.getElementById('findings-data').textContent).rows
        .filter(r => r[0] === 'warning').length""")
    assert set(row_values(browser, "severity")) == {"warning"} and len(row_values(browser, "severity")) == warnings_
    browser.choose("#f-city", "榆林")
    assert set(row_values(browser, "city")) == {"榆林"} and set(row_values(browser, "severity")) == {"warning"}

    browser.click('#findings-table th[data-key="case_id"]')
    ids = row_values(browser, "case_id")
    assert ids == sorted(ids) and len(set(ids)) > 1
    assert browser.js("document.querySelector('th[data-key=case_id]').getAttribute('aria-sort')") == "ascending"
    browser.click('#findings-table th[data-key="case_id"]')
    assert row_values(browser, "case_id") == sorted(ids, reverse=True)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.js("document.getElementById('cases').scrollIntoView()")
    browser.screenshot(ARTIFACTS / "report_findings.png")


def test_screenshot_and_print(loaded):
    browser, _ = loaded
    ARTIFACTS.mkdir(exist_ok=True)
    for select in ("#f-severity", "#f-city", "#f-rule"):
        browser.choose(select, "")
    browser.js("window.scrollTo(0, 0)")
    browser.screenshot(ARTIFACTS / "report.png", x=0, y=0, width=1280, height=2400)
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000
    pdf = print_pdf(browser)
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert len(boxes) == len(page_texts(pdf)) > 1
    assert all(abs(float(w) - 595.3) < 1.5 and abs(float(h) - 841.9) < 1.5 for w, h in boxes)  # A4 portrait


# --- the demo report printed and on a narrow screen ---------------------------------------
A4_CONTENT_PX = round((210 - 22) / 25.4 * 96)  # A4 less the @page side margins (11 mm each), in CSS px
NARROW = 420

# Dates, months, date-times and case ids (two letters and ten or more digits) whose text runs over
# more than one line box, in the elements the page shows.
BROKEN_STRINGS = r"""(() => {
  const re = /\d{4}-\d{2}(?:-\d{2}(?: \d{1,2}:\d{2})?)?|[A-Z]{2}\d{10,}/g, out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (!n.parentElement.getClientRects().length) { continue; }
    for (const m of n.data.matchAll(re)) {
      const r = document.createRange();
      r.setStart(n, m.index);
      r.setEnd(n, m.index + m[0].length);
      const tops = new Set([...r.getClientRects()].filter(b => b.width > 0).map(b => Math.round(b.top)));
      if (tops.size > 1) { out.push(m[0] + " in: " + n.data.slice(0, 80)); }
    }
  }
  return out;
})()"""

# Table cells whose content is wider than the cell (a header running into the next column).
OVERFLOWING_CELLS = r"""[...document.querySelectorAll("table th, table td")]
  .filter(c => c.getClientRects().length && c.scrollWidth > c.clientWidth + 1)
  .map(c => c.closest("table").id + ": " + c.textContent.trim().slice(0, 40))"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's report (`audit demo`: 900 cases of three cities) in a browser of its own."""
    exe = require_browser()
    out = tmp_path_factory.mktemp("demo")
    code, output = invoke("demo", "--out", out)
    assert code == 0, output
    b = Browser(exe, tmp_path_factory.mktemp("chromium-demo"))
    b.page("Page.enable")
    open_report(b, out / "report.html")
    yield b
    b.close()


def test_demo_prints_on_few_numbered_pages(demo):
    """The printed demo: at most 22 A4 pages (18 before the process view, which adds a map and a
    variant table per city, about half a page each, for the demo's three cities), each with "第 n 页 / 共 N 页" and the report's title
    in its footer (the @page margin boxes, read back from the PDF's text), the digest per city in
    place of the interactive list, severity badges in their colours without background graphics."""
    pdf = print_pdf(demo)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "demo_report.pdf").write_bytes(pdf)
    pages = [re.sub(r"\s", "", text) for text in page_texts(pdf)]
    assert len(pages) == len(re.findall(rb"/Type\s*/Page\b", pdf))
    assert len(pages) <= 22, f"{len(pages)} pages"
    title = re.sub(r"\s", "", demo.js("document.title"))
    assert title.startswith("帮办代办服务审计报告")
    for n, text in enumerate(pages, 1):
        assert f"第{n}页/共{len(pages)}页" in text, f"page {n} has no page number"
        assert title in text, f"page {n} has no title"
    printed = "".join(pages)
    for city in ("宝鸡", "延安", "榆林"):
        assert f"{city}：" in printed and "最严重的10条" in printed
    assert "显示542/542条" not in printed and "auditfindings--formatxlsx" in printed
    badges = demo.js("""['warning', 'info'].map(s => getComputedStyle(document.querySelector('.sev-' + s))
                        .backgroundColor.match(/\\d+/g).map(Number))""")
    assert {tuple(c) for c in badges} <= fill_colours(pdf)


def test_demo_print_layout_keeps_strings_whole(demo):
    """In print (emulated at the A4 text width): no date, month or case id split over two lines,
    no cell (header or body) whose content runs past its edge."""
    open_report(demo, Path(demo.js("decodeURI(location.pathname)")), width=A4_CONTENT_PX)
    demo.page("Emulation.setEmulatedMedia", media="print")
    try:
        assert demo.js("getComputedStyle(document.getElementById('findings-digest')).display") == "block"
        assert not demo.js(BROKEN_STRINGS)
        assert not demo.js(OVERFLOWING_CELLS)
    finally:
        demo.page("Emulation.setEmulatedMedia", media="")


def test_demo_at_420px(demo):
    """At 420 px the page never scrolls sideways: a wider table scrolls in its own box; chart text
    is drawn at 9 px or more (matplotlib draws text as paths scaled by font size / 100, so a glyph
    group's size on screen is 100 × its screen transform's scale)."""
    open_report(demo, Path(demo.js("decodeURI(location.pathname)")), width=NARROW)
    try:
        assert demo.js("document.documentElement.scrollWidth") <= NARROW
        tables = demo.js("""[...document.querySelectorAll('table')].filter(t => t.getClientRects().length).map(t => ({
            id: t.id, right: t.getBoundingClientRect().right, wide: t.scrollWidth > t.clientWidth,
            scrolls: ['auto', 'scroll'].includes(getComputedStyle(t).overflowX)
                     || ['auto', 'scroll'].includes(getComputedStyle(t.parentElement).overflowX)}))""")
        assert tables and all(t["right"] <= NARROW for t in tables), tables
        assert all(t["scrolls"] for t in tables if t["wide"]), tables
        assert any(t["wide"] for t in tables)  # the case is exercised: some table is wider than the screen
        figures = demo.js("[...document.querySelectorAll('figure')].map(f => f.getBoundingClientRect().right)")
        assert figures and max(figures) <= NARROW
        sizes = demo.js("""[...document.querySelectorAll('svg.chart-svg g[transform*="scale("]')]
            .map(g => Math.abs(g.getScreenCTM().d) * 100)""")
        assert sizes and min(sizes) >= 9, f"chart text {min(sizes):.1f} px"
        assert not demo.js(BROKEN_STRINGS)
        ARTIFACTS.mkdir(exist_ok=True)
        demo.js("document.getElementById('cities').scrollIntoView()")
        demo.screenshot(ARTIFACTS / "demo_420.png")
    finally:
        open_report(demo, Path(demo.js("decodeURI(location.pathname)")))


# Every text of the process maps: its box on screen, its font size there, its kind.
MAP_TEXTS = r"""[...document.querySelectorAll('svg.process-map')].map(svg => ({
  box: (b => [b.width, b.height])(svg.getBoundingClientRect()),
  right: svg.closest('figure').getBoundingClientRect().right,
  texts: [...svg.querySelectorAll('text')].map(t => { const r = t.getBoundingClientRect();
    return {text: t.textContent, label: t.classList.contains('pm-label'), x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
            px: parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a}; })}))"""


def overlapping(texts: list[dict], slack: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes overlap by more than `slack` px both ways."""
    out = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > slack and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > slack:
                out.append((a["text"], b["text"]))
    return out


def test_demo_process_maps_render_without_overlapping_labels(demo):
    """The process view's maps (inline SVG drawn by hand): one per city, drawn with a size, every
    text drawn at 9 px or more, no text on top of another; the same in print at the A4 text width,
    where a map is not scaled down and stays within the page, and on a 420 px screen (it scrolls in its
    figure)."""
    for media, width in (("", 1280), ("", NARROW), ("print", A4_CONTENT_PX)):
        open_report(demo, Path(demo.js("decodeURI(location.pathname)")), width=width)
        demo.page("Emulation.setEmulatedMedia", media=media)
        try:
            maps = demo.js(MAP_TEXTS)
            assert len(maps) == 3
            for m in maps:
                assert m["box"][0] > 100 and m["box"][1] > 100
                assert m["right"] <= width
                texts = [t for t in m["texts"] if t["x1"] > t["x0"] and t["y1"] > t["y0"]]
                assert len(texts) == len(m["texts"]) and sum(t["label"] for t in texts) >= 20
                assert min(t["px"] for t in texts) >= 8.99, media  # 9 px, less layout rounding (1/64 px)
                assert not overlapping(texts), overlapping(texts)
        finally:
            demo.page("Emulation.setEmulatedMedia", media="")
    ARTIFACTS.mkdir(exist_ok=True)
    demo.js("document.getElementById('process').scrollIntoView()")
    demo.screenshot(ARTIFACTS / "demo_process.png")


def test_open_vocabulary_maps_render_without_overlapping_labels(browser, tmp_path):
    """The maps of a log with 60 step names and long traces (15 steps and 30 edges drawn per city):
    the same checks as for the demo, on screen and in print."""
    out = tmp_path / "open.html"
    make_report(open_vocabulary_db(tmp_path), out)
    for media, width in (("", 1280), ("print", A4_CONTENT_PX)):
        open_report(browser, out, width=width)
        browser.page("Emulation.setEmulatedMedia", media=media)
        try:
            maps = browser.js(MAP_TEXTS)
            assert len(maps) == 2
            for m in maps:
                texts = m["texts"]
                assert m["box"][0] > 100 and m["right"] <= width and sum(t["label"] for t in texts) >= 20
                assert min(t["px"] for t in texts) >= 8.99 and not overlapping(texts), overlapping(texts)
        finally:
            browser.page("Emulation.setEmulatedMedia", media="")
