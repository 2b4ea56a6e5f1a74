"""Comment files of common downloaders (model.data.comment_files and its format modules): each
test writes a file by hand in the layout the real tool writes (the protobuf bytes with a tiny
encoder here, not the reader's own code), reads it back, and checks what is kept, what is
counted as skipped, and that broken files are errors naming the file and line."""

from __future__ import annotations

import gzip
import json

import pysubs2
import pytest

from model.data.comment_files import (
    COMMENT_FORMATS,
    Skip,
    detect_format,
    read_comment_file,
    read_comment_files,
    read_subtitles,
    write_ass,
    write_bilibili_xml,
)
from model.data.schema import Comment, DataError, Segment


def pairs(cf) -> list[tuple[float, str]]:
    return [(round(c.time_s, 3), c.text) for c in cf.comments]


def skips(cf) -> dict[str, int]:
    return {s.reason: s.count for s in cf.skipped}


# --- Bilibili XML ------------------------------------------------------------------------------

BILIBILI_XML = """<?xml version="1.0" encoding="UTF-8"?>
<i>
    <chatserver>chat.bilibili.com</chatserver>
    <chatid>144541892</chatid>
    <mission>0</mission>
    <maxlimit>1500</maxlimit>
    <state>0</state>
    <real_name>0</real_name>
    <source>e-r</source>
    <d p="490.19100,1,25,16777215,1584268892,0,a16fe0dd,29950852386521095">从结尾回来看这里</d>
    <d p="18.77300,1,25,16777215,1584268920,0,4fe08d3,29950867226492933">咦三体居然还有动画</d>
    <d p="25.51600,5,25,16777215,1584268957,0,e4b18b37,29950886612566021">  红岸么  </d>
    <d p="12.345,4,25,16777215,1600000000,0,abcd1234,123456789012,10">Tom &amp; Jerry &lt;3</d>
    <d p="30.0,6,25,16777215,1600000000,0,abcd1234,123456789013,10">逆向\x13弹幕</d>
    <d p="40.5,7,25,16777215,1600000000,0,abcd1234,123456789014">[0,0,"1-1",4.5,"高级"]</d>
    <d p="41.5,7,25,16777215,1600000000,0,abcd1234,123456789015">[0,0,"1-1",4.5,"再来"]</d>
    <d p="42.0,8,25,16777215,1600000000,2,abcd1234,123456789016">Player.seek(0)</d>
    <d p="43.0,9,25,16777215,1600000000,2,abcd1234,123456789017">def text t {}</d>
    <d p="18.77300,1,25,16777215,1584268920,0,4fe08d3,29950867226492933">咦三体居然还有动画</d>
    <d p="50.0,1,25,16777215,1600000000,0,abcd1234,123456789018">   </d>
    <d p="abc,1,25,16777215,1600000000,0,abcd1234,123456789019">bad time</d>
</i>
"""


def test_bilibili_xml_keeps_plain_text_modes_and_counts_the_rest(tmp_path):
    path = tmp_path / "144541892.xml"
    path.write_bytes(BILIBILI_XML.encode("utf-8"))
    cf = read_comment_file(path)
    assert cf.format == "bilibili-xml" and cf.path == path
    assert pairs(cf) == [
        (12.345, "Tom & Jerry <3"),  # unescaped by the XML parser
        (18.773, "咦三体居然还有动画"),
        (25.516, "红岸么"),  # stripped
        (30.0, "逆向弹幕"),  # the control character deleted, as Bilibili's player does
        (490.191, "从结尾回来看这里"),
    ]
    assert all(c.likes is None for c in cf.comments)
    assert skips(cf) == {
        "mode 7 (positioned): not plain text (first at line 15)": 2,
        "mode 8 (scripted code): not plain text (line 17)": 1,
        "mode 9 (BAS): not plain text (line 18)": 1,
        "duplicate id (line 19)": 1,
        "empty text (line 20)": 1,
        "p field 0 (time): not a number (line 21)": 1,
    }
    assert all(s.file == str(path) for s in cf.skipped)


