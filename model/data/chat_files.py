"""Live-chat JSON files as downloaders save them, read into
:class:`~model.data.fileio.RawComment` records for :mod:`model.data.comment_files`.

TwitchDownloader (lay295/TwitchDownloader, ``chatdownload`` to ``.json``, or ``.json.gz``
which :mod:`model.data.comment_files` unpacks): one JSON object::

    {"FileInfo": {...}, "streamer": {...}, "video": {"start", "end", ...},
     "comments": [{"_id", "created_at", "content_offset_seconds": 12.3,
                   "commenter": {...}, "message": {"body": "text", "fragments": [...], ...}}],
     "embeddedData": ...}

The time is ``content_offset_seconds`` (seconds into the VOD, also in a trimmed download:
``video.start`` is not subtracted), the text ``message.body`` (else the joined ``text`` of
``message.fragments``), the id ``_id``.

chat-downloader (xenova/chat-downloader, ``--output chat.json``): one JSON array of messages
with sorted keys, ``{"message_id", "message": "text", "message_type": "text_message",
"time_in_seconds": 12.3, "time_text", "timestamp", "author": {...}, ...}``. Only
``text_message`` items are kept; the others (``paid_message``, ``membership_item``, ...) are
counted by type; a message without ``time_in_seconds`` (a live, not a replayed, chat) is
counted too. The id is ``message_id``.

YouTube live chat as yt-dlp writes it (``<video>.live_chat.json``, yt_dlp/downloader/
youtube_live_chat.py): JSON lines, one YouTube action per line::

    {"clickTrackingParams": ..., "replayChatItemAction": {"actions": [
        {"addChatItemAction": {"item": {"liveChatTextMessageRenderer": {
            "message": {"runs": [{"text": "hi "}, {"emoji": {...}}]}, "id": ..., ...}}}}],
        "videoOffsetTimeMsec": "12345"}}

A chat recorded live has ``videoOffsetTimeMsec`` beside ``replayChatItemAction`` instead of in
it (and ``"isLive": true``). The time is ``videoOffsetTimeMsec`` milliseconds, the text the
``text`` of the runs joined, an emoji run giving its ``emojiId`` (the emoji character itself)
for a standard emoji and its first shortcut (``:_name:``) for a channel's custom one. Only
``liveChatTextMessageRenderer`` items are kept; other renderers (paid messages, stickers,
memberships, ...) and other actions (tickers, banners, deletions, ...) are counted by kind. A
line that is not UTF-8 or not JSON (the last line of an interrupted download) is counted as
skipped; the id is the renderer's ``id``.

Documents that are not JSON are a :class:`DataError` naming the line; records that lack a field
or hold a wrong type are counted as skipped with their place.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from model.data.fileio import RawComment, SkipFn, decode_text
from model.data.schema import DataError

_YOUTUBE_FIRST = re.compile(
    r'\{\s*(?:"clickTrackingParams"\s*:\s*"[^"]*"\s*,\s*)?"replayChatItemAction"\s*:'
)
_TWITCH = re.compile(r'"content_offset_seconds"\s*:|^\{\s*"FileInfo"\s*:')
_CHAT_DOWNLOADER = re.compile(r'^\[\s*\{.*"message_type"\s*:', re.S)
_CHAT_DOWNLOADER_TIME = re.compile(r'"(?:time_in_seconds|message_id)"\s*:')


def sniff_json(head: str) -> str | None:
    """The chat format of a file whose text starts with ``head`` (BOM and leading white space
    removed), or None."""
    first = head.split("\n", 1)[0]
    if head.startswith("{"):
        try:
            obj = json.loads(first)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "replayChatItemAction" in obj:
            return "youtube-live-chat"
        if obj is None and _YOUTUBE_FIRST.match(first):  # a first line longer than the head
            return "youtube-live-chat"
        if _TWITCH.search(head):
            return "twitch-downloader"
    if _CHAT_DOWNLOADER.match(head) and _CHAT_DOWNLOADER_TIME.search(head):
        return "chat-downloader"
    return None


def load_json(path: Path, data: bytes) -> Any:
    """One JSON document; a :class:`DataError` naming the line when it is not one."""
    try:
        return json.loads(decode_text(path, data))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _key(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


def read_twitch_downloader(path: Path, data: bytes, skip: SkipFn) -> list[RawComment]:
    doc = load_json(path, data)
    if not isinstance(doc, dict) or not isinstance(doc.get("comments"), list):
        raise DataError(f'{path}: expected TwitchDownloader\'s {{"comments": [...], ...}}')
    records = []
    for n, comment in enumerate(doc["comments"]):
        where = f"comment {n}"
        if not isinstance(comment, dict):
            skip("comment: not a JSON object", where)
            continue
        time_s = _number(comment.get("content_offset_seconds"))
        if time_s is None:
            skip("content_offset_seconds: missing or not a number", where)
            continue
        text = _twitch_text(comment.get("message"))
        if text is None:
            skip("message.body: missing or not a string", where)
            continue
        records.append(RawComment(time_s, text, _key(comment.get("_id")), where))
    return records


def _twitch_text(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    if isinstance(message.get("body"), str):
        return message["body"]
    fragments = message.get("fragments")
    if isinstance(fragments, list) and fragments:
        texts = [f.get("text") for f in fragments if isinstance(f, dict)]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    return None


def read_chat_downloader(path: Path, data: bytes, skip: SkipFn) -> list[RawComment]:
    doc = load_json(path, data)
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected chat-downloader's JSON array of messages")
    records = []
    for n, message in enumerate(doc):
        where = f"message {n}"
        if not isinstance(message, dict):
            skip("message: not a JSON object", where)
            continue
        kind = message.get("message_type", "text_message")
        if kind != "text_message":
            skip(f"message_type {kind!r}: not a text message", where)
            continue
        time_s = _number(message.get("time_in_seconds"))
        if time_s is None:
            skip("time_in_seconds: missing or not a number", where)
            continue
        text = message.get("message")
        if not isinstance(text, str):
            skip("message: missing or not a string", where)
            continue
        records.append(RawComment(time_s, text, _key(message.get("message_id")), where))
    return records


def read_youtube_live_chat(path: Path, data: bytes, skip: SkipFn) -> list[RawComment]:
    records: list[RawComment] = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"line {lineno}"
        try:
            line = json.loads(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
        except UnicodeDecodeError:
            skip("line: not UTF-8", where)
            continue
        except json.JSONDecodeError:
            skip("line: not JSON (an interrupted download?)", where)
            continue
        replay = line.get("replayChatItemAction") if isinstance(line, dict) else None
        if not isinstance(replay, dict) or not isinstance(replay.get("actions"), list):
            skip("line without replayChatItemAction.actions", where)
            continue
        offset = replay.get("videoOffsetTimeMsec", line.get("videoOffsetTimeMsec"))
        for action in replay["actions"]:
            _youtube_action(action, _milliseconds(offset), where, records, skip)
    return records


def _milliseconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        return int(value) / 1000
    except ValueError:
        return None


def _youtube_action(
    action: Any, time_s: float | None, where: str, records: list[RawComment], skip: SkipFn
) -> None:
    if not isinstance(action, dict):
        return skip("action: not a JSON object", where)
    kind = next((k for k in action if k != "clickTrackingParams"), None)
    if kind is None:
        return skip("action without a kind", where)
    if kind != "addChatItemAction":
        return skip(f"{kind}: not a chat message", where)
    item = action[kind].get("item") if isinstance(action[kind], dict) else None
    renderer_kind = next(iter(item), None) if isinstance(item, dict) else None
    if renderer_kind is None:
        return skip("addChatItemAction without an item", where)
    if renderer_kind != "liveChatTextMessageRenderer":
        return skip(f"{renderer_kind}: not a plain chat message", where)
    if time_s is None:
        return skip("videoOffsetTimeMsec: missing or not an integer", where)
    renderer = item[renderer_kind] if isinstance(item[renderer_kind], dict) else {}
    text = _runs_text(renderer.get("message"))
    if text is None:
        return skip("message.runs: missing or malformed", where)
    records.append(RawComment(time_s, text, _key(renderer.get("id")), where))


def _runs_text(message: Any) -> str | None:
    if isinstance(message, dict) and isinstance(message.get("simpleText"), str):
        return message["simpleText"]
    runs = message.get("runs") if isinstance(message, dict) else None
    if not isinstance(runs, list):
        return None
    parts = []
    for run in runs:
        if isinstance(run, dict) and isinstance(run.get("text"), str):
            parts.append(run["text"])
        elif isinstance(run, dict) and isinstance(run.get("emoji"), dict):
            parts.append(_emoji_text(run["emoji"]))
    return "".join(parts)


def _emoji_text(emoji: dict) -> str:
    shortcuts = [s for s in emoji.get("shortcuts") or [] if isinstance(s, str)]
    if not emoji.get("isCustomEmoji") and isinstance(emoji.get("emojiId"), str):
        return emoji["emojiId"]
    return shortcuts[0] if shortcuts else ""
