"""The live player in a real headless Chromium: open a session on a corpus video, play 30 s of
it at 8x, see the viewers' comments fly, the bot's comments come back highlighted and the
facts they used listed in the knowledge panel; without a model the viewers' comments still
play and the page says why there is no bot."""

from __future__ import annotations

import json

import pytest

from tests.api.cdp import Browser

pytestmark = pytest.mark.browser

PLAYED_S = 30
SPEED = 8


def js(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def choose(browser: Browser, server: str, vid: str, start_s: int) -> None:
    """Load the player on ``vid`` with its comments, at 8x, the timeline at ``start_s``."""
    browser.goto(f"{server}/player#video={vid}")
    browser.wait_for(
        f"document.querySelector('#video-select')?.value === {js(vid)}"
        " && document.querySelector('#session-status')?.textContent.includes('to replay')"
    )
    browser.evaluate(
        f"""(() => {{
            const speed = document.querySelector('#speed');
            speed.value = {js(str(SPEED))};
            speed.dispatchEvent(new Event('change'));
            const seek = document.querySelector('#seek');
            seek.value = {js(str(start_s))};
            seek.dispatchEvent(new Event('change'));
        }})()"""
    )
    assert browser.evaluate("document.querySelector('#stage').dataset.t") == str(start_s)


def play_until(browser: Browser, end_s: int) -> None:
    browser.evaluate("document.querySelector('#play-btn').click()")
    browser.wait_for("document.querySelector('#stage').dataset.playing === 'true'")
    browser.wait_for(f"Number(document.querySelector('#stage').dataset.t) >= {end_s}", timeout=30)
    browser.evaluate("document.querySelector('#play-btn').click()")
    browser.wait_for("document.querySelector('#stage').dataset.playing === 'false'")


def test_play_30_s_at_8x_and_see_the_bot_comments_with_their_facts(
    browser, trained_server, window_with_facts, tmp_path
):
    vid, t, _ = window_with_facts
    start = t - 10
    choose(browser, trained_server, vid, start)
    play_until(browser, start + PLAYED_S)
    status = browser.evaluate("document.querySelector('#session-status').textContent")
    assert status.startswith("session ") and vid in status
    flown = browser.evaluate("Number(document.querySelector('#stage').dataset.flownViewer)")
    assert flown > 0, "the viewers' comments flew across the stage"
    seqs = browser.wait_for(
        "document.querySelectorAll('#bot-history li').length"
        " && [...document.querySelectorAll('#bot-history li')].map(li => li.dataset.seq)"
    )
    assert browser.evaluate("document.querySelectorAll('#lanes .danmaku.bot .badge').length") > 0
    # the latest bot comment is shown with the facts it used
    detail = browser.wait_for(
        "!document.querySelector('#bot-detail').hidden"
        " && document.querySelector('#bot-detail').dataset.seq"
    )
    assert detail == seqs[0]
    heads = browser.evaluate(
        "[...document.querySelectorAll('#bot-facts tbody tr.fact')].map(r => r.dataset.head)"
    )
    assert heads, "the bot comment's facts are listed"
    meta = browser.evaluate("document.querySelector('#bot-meta').textContent")
    assert " ms" in meta and "score" in meta
    browser.screenshot(tmp_path / "player.png")
    # the stats arrive from the server
    browser.wait_for("document.querySelector('#stat-received').textContent !== '–'", timeout=5)
    assert not [m for m in browser.console if m.startswith("uncaught")], browser.console


def test_without_a_model_the_viewers_still_play(browser, live_server, window_with_facts, tmp_path):
    vid, t, _ = window_with_facts
    choose(browser, live_server, vid, t - 5)
    play_until(browser, t + 5)
    browser.screenshot(tmp_path / "player-no-model.png")
    status = browser.evaluate("document.querySelector('#session-status').textContent")
    assert "no session" in status and "4503" in status
    assert browser.evaluate("Number(document.querySelector('#stage').dataset.flownViewer)") > 0
    assert browser.evaluate("document.querySelectorAll('#bot-history li').length") == 0
