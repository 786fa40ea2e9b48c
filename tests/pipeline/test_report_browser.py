"""The scoring report opened in a real headless Chromium, offline, from file:// (issue 15, part 2).

A realistic page: the session's trained model scores the small world (``pipeline.score``), the
optional columns it does not produce yet are added (tests/score_frames.py), the horizon totals and
the monthly cash flows come from the same model, the model quality from its training run and the
drift from the score file against a shifted copy of itself. Chromium is Debian's
(``make chromium``), driven by Playwright without ``playwright install``.
"""

from __future__ import annotations

import io
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customer_value.pipeline.report import write_html_report
from customer_value.valuation.drivers import drain_list
from pipeline_helpers import AS_OF
from score_frames import minimal_scores, with_optional_columns

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ["segments", "groups", "costs", "drains", "value-map", "horizons", "cash-flows", "referrals", "intervals",
            "quality", "drift"]
THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")
TITLE = f"Customer value as of {AS_OF}"


@dataclass
class Opened:
    page: object
    scores: pd.DataFrame
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def report(trained_store, small_world, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The page for the session model's scores, with every input the report takes."""
    import mlflow

    from customer_value.data.loading import load_tables
    from customer_value.evaluation.drift import decile_profile, psi_against_profile
    from customer_value.features import build_features
    from customer_value.pipeline.score import score
    from customer_value.tracking.model import load_model

    out = tmp_path_factory.mktemp("report-browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained_store.tracking_uri)
        mp.setenv("CUSTOMER_VALUE_HOME", str(trained_store.home))
        mlflow.set_tracking_uri(trained_store.tracking_uri)
        model_uri = f"models:/{trained_store.name}@champion"
        scored = score(small_world, AS_OF, model_uri, out / "scores.parquet", log_run=False,
                       cashflows=out / "cashflows.parquet")
        scores, cash_flows = scored.scores, scored.cash_flows
        loaded = load_model(model_uri)
        features = build_features(load_tables(small_world, loaded.settings).tables, AS_OF, loaded.settings)
        horizon_totals = loaded.value_model.total_value_by_horizon(features, (182, 365, 730, 1095))
        runs = mlflow.search_runs(experiment_names=["pipeline-tests"],
                                  filter_string="tags.`customer_value.run_type` = 'train'")
    quality = {k.removeprefix("metrics."): v for k, v in sorted(runs.iloc[0].items())
               if k.startswith("metrics.") and (".valid." in k or k.startswith("metrics.backtest.")) and pd.notna(v)}
    assert quality, "the training run logged no validation metrics"
    shifted = scores.assign(customer_value=scores["customer_value"] * 1.5 + 20)
    drift = psi_against_profile(decile_profile(shifted), scores)
    scores = with_optional_columns(scores)
    path = write_html_report(scores, out / "report.html", TITLE, horizon_totals, quality=quality, drift=drift,
                             currency="USD", cash_flows=cash_flows)
    return path, scores


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium and chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _open(browser, path: Path, scores: pd.DataFrame) -> Opened:
    context = browser.new_context(offline=True, accept_downloads=True, viewport={"width": 1280, "height": 900})
    opened = Opened(context.new_page(), scores)

    def refuse(route):  # nothing may leave the file: every request that is not the page itself fails
        opened.requests.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!file:|data:|blob:).*"), refuse)
    opened.page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    opened.page.on("pageerror", lambda e: opened.errors.append(str(e)))
    opened.page.goto(path.resolve().as_uri(), wait_until="load")
    return opened


@pytest.fixture(scope="module")
def opened(browser, report) -> Opened:
    path, scores = report
    return _open(browser, path, scores)


def _clean(opened: Opened) -> None:
    assert not opened.errors, opened.errors
    assert not opened.requests, f"the page asked the network for {opened.requests}"


def test_headline_and_definitions(opened):
    page, scores = opened.page, opened.scores
    assert page.title() == TITLE
    assert page.locator("h1").inner_text() == TITLE
    context = page.locator("#headline .context").inner_text()
    for expected in ("365 days", "USD", str(AS_OF), scores["model_uri"].iloc[0], scores["model_version"].iloc[0],
                     "champion"):
        assert expected in context, (expected, context)
    facts = dict(zip(page.locator("#headline .fact .label").all_inner_texts(),
                     page.locator("#headline .fact .figure-number").all_inner_texts()))
    assert facts["Customers scored"] == f"{len(scores):,}"
    assert re.fullmatch(r"\$\d{1,3}(,\d{3})+", facts["Expected revenue"]), facts
    terms = page.locator("#definitions dt").all_inner_texts()
    for term in ("Customer value", "Margin", "Cost-to-serve", "Referral value", "Discounted", "Undiscounted"):
        assert term in terms
    assert page.locator("#definitions").is_visible()
    _clean(opened)


def test_every_section_renders_with_readable_tables(opened):
    page = opened.page
    assert page.eval_on_selector_all("section.report-section", "s => s.map(x => x.id)") == SECTIONS
    for key in SECTIONS:
        assert page.locator(f"#{key} h2").is_visible(), key
    headers = page.eval_on_selector_all("table.sortable th", "hs => hs.map(h => h.textContent.trim())")
    assert headers and not [h for h in headers if "_" in h or not h]
    # numbers read with thousands separators, money with its currency
    revenue = page.eval_on_selector_all("#table-drain-list tbody tr",
                                        "rs => rs.map(r => r.cells[6].textContent)")
    assert revenue and all(re.fullmatch(r"\$\d{1,3}(,\d{3})*\.\d\d", v) for v in revenue), revenue[:5]
    body = page.locator("body").inner_text()
    assert len(THOUSANDS.findall(body)) > 20
    _clean(opened)


def test_no_broken_images(opened):
    images = opened.page.eval_on_selector_all(
        "img", "is => is.map(i => [i.dataset.name, i.complete, i.naturalWidth, i.src.slice(0, 22)])")
    assert len(images) >= 8
    for name, complete, width, source in images:
        assert complete and width > 0, name
        assert source == "data:image/png;base64,", name
    _clean(opened)


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"{table} tbody tr", f"rs => rs.map(r => r.cells[{index}].getAttribute('data-sort'))")