def test_bilibili_xml_of_a_live_recorder_keeps_comments_without_ids(tmp_path):
    # BililiveRecorder: ctime in ms, a dmid of 0 on every comment, gifts and super chats
    path = tmp_path / "录制-123-20240101.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<?xml-stylesheet type="text/xsl" href="#s"?>\n'
        "<i><chatserver>chat.bilibili.com</chatserver><chatid>0</chatid><mission>0</mission>"
        "<maxlimit>1000</maxlimit><state>0</state><real_name>0</real_name><source>0</source>\n"
        '<BililiveRecorder version="2.6.0" />\n'
        '<BililiveRecorderRecordInfo roomid="123" name="主播" start_time="2024-01-01" />\n'
        '<d p="1.523,1,25,16777215,1704067201523,0,4481578,0" user="观众" uid="4481578">'
        "来了</d>\n"
        '<d p="2.100,1,25,16777215,1704067202100,0,4481579,0" user="观众2" uid="4481579">'
        "来了</d>\n"
        '<gift ts="3.000" user="观众" uid="4481578" giftname="辣条" giftcount="1" />\n'
        '<sc ts="4.000" user="观众" uid="4481578" price="30" time="60">醒目留言</sc>\n'
        "</i>\n",
        encoding="utf-8",
    )
    cf = read_comment_file(path)
    assert pairs(cf) == [(1.523, "来了"), (2.1, "来了")]  # dmid 0 is no id: not duplicates
    assert skips(cf) == {
        "<gift> element: not a comment (line 8)": 1,
        "<sc> element: not a comment (line 9)": 1,
    }


V2_HEAD = '<?xml version="2.0" encoding="UTF-8"?><i><oid>200140199</oid>'
V2_BODY = (
    '<d p="34656419668557827,0,61486,1,25,16777215,1593244049,0,3dbb2ac3">握草</d>'
    '<d p="34754197277638663,0,59166,1,25,16777215,1593430545,0,9ee00804">哇!</d>'
    '<d p="34786153443360771,0,35665,1,25,41194,1593491497,0,dd1ba50f">'
    "美国的外用&quot;酒精&quot;一般是异丙醇</d>"
    '<d p="34756064507854853,0,85100,7,25,16777215,1593434107,0,f2d4d56d">[1,2]</d>'
    '<d p="34754197277638663,0,59166,1,25,16777215,1593430545,0,9ee00804">哇!</d>'
)


@pytest.mark.parametrize(
    "head", [V2_HEAD, '<?xml version="1.0" encoding="UTF-8"?><i><oid>1</oid>'], ids=["2.0", "shape"]
)
def test_bilibili_xml_version_2_has_milliseconds_in_field_2(tmp_path, head):
    # Bilibili's Windows client caches this layout (danmaku2ass issue #49); without the
    # version="2.0" declaration the field shapes decide (field 1 is no mode, field 3 is one)
    path = tmp_path / "dm.xml"
    path.write_text(head + V2_BODY + "</i>", encoding="utf-8")
    cf = read_comment_file(path)
    assert pairs(cf) == [
        (35.665, '美国的外用"酒精"一般是异丙醇'),
        (59.166, "哇!"),
        (61.486, "握草"),
    ]
    assert skips(cf) == {
        "mode 7 (positioned): not plain text (line 1)": 1,
        "duplicate id (line 1)": 1,
    }


