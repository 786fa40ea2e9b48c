"""The page (reporting/html.py and templates/): self-contained, readable headers, escaped text, the
drain list's CSV embedded whole. The browser test (tests/pipeline/test_report_browser.py) opens it."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from importlib import resources

import pandas as pd
import pytest

from customer_value.reporting.html import render_html
from customer_value.reporting.sections import drain_frame
from score_frames import minimal_scores, synthetic_scores

THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")


class Page(HTMLParser):
    """What a test needs from the page: header texts per table, first row cells, images, links, scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[str]] = {}
        self.first_cells: dict[str, list[str]] = {}
        self.sources: list[str] = []
        self.links: list[dict[str, str]] = []
        self.scripts: dict[str, str] = {}
        self.sections: list[str] = []
        self._table: str | None = None
        self._where: str | None = None
        self._rows = 0
        self._text: list[str] | None = None
        self._script: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id", ""))
        elif tag == "table":
            self._table, self._rows = a["id"], 0
            self.tables[self._table], self.first_cells[self._table] = [], []
        elif tag in ("thead", "tbody", "tfoot"):
            self._where = tag
        elif tag == "tr" and self._where == "tbody":
            self._rows += 1
        elif tag in ("th", "td"):
            self._text = []
        elif tag == "img":
            self.sources.append(a.get("src", ""))
        elif tag == "a":
            self.links.append(a)
        elif tag == "script":
            self._script = a.get("id", "")
            self._text = []
        for name in ("src", "href"):
            if name in a and tag not in ("img", "a"):
                self.sources.append(a[name])

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "th" and self._table:
            self.tables[self._table].append("".join(self._text).strip())
            self._text = None
        elif tag == "td" and self._table:
            if self._where == "tbody" and self._rows == 1:
                self.first_cells[self._table].append("".join(self._text).strip())
            self._text = None
        elif tag == "table":
            self._table = None
        elif tag == "script":
            self.scripts[self._script] = "".join(self._text)
            self._text, self._script = None, None


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return synthetic_scores(300, seed=11)


@pytest.fixture(scope="module")
def page(scores) -> tuple[str, Page]:
    text = render_html(scores, "Customer value as of 2024-07-01", pd.Series({365: 123456.0, 1095: 234567.0}),
                       quality={"churn.valid.roc_auc": 0.8}, drift={"customer_value": 0.02}, currency="EUR")
    return text, Page(text)


def test_the_template_ships_as_package_data():
    templates = resources.files("customer_value.reporting") / "templates"
    for name in ("report.html.j2", "report.css", "report.js"):
        assert (templates / name).is_file(), name


def test_the_page_loads_nothing_from_anywhere(page):
    text, parsed = page
    assert parsed.sources and all(s.startswith("data:image/png;base64,") for s in parsed.sources)
    for source in parsed.sources:
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG")
    assert all(link.get("href", "").startswith("#") for link in parsed.links)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)
    assert "<link" not in text and "@import" not in text


def test_headers_are_words_without_an_index_column(page):
    _, parsed = page
    assert parsed.tables
    for key, headers in parsed.tables.items():
        assert headers and all(h and "_" not in h for h in headers), (key, headers)
        assert len(headers) == len(parsed.first_cells[key]) or not parsed.first_cells[key], key  # no extra column
    assert parsed.tables["table-by-value-segment"][0] == "Value segment"
    assert parsed.tables["table-by-acquisition-channel"][0] == "Channel"
    assert parsed.tables["table-drain-list"][:2] == ["Customer", "Customer value"]


def test_numbers_read_with_separators_and_the_currency(page, scores):
    text, parsed = page
    revenue = scores["expected_revenue"].sum()
    assert f"€{revenue:,.0f}" in text
    assert THOUSANDS.search(text)
    assert parsed.first_cells["table-by-value-segment"][0] == "top"
    assert all(c.startswith(("€", "\u2212€")) for c in parsed.first_cells["table-drain-list"][1:2])


def test_the_drain_csv_is_embedded_whole(page, scores):
    _, parsed = page
    csv = json.loads(parsed.scripts["drains-csv-data"])
    frame = pd.read_csv(io.StringIO(csv))
    assert frame["customer_id"].tolist() == drain_frame(scores)["customer_id"].tolist()
    link = next(a for a in parsed.links if a.get("id") == "drains-csv")
    assert link["download"] == "drain_list_2024-07-01.csv"


def test_text_from_the_data_is_escaped():
    scores = synthetic_scores(60, seed=2)
    scores.loc[scores.index[0], ["customer_id", "plan"]] = ["</script><b>x</b>", "<img src=x onerror=alert(1)>"]
    scores.loc[scores.index[0], ["customer_value", "drain_flag"]] = [-50.0, True]
    text = render_html(scores, "<Title & more>")
    assert "<b>x</b>" not in text and "<img src=x" not in text
    assert "&lt;Title &amp; more&gt;" in text
    csv = json.loads(Page(text).scripts["drains-csv-data"])
    assert "</script><b>x</b>" in csv  # the data survives, the page does not break


def test_the_contract_minimum_renders():
    text = render_html(minimal_scores(), "minimal")
    parsed = Page(text)
    assert parsed.sections == ["definitions", "segments", "drains", "value-map", "referrals"]
    assert len(parsed.sources) == 2


def test_the_value_of_a_referred_customer_shows_with_its_interval():
    from customer_value.valuation.referrals import ReferralModel

    model = ReferralModel.from_legacy(0.001, 312.4, "mean trailing net value of 57 referred customers")
    model.referred_customer_value_interval_ = (280.1, 344.7)
    text = render_html(synthetic_scores(60, seed=2), "t", currency="USD", referral=model)
    assert "Value of a referred customer" in text and "95% interval: $280.10 to $344.70" in text
    assert "mean trailing net value of 57 referred customers" in text
    assert "Value of a referred customer" not in render_html(synthetic_scores(60, seed=2), "t")
