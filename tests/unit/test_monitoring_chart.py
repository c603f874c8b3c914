"""The daily monitoring chart: one bar per day, a clearance point where lists were released."""

from __future__ import annotations

from datetime import date, timedelta

from lxml import etree

from gateway.services.monitoring import Day
from gateway.web.charts import volume_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_the_chart_is_valid_svg_with_a_bar_per_day_and_escaped_titles():
    first = date(2026, 11, 18)
    days = [
        Day(first + timedelta(days=i), i, i % 2, i, 0, 10.0 * i if i else None) for i in range(14)
    ]
    root = etree.fromstring(str(volume_chart(days)).encode())
    assert root.tag == f"{SVG}svg"
    assert len(root.findall(f".//{SVG}rect[@class='import']")) == 14 + 1  # + the legend
    assert len(root.findall(f".//{SVG}circle")) == 13
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert titles[3] == "2026-11-21: 3 import, 1 export, 3 released, median clearance 30s"


def test_an_empty_fortnight_still_draws():
    days = [Day(date(2026, 11, 1) + timedelta(days=i), 0, 0, 0, 0, None) for i in range(14)]
    root = etree.fromstring(str(volume_chart(days)).encode())
    assert root.find(f".//{SVG}polyline") is None