def test_bilibili_xml_that_does_not_parse_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text(  # an unescaped "&" as a buggy downloader writes it
        '<?xml version="1.0" encoding="UTF-8"?>\n<i>\n'
        '<d p="1.0,1,25,16777215,0,0,a,1">ok</d>\n'
        '<d p="2.0,1,25,16777215,0,0,a,2">……&……</d>\n</i>\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"broken\.xml:4: not well-formed XML"):
        read_comment_file(path)
    path.write_bytes(b'<?xml version="1.0"?>\n<i>\n<d p="1,1,25,0,0,0,a,1">\xff\xfe</d></i>')
    with pytest.raises(DataError, match=r"broken\.xml:3: not well-formed XML"):
        read_comment_file(path)  # not UTF-8 where the declaration says UTF-8
    path.write_text('<!DOCTYPE i [<!ENTITY x "y">]><i><d p="1,1">&x;</d></i>', encoding="utf-8")
    with pytest.raises(DataError, match="refused"):
        read_comment_file(path)


def test_bilibili_xml_in_another_declared_encoding(tmp_path):
    xml = '<?xml version="1.0" encoding="GBK"?>\n<i><d p="1.5,1,25,0,0,0,a,5">中文弹幕</d></i>'
    (tmp_path / "gbk.xml").write_bytes(xml.encode("gbk"))
    (tmp_path / "utf16.xml").write_bytes(xml.replace("GBK", "UTF-16").encode("utf-16"))
    for name in ("gbk.xml", "utf16.xml"):
        assert detect_format(tmp_path / name) == "bilibili-xml"
        assert pairs(read_comment_file(tmp_path / name)) == [(1.5, "中文弹幕")]


# --- Bilibili protobuf segments ----------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32/int64: ten bytes of two's complement
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vfield(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def lfield(number: int, value: bytes | str) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def elem(dmid: int, progress_ms: int, content: bytes | str, mode: int = 1) -> bytes:
    """A DanmakuElem as Bilibili sends it: fields 1-9 and 11-13, in field order."""
    return b"".join(
        [
            vfield(1, dmid),
            vfield(2, progress_ms),
            vfield(3, mode),
            vfield(4, 25),
            vfield(5, 16777215),
            lfield(6, "59417e95"),
            lfield(7, content),
            vfield(8, 1418799826),
            vfield(9, 6),
            vfield(11, 0),
            lfield(12, str(dmid)),
            vfield(13, 1),
        ]
    )


def segment(*elems: bytes) -> bytes:
    return b"".join(lfield(1, e) for e in elems)


def test_bilibili_protobuf_segments_merge_into_one_video(tmp_path):
    first = segment(
        elem(711923911, 47880, "世界第一电击公主殿下"),
        elem(711923912, 1200, "前排"),
        elem(711923913, 5000, '[0,0,"1-1",4.5,"x"]', mode=7),
        elem(711923914, 6000, b"\xff\xfe not utf-8"),
    )
    first += vfield(2, 0)  # DmSegMobileReply.state and an unknown fixed32: skipped
    first += varint(99 << 3 | 5) + b"\x01\x02\x03\x04"
    second = segment(
        elem(711923999, 400000, "第二段"),
        elem(711923911, 47880, "世界第一电击公主殿下"),  # the same dmid in another segment
        varint(7 << 3 | 2) + varint(4) + "仅内容".encode()[:4],  # no id, content cut mid-char
        lfield(12, "5555") + vfield(2, 361000) + lfield(7, "只有idStr") + vfield(3, 1),
    )
    paths = [tmp_path / "1.so", tmp_path / "2.so", tmp_path / "3.so"]
    paths[0].write_bytes(first)
    paths[1].write_bytes(second)
    paths[2].write_bytes(b"")  # a segment past the last comment: empty
    cf = read_comment_files(paths)
    assert cf.format == "bilibili-protobuf" and cf.path == paths[0]
    assert pairs(cf) == [
        (1.2, "前排"),
        (47.88, "世界第一电击公主殿下"),
        (361.0, "只有idStr"),
        (400.0, "第二段"),
    ]
    assert [(s.file, s.reason.split(" (element")[0], s.count) for s in cf.skipped] == [
        (str(paths[0]), "mode 7 (positioned): not plain text", 1),
        (str(paths[0]), "content: not UTF-8", 1),
        (str(paths[1]), "mode 0: not a Bilibili mode", 1),  # an element without a mode
        (str(paths[1]), "duplicate id", 1),  # across the segments of one video
    ]


def test_bilibili_protobuf_skips_and_offsets(tmp_path):
    path = tmp_path / "seg.bin"
    data = segment(elem(1, 1000, "ok"), elem(2, 2000, "x", mode=8), elem(3, 3000, b"\xc3"))
    path.write_bytes(data)
    cf = read_comment_file(path)
    assert pairs(cf) == [(1.0, "ok")]
    offset_2 = len(lfield(1, elem(1, 1000, "ok")))
    offset_3 = offset_2 + len(lfield(1, elem(2, 2000, "x", mode=8)))
    assert skips(cf) == {
        f"mode 8 (scripted code): not plain text (element 1 (byte {offset_2}))": 1,
        f"content: not UTF-8 (element 2 (byte {offset_3}))": 1,
    }


def test_truncated_protobuf_segment_is_an_error(tmp_path):
    path = tmp_path / "1.so"
    path.write_bytes(segment(elem(1, 1000, "完整"), elem(2, 2000, "截断"))[:-5])
    with pytest.raises(DataError, match=r"1\.so: not a Bilibili protobuf segment: .*past the end"):
        read_comment_file(path)
    assert detect_format(path) is None


# --- ASS (danmaku2ass / biliass) ---------------------------------------------------------------

DANMAKU2ASS = """[Script Info]
; Script generated by Danmaku2ASS
; https://github.com/m13253/danmaku2ass
Script Updated By: Danmaku2ASS (https://github.com/m13253/danmaku2ass)
ScriptType: v4.00+
PlayResX: 1920
PlayResY: 1080
Aspect Ratio: 1920:1080
Collisions: Normal
WrapStyle: 2
ScaledBorderAndShadow: yes
YCbCr Matrix: TV.601

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, \
Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, \
Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Danmaku2ASS_8e5f, Microsoft YaHei, 48, &H33FFFFFF, &H33FFFFFF, &H33000000, &H33000000, \
0, 0, 0, 0, 100, 100, 0.00, 0.00, 1, 2, 0, 7, 0, 0, 0, 0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 2,0:00:12.34,0:00:20.34,Danmaku2ASS_8e5f,,0000,0000,0000,,\
{\\move(1920, 36, -200, 36)\\c&HFFFFFF&}第一条
Dialogue: 2,0:00:03.50,0:00:11.50,Danmaku2ASS_8e5f,,0000,0000,0000,,\
{\\move(1920, 0, -96, 0)}上一行\\N下一行
Dialogue: 2,0:01:05.00,0:01:10.00,Danmaku2ASS_8e5f,,0000,0000,0000,,\
{\\an8\\pos(960, 0)\\c&H0000FF&}顶部 \\{括号\\}
Comment: 0,0:00:01.00,0:00:02.00,Danmaku2ASS_8e5f,,0000,0000,0000,,不显示
Dialogue: 2,0:00:04.00,0:00:12.00,Danmaku2ASS_8e5f,,0000,0000,0000,,{\\move(1920, 72, -1, 72)}
"""


def test_danmaku2ass_file_reads_starts_and_plain_text(tmp_path):
    path = tmp_path / "video.danmaku.ass"
    path.write_text(DANMAKU2ASS, encoding="utf-8-sig")  # danmaku2ass writes a BOM
    cf = read_comment_file(path)
    assert cf.format == "ass"
    assert pairs(cf) == [(3.5, "上一行 下一行"), (12.34, "第一条"), (65.0, "顶部 {括号}")]
    assert skips(cf) == {"Comment event: not shown (event 3)": 1, "empty text (event 4)": 1}


# --- chats: TwitchDownloader, chat-downloader, yt-dlp's YouTube live chat ----------------------


def twitch_comment(n: int, offset, body) -> dict:
    message = {"body": body, "bits_spent": 0, "fragments": [{"text": body, "emoticon": None}]}
    if body is None:
        message = {"fragments": [{"text": "from ", "emoticon": None}, {"text": "fragments"}]}
    return {
        "_id": f"c0ffee-{n}",
        "created_at": "2023-05-01T18:00:12.3Z",
        "channel_id": "12345",
        "content_type": "video",
        "content_id": "1806181234",
        "content_offset_seconds": offset,
        "commenter": {"display_name": "Viewer", "_id": "678", "name": "viewer", "logo": "x"},
        "message": {**message, "user_badges": [], "user_color": "#FF0000", "emoticons": []},
    }


TWITCH_DOC = {
    "FileInfo": {"Version": {"Major": 1, "Minor": 3, "Patch": 1}, "CreatedAt": "2023-05-02"},
    "streamer": {"name": "somestreamer", "id": 12345},
    "video": {"title": "stream", "id": "1806181234", "start": 0, "end": 3600, "length": 3600},
    "comments": [
        twitch_comment(1, 12.3, "PogChamp hello"),
        twitch_comment(2, 4.0, "first"),
        twitch_comment(3, "7", "offset as a string"),
        twitch_comment(4, 20.5, None),
        twitch_comment(1, 12.3, "PogChamp hello"),
    ],
    "embeddedData": None,
}


@pytest.mark.parametrize("packed", [False, True], ids=["json", "json.gz"])
def test_twitch_downloader_chat(tmp_path, packed):
    data = json.dumps(TWITCH_DOC).encode()  # TwitchDownloader writes one compact line
    path = tmp_path / ("1806181234.json.gz" if packed else "1806181234.json")
    path.write_bytes(gzip.compress(data) if packed else data)
    cf = read_comment_file(path)
    assert cf.format == "twitch-downloader"
    assert pairs(cf) == [(4.0, "first"), (12.3, "PogChamp hello"), (20.5, "from fragments")]
    assert skips(cf) == {
        "content_offset_seconds: missing or not a number (comment 2)": 1,
        "duplicate id (comment 4)": 1,
    }


def test_chat_downloader_json_keeps_text_messages_at_or_after_the_start(tmp_path):
    items = [
        {"message_id": "a", "message": "waiting room", "message_type": "text_message",
         "time_in_seconds": -35.2, "time_text": "-0:35", "timestamp": 1613761152565924,
         "author": {"id": "UC1", "name": "x"}},
        {"message_id": "b", "message": "hello chat", "message_type": "text_message",
         "time_in_seconds": 1234.56, "time_text": "20:34", "timestamp": 1613761152565925,
         "author": {"id": "UC2", "name": "y"}},
        {"message_id": "c", "message": "thanks!", "message_type": "paid_message",
         "money": {"amount": 5.0, "currency": "USD"}, "time_in_seconds": 60.0,
         "author": {"id": "UC3", "name": "z"}},
        {"message_id": "d", "message_type": "membership_item", "time_in_seconds": 70.0,
         "author": {"id": "UC4", "name": "w"}},
        {"message_id": "e", "message": "early", "message_type": "text_message",
         "time_in_seconds": 1.5, "author": {"id": "UC5", "name": "v"}},
        {"message_id": "f", "message": "live, no offset", "message_type": "text_message",
         "timestamp": 1613761152565999, "author": {"id": "UC6", "name": "u"}},
    ]  # fmt: skip
    path = tmp_path / "chat.json"
    body = ", ".join("\n" + json.dumps(i, indent=4, sort_keys=True) for i in items)
    path.write_text("[" + body + "\n]")  # chat-downloader's continuous JSON writer
    cf = read_comment_file(path)
    assert cf.format == "chat-downloader"
    assert pairs(cf) == [(1.5, "early"), (1234.56, "hello chat")]
    assert skips(cf) == {
        "negative time (before the video starts) (message 0)": 1,
        "message_type 'paid_message': not a text message (message 2)": 1,
        "message_type 'membership_item': not a text message (message 3)": 1,
        "time_in_seconds: missing or not a number (message 5)": 1,
    }


def youtube_text(msg_id: str, runs: list, offset_ms: int | None, live: bool = False) -> dict:
    renderer = {
        "message": {"runs": runs},
        "authorName": {"simpleText": "viewer"},
        "authorPhoto": {"thumbnails": [{"url": "https://yt4.ggpht.com/x", "width": 32}]},
        "id": msg_id,
        "timestampUsec": "1700000000000000",
        "authorExternalChannelId": "UCabc",
        "timestampText": {"simpleText": "0:12"},
    }
    action = {"clickTrackingParams": "CAEQl98BIhMI", "addChatItemAction": {"item": {
        "liveChatTextMessageRenderer": renderer}, "clientId": "abc"}}  # fmt: skip
    if live:  # yt-dlp's pseudo action of a chat recorded live
        return {"replayChatItemAction": {"actions": [action]},
                "videoOffsetTimeMsec": str(offset_ms), "isLive": True}  # fmt: skip
    return {"clickTrackingParams": "CAEQl98BIhMI", "replayChatItemAction": {
        "actions": [action], "videoOffsetTimeMsec": str(offset_ms)}}  # fmt: skip


YT_EMOJI = {"emojiId": "😂", "shortcuts": [":face_with_tears_of_joy:", ":joy:"],
            "searchTerms": ["joy"], "image": {"thumbnails": [{"url": "https://x"}]}}  # fmt: skip
YT_CUSTOM = {"emojiId": "UCFG6teapZaN6J1oVXl7MYPA/cIt5YdHOMKXQ8gTGxrrwDw",
             "shortcuts": [":_けーぴー:", ":けーぴー:"], "isCustomEmoji": True}  # fmt: skip


def test_youtube_live_chat_lines_from_yt_dlp(tmp_path):
    paid = {"replayChatItemAction": {"actions": [{"addChatItemAction": {"item": {
        "liveChatPaidMessageRenderer": {"id": "p1", "purchaseAmountText": {"simpleText": "$5"},
        "message": {"runs": [{"text": "super"}]}}}}}], "videoOffsetTimeMsec": "30000"}}  # fmt: skip
    ticker = {"replayChatItemAction": {"actions": [
        {"addLiveChatTickerItemAction": {"item": {}}},
        {"markChatItemAsDeletedAction": {"targetItemId": "m1"}}],
        "videoOffsetTimeMsec": "31000"}}  # fmt: skip
    lines = [
        youtube_text("m1", [{"text": "hi "}, {"emoji": YT_EMOJI}], 12345),
        youtube_text("m2", [{"emoji": YT_CUSTOM}, {"text": " 草"}], 5000),
        paid,
        ticker,
        youtube_text("m1", [{"text": "hi "}, {"emoji": YT_EMOJI}], 12345),
        youtube_text("m3", [{"text": "recorded live"}], 40250, live=True),
        youtube_text("m4", [{"text": "pre-stream"}], -2000),
    ]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    text += '\n{"clickTrackingParams": "CAEQ", "replayChatItemAction": {"actio'  # cut short
    path = tmp_path / "abc123.live_chat.json"
    path.write_text(text + "\n", encoding="utf-8")
    cf = read_comment_file(path)
    assert cf.format == "youtube-live-chat"
    assert pairs(cf) == [(5.0, ":_けーぴー: 草"), (12.345, "hi 😂"), (40.25, "recorded live")]
    assert skips(cf) == {
        "liveChatPaidMessageRenderer: not a plain chat message (line 3)": 1,
        "addLiveChatTickerItemAction: not a chat message (line 4)": 1,
        "markChatItemAsDeletedAction: not a chat message (line 4)": 1,
        "duplicate id (line 5)": 1,
        "negative time (before the video starts) (line 7)": 1,
        "line: not JSON (an interrupted download?) (line 8)": 1,
    }


def test_json_chat_that_does_not_parse_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "chat.json"
    path.write_text('{"FileInfo": {},\n "comments": [\n {"content_offset_seconds": 1,,}]}')
    with pytest.raises(DataError, match=r"chat\.json:3: invalid JSON"):
        read_comment_file(path)
    path.write_bytes(b'[{"message_type": "text_message", "time_in_seconds": 1, "message": "\xff"}]')
    with pytest.raises(DataError, match=r"chat\.json:1: not UTF-8 text"):
        read_comment_file(path)
    path.write_text('{"FileInfo": {}, "comments": "no list"}')
    with pytest.raises(DataError, match="expected TwitchDownloader"):
        read_comment_file(path)


# --- detection, merging, unknown files ---------------------------------------------------------


def test_detect_format_tells_every_format_apart(tmp_path):
    files = {
        "a.xml": BILIBILI_XML.encode(),
        "b.xml": (V2_HEAD + V2_BODY + "</i>").encode(),
        "1.so": segment(elem(1, 1000, "弹幕")),
        "c.ass": DANMAKU2ASS.encode("utf-8-sig"),
        "d.json": json.dumps(TWITCH_DOC).encode(),
        "e.json": json.dumps(
            [
                {
                    "message": "x",
                    "message_type": "text_message",
                    "time_in_seconds": 1.0,
                    "message_id": "z",
                }
            ]
        ).encode(),  # fmt: skip
        "f.live_chat.json": json.dumps(youtube_text("m", [{"text": "x"}], 1)).encode(),
    }
    expected = [
        "bilibili-xml",
        "bilibili-xml",
        "bilibili-protobuf",
        "ass",
        "twitch-downloader",
        "chat-downloader",
        "youtube-live-chat",
    ]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert [detect_format(tmp_path / name) for name in files] == expected
    assert set(expected) == set(COMMENT_FORMATS)
    # names mislead: detection reads the content
    (tmp_path / "comments.txt").write_bytes(files["1.so"])
    (tmp_path / "danmaku.json").write_bytes(files["a.xml"])
    assert detect_format(tmp_path / "comments.txt") == "bilibili-protobuf"
    assert detect_format(tmp_path / "danmaku.json") == "bilibili-xml"
    others = {
        "config.json": b'{"comments": [], "name": "not a chat"}',
        "list.json": b'[{"a": 1}, {"b": 2}]',
        "notes.txt": "只是一些文字\n".encode(),
        "sub.srt": b"1\n00:00:01,000 --> 00:00:02,000\nhello\n",
        "feed.xml": b'<?xml version="1.0"?><rss><item/></rss>',
        "blob.bin": bytes(range(256)),
        "empty.json": b"",
    }
    for name, data in others.items():
        (tmp_path / name).write_bytes(data)
        assert detect_format(tmp_path / name) is None, name
        with pytest.raises(DataError, match=rf"{name}(:\d+)?: "):
            read_comment_file(tmp_path / name)
    (tmp_path / "empty.so").write_bytes(b"")
    assert detect_format(tmp_path / "empty.so") == "bilibili-protobuf"
    with pytest.raises(DataError, match="missing"):
        detect_format(tmp_path / "absent.xml")


def test_damaged_files_are_read_or_refused_with_a_data_error(tmp_path):
    files = {
        "a.xml": BILIBILI_XML.encode(),
        "1.so": segment(elem(1, 1000, "弹幕"), elem(2, 2000, "二", mode=4)),
        "c.ass": DANMAKU2ASS.encode("utf-8-sig"),
        "d.json": json.dumps(TWITCH_DOC).encode(),
        "f.live_chat.json": json.dumps(youtube_text("m", [{"text": "x"}], 1)).encode() + b"\n",
    }
    for name, data in files.items():
        path = tmp_path / name
        for cut in range(0, len(data), max(1, len(data) // 97)):
            damaged = data[:cut] + bytes([(data[cut] + 101) % 256]) + data[cut + 1 :]
            for variant in (data[:cut], damaged):
                path.write_bytes(variant)
                try:
                    cf = read_comment_file(path)
                except DataError as e:
                    assert str(path) in str(e)
                else:
                    assert cf.format == detect_format(path)


def test_read_comment_files_refuses_mixed_formats(tmp_path):
    (tmp_path / "1.so").write_bytes(segment(elem(1, 1000, "弹幕")))
    (tmp_path / "2.xml").write_text(BILIBILI_XML, encoding="utf-8")
    with pytest.raises(DataError, match="bilibili-xml, but .*1.so is bilibili-protobuf"):
        read_comment_files([tmp_path / "1.so", tmp_path / "2.xml"])
    with pytest.raises(DataError, match="no files"):
        read_comment_files([])


# --- writers and subtitles ---------------------------------------------------------------------

WRITTEN = [
    Comment(12.3456, "前方高能"),
    Comment(0.0, "开头"),
    Comment(12.3456, "同时 & <两条>"),
    Comment(61.0049, "a {brace} and \\N backslash"),
    Comment(3600.5, "一小时后"),
]


def test_write_bilibili_xml_reads_back_identically(tmp_path):
    path = tmp_path / "out" / "danmaku.xml"
    write_bilibili_xml(WRITTEN, path)
    assert 'p="12.34560,1,25,16777215,0,0,0,1"' in path.read_text(encoding="utf-8")
    cf = read_comment_file(path)
    assert cf.format == "bilibili-xml" and cf.skipped == []
    expected = sorted(WRITTEN, key=lambda c: c.time_s)
    assert [c.text for c in cf.comments] == [c.text for c in expected]
    assert [c.time_s for c in cf.comments] == pytest.approx([c.time_s for c in expected], abs=5e-4)


def test_write_ass_is_a_scrolling_overlay_that_reads_back(tmp_path):
    path = tmp_path / "danmaku.ass"
    write_ass(WRITTEN + [Comment(1.0, "两行\n文字")], path, width=1280, height=720, duration_s=6)
    subs = pysubs2.load(str(path), encoding="utf-8-sig")
    assert subs.info["PlayResX"] == "1280" and subs.styles["Danmaku"].fontname == "Microsoft YaHei"
    events = sorted(subs, key=lambda e: e.start)
    assert [e.start for e in events] == [0, 1000, 12350, 12350, 61000, 3600500]  # ms, to 10 ms
    assert all(e.end - e.start == 6000 for e in events)
    assert all(e.text.startswith("{\\move(1280, ") for e in events)
    rows = [e.text.split(", ")[1] for e in events]
    assert rows[2] != rows[3]  # two comments entering at once take two rows
    cf = read_comment_file(path)
    assert cf.format == "ass" and cf.skipped == []
    assert pairs(cf) == [
        (0.0, "开头"),
        (1.0, "两行 文字"),  # a line break reads as a space
        (12.35, "前方高能"),
        (12.35, "同时 & <两条>"),
        (61.0, "a {brace} and \\N backslash"),
        (3600.5, "一小时后"),
    ]
    with pytest.raises(ValueError):
        write_ass([Comment(-1.0, "x")], tmp_path / "bad.ass")


def test_read_subtitles_srt_ass_and_vtt(tmp_path):
    srt = tmp_path / "film.srt"
    srt.write_text(
        "2\n00:00:05,500 --> 00:00:07,000\n<i>第二句</i>\n\n"
        "1\n00:00:01,000 --> 00:00:03,250\n第一句\n第二行\n\n",
        encoding="utf-8-sig",
    )
    assert read_subtitles(srt) == [
        Segment(1.0, 3.25, "第一句 第二行"),
        Segment(5.5, 7.0, "第二句"),
    ]
    ass = tmp_path / "film.ass"
    ass.write_text(
        "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        "Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,"
        "0,0,1,2,2,2,10,10,10,1\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: 0,0:00:02.00,0:00:04.00,Default,,0,0,0,,{\\an8\\fad(200,200)}你好\\N世界\n"
        "Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,译者注\n",
        encoding="utf-8",
    )
    assert read_subtitles(ass) == [Segment(2.0, 4.0, "你好 世界")]
    vtt = tmp_path / "film.en.vtt"
    vtt.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nhello\n", encoding="utf-8")
    assert read_subtitles(vtt) == [Segment(1.0, 2.5, "hello")]
    bad = tmp_path / "bad.srt"
    bad.write_text("not subtitles at all", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.srt: cannot read as subtitles"):
        read_subtitles(bad)


def test_skip_is_a_value():
    assert Skip("f", "empty text") == Skip("f", "empty text", 1)
