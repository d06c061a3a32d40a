"""The microback-only scenarios of ``inprocess.py`` measure what they say they measure.

The fortunes pair shows what rendering the page from its Jinja2 template costs against the
page built by hand: both must be TechEmpower's page (``prepare`` refuses anything else), and
they must differ only in how the HTML was made.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import inprocess


def test_the_fortunes_pair_answers_the_same_page_two_ways(tmp_path: Path) -> None:
    apps = inprocess.microback_only_apps(tmp_path)
    pages = {}
    for scenario in (inprocess.FORTUNES_TEMPLATE, inprocess.FORTUNES_BY_HAND):
        environ = inprocess.prepare("microback", apps[scenario], scenario)
        _, _, pages[scenario] = inprocess.call(apps[scenario], environ)

    template, by_hand = (
        pages[s] for s in (inprocess.FORTUNES_TEMPLATE, inprocess.FORTUNES_BY_HAND)
    )
    assert template != by_hand  # line breaks, and &#39; where html.escape writes &#x27;

    def shown(page: bytes) -> str:  # what a browser shows, spacing aside
        return html.unescape(re.sub(r"\s+", "", page.decode()))

    assert shown(template) == shown(by_hand)


def test_the_signed_in_scenario_recognises_its_user(tmp_path: Path) -> None:
    app = inprocess.microback_only_apps(tmp_path)[inprocess.SIGNED_IN]

    environ = inprocess.prepare("microback", app, inprocess.SIGNED_IN)

    assert "session=" in environ["HTTP_COOKIE"]
