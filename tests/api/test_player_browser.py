"""The live player (``/player``) in a real headless Chromium against the real ``/live``
endpoint and a checkpoint trained for one step: open a session on a corpus video, play 30 s
of it at 8x, see the viewers' comments fly, the bot's comments come back highlighted and the
facts they used listed in the knowledge panel, over the WebSocket and over POSTs and
Server-Sent Events. Also: an ad hoc session answering a typed comment, a local video file as
the clock, the API key over both transports, and, without a model, the viewers' comments
still playing while the page says why there is no bot. The assertions are about the wiring,
not about what an untrained model says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.api.cdp import Browser
from tests.api.conftest import serve_in_thread

pytestmark = pytest.mark.browser

PLAYED_S = 30
SPEED = 8


@pytest.fixture(autouse=True)
def leave_the_page(browser):
    """Each test ends with its session stopped (no event stream holds a server that is
    shutting down) and on a blank page."""
    yield
    stop(browser)
    browser.goto("about:blank")


def stop(browser: Browser) -> None:
    """Press Stop, if a session is open, and wait for the server to end it."""
    if browser.evaluate("document.querySelector('#stop-btn')?.disabled === false"):
        browser.evaluate("document.querySelector('#stop-btn').click()")
        status = browser.wait_for(
            "document.querySelector('#session-status').textContent.startsWith('session ended')"
            " && document.querySelector('#session-status').textContent"
        )
        assert status.startswith("session ended: 1000"), status


def js(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def choose(browser: Browser, server: str, vid: str, start_s: int, via: str = "auto") -> None:
    """Load the player on ``vid`` with its comments, at 8x, the timeline at ``start_s``, the
    session to go ``via`` a transport (auto, ws, sse)."""
    browser.goto("about:blank")  # the same URL again would only move to its #fragment
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
            document.querySelector('#transport').value = {js(via)};
        }})()"""
    )
    assert browser.evaluate("document.querySelector('#stage').dataset.t") == str(start_s)


def play_until(browser: Browser, end_s: int) -> None:
    # as a user's click, so that a <video> may start with its sound on
    browser.call(
        "Runtime.evaluate",
        session=True,
        expression="document.querySelector('#play-btn').click()",
        userGesture=True,
    )
    browser.wait_for("document.querySelector('#stage').dataset.playing === 'true'")
    browser.wait_for(f"Number(document.querySelector('#stage').dataset.t) >= {end_s}", timeout=30)
    browser.evaluate("document.querySelector('#play-btn').click()")
    browser.wait_for("document.querySelector('#stage').dataset.playing === 'false'")


@pytest.mark.parametrize("via", ["ws", "sse"])
def test_play_30_s_at_8x_and_see_the_bot_comments_with_their_facts(
    browser, trained_server, window_with_facts, tmp_path, via
):
    vid, t, _ = window_with_facts
    start = t - 10
    choose(browser, trained_server, vid, start, via)
    play_until(browser, start + PLAYED_S)
    status = browser.evaluate("document.querySelector('#session-status').textContent")
    assert status.startswith("session ") and vid in status
    assert browser.evaluate("document.querySelector('#session-status').dataset.transport") == via
    flown = browser.evaluate("Number(document.querySelector('#stage').dataset.flownViewer)")
    assert flown > 0, "the viewers' comments flew across the stage"
    # the latest bot comment is shown, with the facts it used (read at one moment: more may
    # still be arriving from generations that were running when playback paused)
    shown = browser.wait_for(
        """(() => {
            const detail = document.querySelector('#bot-detail');
            const items = [...document.querySelectorAll('#bot-history li')];
            return items.length > 0 && !detail.hidden && {
                seqs: items.map(li => li.dataset.seq),
                seq: detail.dataset.seq,
                rows: [...document.querySelectorAll('#bot-facts tbody tr.fact')]
                    .map(r => [...r.cells].slice(0, 3).map(c => c.textContent)),
                sent: state.panel.bots.get(Number(detail.dataset.seq)).facts
                    .map(f => [f.head, f.relation, f.tail]),
                meta: document.querySelector('#bot-meta').textContent,
                badges: document.querySelectorAll('#lanes .danmaku.bot .badge').length,
            };
        })()"""
    )
    seqs = shown["seqs"]
    assert shown["seq"] == seqs[0] == max(seqs, key=int), "the latest, on top of the list"
    assert shown["badges"] > 0, "bot comments fly on the stage, badged"
    assert shown["rows"], "the bot comment's facts are listed"
    assert shown["rows"] == shown["sent"], "as the server sent them"
    assert " ms" in shown["meta"] and "score" in shown["meta"]
    browser.screenshot(tmp_path / "player.png")
    # an earlier one, clicked in the list, is shown instead and stays (no longer the latest)
    if len(seqs) > 1:
        browser.evaluate(
            f"document.querySelector('#bot-history li[data-seq=\"{seqs[-1]}\"]').click()"
        )
        assert browser.evaluate("document.querySelector('#bot-detail').dataset.seq") == seqs[-1]
        assert browser.evaluate("document.querySelector('#follow-latest').checked") is False
    # hovering a bot comment on the stage shows its facts
    hovered = browser.evaluate(
        """(() => { const node = document.querySelector('#lanes .danmaku.bot');
                    node.dispatchEvent(new MouseEvent('mouseenter'));
                    return node.dataset.seq; })()"""
    )
    assert browser.evaluate("document.querySelector('#bot-detail').dataset.seq") == hovered
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


