"""The web inspector in a real headless Chromium (Debian's ``chromium``; ``.ci/run`` installs
it): load the page, choose a video, move to a time, see the recalled facts appear; open an
entity from a fact and see its facts and neighbours; ask for generation without a model."""

from __future__ import annotations

import json

import pytest

from tests.api.cdp import Browser

pytestmark = pytest.mark.browser


def js(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def open_window(browser: Browser, server: str, vid: str, t: int) -> list[str]:
    """Load the page, choose ``vid``, move the timeline to ``t``; the heads of the facts shown
    once the window's recall has arrived."""
    browser.goto(f"{server}/")
    options = "[...document.querySelectorAll('#video-select option')].map(o => o.value)"
    browser.wait_for(f"{options}.includes({js(vid)})")
    browser.evaluate(
        f"""(() => {{
            const select = document.querySelector('#video-select');
            select.value = {js(vid)};
            select.dispatchEvent(new Event('change'));
        }})()"""
    )
    browser.wait_for(f"location.hash.includes({js('video=' + vid)})")
    clock = f"{t // 60}:{t % 60:02d}"
    browser.evaluate(
        f"""(() => {{
            const slider = document.querySelector('#t-slider');
            slider.value = {js(str(t))};
            slider.dispatchEvent(new Event('input'));
        }})()"""
    )
    return browser.wait_for(
        f"""location.hash.endsWith({js(f"&t={t}")})
            && document.querySelector('#recall-status').textContent.endsWith({js(f" at {clock}")})
            && [...document.querySelectorAll('#facts tbody tr.fact')].map(r => r.dataset.head)"""
    )


def test_choose_a_video_move_to_a_time_see_facts(
    browser, live_server, window_with_facts, client, tmp_path
):
    vid, t, answer = window_with_facts
    heads = open_window(browser, live_server, vid, t)
    assert heads == [f["head"] for f in answer["facts"]]
    shown = browser.evaluate(
        "[...document.querySelectorAll('#other-comments li')].map(li => li.firstChild.textContent)"
    )
    assert shown == [c["text"] for c in answer["comments"]]
    window = browser.evaluate(
        "[...document.querySelectorAll('#window-comments li')].map(li => li.className)"
    )
    around = client.get(f"/videos/{vid}/comments", params={"start": t - 5, "end": t + 6}).json()
    assert len(window) == len(around["items"]) > 0
    at_t = [c for c in around["items"] if int(c["time_s"]) == t]
    assert window.count("target") == len(at_t), "the comments at t are marked as the targets"
    browser.screenshot(tmp_path / "inspector.png")
    assert not [m for m in browser.console if m.startswith("uncaught")], browser.console


def test_entity_panel_from_a_fact(browser, live_server, window_with_facts):
    vid, t, answer = window_with_facts
    open_window(browser, live_server, vid, t)
    head = answer["facts"][0]["head"]
    browser.evaluate("document.querySelector('#facts tbody tr.fact a.entity-link').click()")
    browser.wait_for(
        f"document.querySelector('#entity-name').textContent === {js(head)}"
        " && document.querySelectorAll('#entity-facts tbody tr').length > 0"
    )
    neighbours = browser.wait_for(
        "document.querySelectorAll('#entity-neighbors li.neighbor').length"
    )
    browser.evaluate(
        """(() => { const hops = document.querySelector('#hops');
                    hops.value = '2'; hops.dispatchEvent(new Event('change')); })()"""
    )
    more = browser.wait_for(
        f"document.querySelectorAll('#entity-neighbors li.neighbor').length > {neighbours}"
        " && document.querySelectorAll('#entity-neighbors li.neighbor').length"
    )
    assert more > neighbours


def test_generate_without_a_model_says_why(browser, live_server):
    browser.evaluate("document.querySelector('#generate-btn').click()")
    status = browser.wait_for(
        "document.querySelector('#generate-status').classList.contains('error')"
        " && document.querySelector('#generate-status').textContent"
    )
    assert "503" in status and "no model" in status