def test_clicking_a_header_sorts_the_rows(opened):
    page = opened.page
    table = "#table-drain-list"
    headers = page.eval_on_selector_all(f"{table} th", "hs => hs.map(h => h.textContent.trim())")
    index = headers.index("Customer value")
    before = [float(v) for v in _column(page, table, index)]
    assert len(before) > 2 and before != sorted(before), "the list comes most likely first, not by value"
    header = page.locator(f"{table} th").nth(index)
    header.click()
    ascending = [float(v) for v in _column(page, table, index)]
    assert ascending == sorted(before)
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert [float(v) for v in _column(page, table, index)] == sorted(before, reverse=True)
    # text columns sort as text, and the totals row of a matrix stays at the bottom
    page.locator("#table-matrix-customers th").first.click()
    labels = page.eval_on_selector_all("#table-matrix-customers tbody tr", "rs => rs.map(r => r.cells[0].textContent)")
    assert labels == sorted(labels, key=str.lower)
    assert page.locator("#table-matrix-customers tfoot td").first.inner_text() == "All"
    _clean(opened)


def test_the_csv_link_holds_every_customer_on_the_drain_list(opened):
    page, scores = opened.page, opened.scores
    expected = drain_list(scores)
    assert len(expected), "the small world has no drains: the test would prove nothing"
    link = page.locator("#drains-csv")
    href = link.get_attribute("href")
    assert href.startswith("data:text/csv;charset=utf-8,")
    listed = pd.read_csv(io.StringIO(urllib.parse.unquote(href.split(",", 1)[1])))
    assert listed["customer_id"].tolist() == expected["customer_id"].tolist()
    assert ((expected["customer_value"] < 0) | expected["drain_flag"]).all()
    # money to the cent: a drain worth −0.004 reads −0.00, so compare with the score file's own figures
    np.testing.assert_allclose(listed["customer_value"], expected["customer_value"].round(2), rtol=0, atol=1e-9)
    with page.expect_download() as download:
        link.click()
    saved = pd.read_csv(download.value.path())
    assert download.value.suggested_filename == f"drain_list_{AS_OF}.csv"
    assert saved["customer_id"].tolist() == expected["customer_id"].tolist()
    _clean(opened)


def test_a_score_file_with_only_the_contract_columns_opens_cleanly(browser, tmp_path):
    scores = minimal_scores()
    path = write_html_report(scores, tmp_path / "minimal.html", "Minimal")
    opened = _open(browser, path, scores)
    page = opened.page
    assert page.eval_on_selector_all("section.report-section", "s => s.map(x => x.id)") == [
        "segments", "drains", "value-map", "referrals"]
    assert all(w > 0 for w in page.eval_on_selector_all("img", "is => is.map(i => i.naturalWidth)"))
    page.locator("#table-by-value-segment th").nth(1).click()
    _clean(opened)
    page.context.close()


README_SCREENSHOT = "CUSTOMER_VALUE_README_SCREENSHOT"
"""Set to a path (e.g. docs/report.png) to also write the README's screenshot from this test's page."""


def screenshot(page, path: Path) -> Path:
    """A full-page PNG of the opened report (the README's picture comes from here too)."""
    page.screenshot(path=str(path), full_page=True)
    return path


def readme_picture(full_page: Path, path: Path, height: int = 1500, colours: int = 96) -> Path:
    """The top of the page, palette-quantised so the committed PNG stays under 300 kB."""
    from PIL import Image

    with Image.open(full_page) as image:
        top = image.crop((0, 0, image.width, min(height, image.height))).convert("RGB")
        top.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def test_a_full_page_screenshot_is_written(opened, tmp_path):
    import os

    _clean(opened)
    path = screenshot(opened.page, tmp_path / "report.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from PIL import Image

    with Image.open(path) as image:
        assert image.width >= 1280 and image.height > 900  # the whole page, not the viewport
    picture = readme_picture(path, tmp_path / "readme.png")
    assert picture.stat().st_size < 300_000
    if os.environ.get(README_SCREENSHOT):
        Path(os.environ[README_SCREENSHOT]).write_bytes(picture.read_bytes())