def test_an_ad_hoc_session_answers_a_typed_comment(browser, trained_server):
    """No corpus video: a film named by title, a timeline of the given length, the viewer's
    own comment typed in; the bot answers it."""
    browser.goto("about:blank")
    browser.goto(f"{trained_server}/player")
    browser.wait_for("document.querySelectorAll('#video-select option').length > 1")
    browser.evaluate(
        f"""(() => {{
            const select = document.querySelector('#video-select');
            select.value = '';
            select.dispatchEvent(new Event('change'));
            document.querySelector('#title-input').value = {js("阿甘正传")};
            const duration = document.querySelector('#duration-input');
            duration.value = '120';
            duration.dispatchEvent(new Event('change'));
            const speed = document.querySelector('#speed');
            speed.value = {js(str(SPEED))};
            speed.dispatchEvent(new Event('change'));
        }})()"""
    )
    browser.wait_for("document.querySelector('#clock').textContent.endsWith('/ 2:00')")
    browser.evaluate("document.querySelector('#open-btn').click()")
    status = browser.wait_for(
        "document.querySelector('#say-input').disabled === false"
        " && document.querySelector('#session-status').textContent"
    )
    assert "ad hoc" in status and "阿甘正传" in status and "2:00" in status
    play_until(browser, 20)
    browser.evaluate(
        f"""(() => {{
            document.querySelector('#say-input').value = {js("阿甘跑得真快，汤姆·汉克斯演得好")};
            document.querySelector('#say-btn').click();
        }})()"""
    )
    assert browser.evaluate("document.querySelector('#say-input').value") == ""
    assert browser.evaluate("document.querySelectorAll('#lanes .danmaku.mine').length") == 1
    text = browser.wait_for("document.querySelector('#bot-history li')?.textContent")
    assert text.startswith("0:2"), "the bot comment is for the second after the position"


def write_webm(path: Path, seconds: int, fps: int = 2) -> Path:
    """A tiny silent VP8 video of ``seconds`` (its frames grow lighter)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for i in range(seconds * fps):
            image = np.full((36, 64, 3), i * 255 // (seconds * fps), np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_a_local_video_file_drives_the_clock(browser, trained_server, window_with_facts, tmp_path):
    vid, t, _ = window_with_facts
    start, end = t - 10, t + 10
    video = write_webm(tmp_path / "film.webm", end + 5)
    browser.goto("about:blank")
    browser.goto(f"{trained_server}/player#video={vid}")
    browser.wait_for("document.querySelector('#session-status')?.textContent.includes('to replay')")
    root = browser.call("DOM.getDocument", session=True)["root"]["nodeId"]
    node = browser.call("DOM.querySelector", session=True, nodeId=root, selector="#file-input")
    browser.call("DOM.setFileInputFiles", session=True, files=[str(video)], **node)
    browser.wait_for(
        "document.querySelector('#stage').dataset.clock === 'video'"
        " && !document.querySelector('#video').hidden"
    )
    choose_speed_and_start = f"""(() => {{
        const speed = document.querySelector('#speed');
        speed.value = {js(str(SPEED))};
        speed.dispatchEvent(new Event('change'));
        const seek = document.querySelector('#seek');
        seek.value = {js(str(start))};
        seek.dispatchEvent(new Event('change'));
    }})()"""
    browser.evaluate(choose_speed_and_start)
    play_until(browser, end)
    played = browser.evaluate(
        """(() => { const v = document.querySelector('#video');
                    return {t: v.currentTime, rate: v.playbackRate}; })()"""
    )
    assert played["rate"] == SPEED and played["t"] >= end
    assert browser.evaluate("Number(document.querySelector('#stage').dataset.flownViewer)") > 0
    browser.wait_for("document.querySelectorAll('#bot-history li').length > 0")
    assert not [m for m in browser.console if m.startswith("uncaught")], browser.console


@pytest.mark.parametrize("via", ["ws", "sse"])
def test_the_api_key_goes_with_the_session(browser, trained_state, via):
    """Behind API_KEY: without the key the page says the session needs it; with it the
    session opens (a WebSocket sends it as ?key=, the HTTP requests as X-API-Key)."""
    with serve_in_thread(trained_state, api_key="s3cret") as server:
        for key, expected in [("", "no session: 4401"), ("s3cret", "session ")]:
            browser.goto("about:blank")
            browser.goto(f"{server}/player#video=demo0000")
            browser.wait_for(
                "document.querySelector('#session-status')?.textContent.includes('to replay')"
            )
            browser.evaluate(
                f"""(() => {{
                    document.querySelector('#transport').value = {js(via)};
                    document.querySelector('#api-key').value = {js(key)};
                    document.querySelector('#open-btn').click();
                }})()"""
            )
            status = browser.wait_for(
                "!document.querySelector('#session-status').textContent.startsWith('opening')"
                " && document.querySelector('#session-status').textContent"
            )
            assert status.startswith(expected), status
            stop(browser)  # before its server does
