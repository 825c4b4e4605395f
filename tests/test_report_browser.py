"""The HTML report in a real browser (issue 16): headless Chromium renders report.html at a 1,280 px window and
with its print rules at the width of an A4 page's printable area, and prints it to PDF. Nothing may reach past
the page or hide behind a scrollbar, and no text may be set under 10 pt (13.33 CSS px). A probe script added
to a copy of the page measures the layout and writes its findings into the DOM, which Chromium dumps.

Skipped, saying so, where no Chromium is installed (the distribution's ``chromium`` package provides one).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infersim.cli import main
from infersim.report.memo import A4_PRINTABLE_PX
from test_report import SCENARIO

pytestmark = pytest.mark.slow

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(n)), None)
MIN_FONT_PX = 10 * 96 / 72  # 10 pt

PROBE = """<script>window.addEventListener('load', function () {
 var W = document.documentElement.clientWidth, bad = [], small = [];
 var all = document.querySelectorAll('body *');
 for (var i = 0; i < all.length; i++) {
   var el = all[i], cs = getComputedStyle(el), r = el.getBoundingClientRect();
   if (el.scrollWidth > el.clientWidth + 1 && ['auto', 'hidden', 'scroll', 'clip'].indexOf(cs.overflowX) >= 0)
     bad.push('hidden overflow: ' + el.tagName + ' ' + el.scrollWidth + ' > ' + el.clientWidth);
   if (r.right > W + 1) bad.push('past the page: ' + el.tagName + ' right edge ' + Math.round(r.right) + ' > ' + W);
   for (var c = el.firstChild; c; c = c.nextSibling)
     if (c.nodeType == 3 && c.textContent.trim() && parseFloat(cs.fontSize) < %(min)s) {
       small.push(el.tagName + ' ' + cs.fontSize + ': ' + c.textContent.trim().slice(0, 40)); break; }
 }
 var pre = document.createElement('pre'); pre.id = 'probe-result';
 pre.textContent = JSON.stringify({width: W, scroll: document.documentElement.scrollWidth, bad: bad.slice(0, 20),
                                   small: small.slice(0, 20)});
 document.body.appendChild(pre);
});</script>""" % {"min": f"{MIN_FONT_PX - 0.01:.2f}"}  # noqa: UP031 (the JS braces would need doubling)


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=180)


def probe(page: Path, width: int, print_rules: bool, tmp: Path) -> dict:
    text = page.read_text()
    if print_rules:  # the print stylesheet on screen, at the printable width of A4
        text = text.replace("@media print", "@media all")
    text = text.replace("</body>", PROBE + "</body>")
    copy = tmp / f"probe-{width}-{int(print_rules)}.html"
    copy.write_text(text)
    r = chromium(f"--window-size={width},1000", "--virtual-time-budget=10000", "--dump-dom", copy.as_uri())
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', r.stdout, re.S)
    assert m, f"the probe did not run in Chromium: {r.stderr[-1500:]}"
    return json.loads(html.unescape(m.group(1)))


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium): the browser layout checks of the HTML "
                    "report are skipped")
    d = tmp_path_factory.mktemp("browser")
    (d / "tiny.yaml").write_text(SCENARIO)
    assert main(["run", str(d / "tiny.yaml"), "--out", str(d / "run"), "--quiet"]) == 0
    assert main(["report", str(d / "run")]) == 0
    return {"run": d / "run" / "report.html"}


@pytest.mark.parametrize("width,print_rules", [(1280, False), (A4_PRINTABLE_PX, True)])
def test_run_report_fits_the_page(pages, tmp_path, width, print_rules):
    res = probe(pages["run"], width, print_rules, tmp_path)
    assert res["scroll"] <= res["width"], res
    assert not res["bad"], res["bad"]
    assert not res["small"], res["small"]


def test_run_report_prints_to_a4_and_screenshots(pages, tmp_path):
    pdf, png = tmp_path / "report.pdf", tmp_path / "report.png"
    r = chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", pages["run"].as_uri())
    assert pdf.exists() and pdf.stat().st_size > 10_000, r.stderr[-1500:]
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes())
    assert boxes, "no page in the PDF"
    for w, h in boxes:  # A4 is 595 x 842 pt
        assert abs(float(w) - 595) < 2 and abs(float(h) - 842) < 2, (w, h)
    r = chromium("--window-size=1280,2000", f"--screenshot={png}", pages["run"].as_uri())
    assert png.exists() and png.stat().st_size > 10_000, r.stderr[-1500:]
