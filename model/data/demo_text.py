"""Templates and vocabulary of the demo corpus (written for this project; no text copied).

Comment kinds follow what the demo corpus needs (docs/data-contracts.md, section "The demo
corpus"): generic chatter, reactions to the scene on screen, replies to nearby comments,
mentions of people in the film, and knowledge-bearing comments that state a real fact (from
the bundled FilmKG sample) of an entity named nearby. ``{name}``/``{value}`` are filled by
:mod:`model.data.demo`.
"""

from __future__ import annotations

SCENE_TYPES = ("打斗", "感人", "搞笑", "紧张", "浪漫", "日常")

GENERIC = (
    "哈哈哈哈",
    "前方高能",
    "打卡",
    "第一次看",
    "二刷了",
    "三刷来了",
    "来了来了",
    "好看",
    "太好看了吧",
    "有人一起看吗",
    "弹幕护体",
    "我又来了",
    "经典",
    "名场面",
    "这里截图",
    "开始了",
    "终于等到这里",
    "封神",
    "期待后面",
    "这部真的可以",
    "每年都要看一遍",
    "哇哦",
    "绝了",
    "好家伙",
    "看哭了",
    "笑死",
    "好",
    "冲冲冲",
    "前排",
    "收藏了",
)

REACTIONS = {
    "打斗": (
        "这段打得好燃",
        "动作太帅了",
        "这拳好狠",
        "打戏真好看",
        "燃起来了",
        "好身手",
        "这个镜头绝了",
        "打得太干脆了",
    ),
    "感人": (
        "泪目",
        "又哭了",
        "看一次哭一次",
        "太感人了",
        "眼泪止不住",
        "心疼",
        "破防了",
        "这段好暖",
    ),
    "搞笑": (
        "笑出声",
        "哈哈哈笑死我了",
        "太逗了",
        "这表情绝了",
        "笑到肚子疼",
        "好好笑",
        "笑不活了",
        "这台词太好笑",
    ),
    "紧张": (
        "好紧张",
        "不敢看了",
        "心提到嗓子眼",
        "快跑啊",
        "要出事了",
        "太刺激了",
        "屏住呼吸",
        "吓我一跳",
    ),
    "浪漫": ("好甜", "磕到了", "太浪漫了", "这对好配", "甜死了", "我酸了", "这段好美", "心动了"),
    "日常": (
        "这里好安静",
        "配乐好听",
        "画面真美",
        "这个场景好看",
        "慢慢来",
        "细节满满",
        "这衣服好看",
        "风景不错",
    ),
}

REPLIES = (
    "同上",
    "+1",
    "楼上说得对",
    "确实",
    "真的",
    "我也是",
    "哈哈哈同感",
    "赞同",
    "说得好",
    "是的是的",
)

MENTIONS = (
    "{name}出场了",
    "是{name}！",
    "{name}演技太好了",
    "{name}好帅",
    "这不是{name}吗",
    "{name}来了",
    "喜欢{name}",
    "{name}这段好棒",
    "认出{name}了",
    "{name}太有魅力了",
)

# How viewers refer to a person just named (danmaku's gender-neutral "ta").
PRONOUN = "ta"

# Facts a viewer would state, by relation: (template, kind) where kind selects how the value
# is cleaned (first item of a list, or whole).
PERSON_FACTS = {
    "国籍": ("{name}是{value}人", "whole"),
    "出生日期": ("{name}生于{value}", "whole"),
    "出生地": ("{name}出生在{value}", "first"),
    "毕业院校": ("{name}毕业于{value}", "first"),
    "代表作品": ("{name}还演过{value}", "first"),
    "身高": ("{name}身高{value}", "whole"),
    "星座": ("{name}是{value}", "whole"),
    "职业": ("{name}也是{value}", "first"),
    "主要成就": ("{name}拿过{value}", "first"),
    "民族": ("{name}是{value}", "whole"),
}
FILM_FACTS = {
    "导演": ("这部的导演是{value}", "first"),
    "上映时间": ("这片{value}上映的", "whole"),
    "票房": ("票房有{value}", "whole"),
    "制片地区": ("这是{value}拍的", "first"),
    "片长": ("片长{value}", "whole"),
    "类型": ("这是一部{value}片", "first"),
    "主演": ("主演有{value}", "first"),
    "编剧": ("编剧是{value}", "first"),
    "出品公司": ("{value}出品的", "first"),
    "对白语言": ("原声是{value}", "first"),
}

CHARACTERS = ("阿明", "小芳", "老王", "李队", "阿杰", "小雨", "陈叔", "林姐")
SUBTITLE_LINES = {
    "打斗": ("别过来！", "你跑不掉的", "小心身后", "一起上", "就凭你？", "快走，我掩护"),
    "感人": (
        "对不起，我来晚了",
        "我一直在等你",
        "谢谢你陪着我",
        "别哭了",
        "我们回家吧",
        "你还记得吗",
    ),
    "搞笑": ("这是什么情况", "你认真的吗", "我就随便说说", "别看我", "这也行？", "我饿了"),
    "紧张": ("有人在吗", "门怎么开了", "快关灯", "别出声", "时间不多了", "他们来了"),
    "浪漫": (
        "今晚的月亮真美",
        "我喜欢你",
        "留下来好吗",
        "跟我走吧",
        "我们去看海",
        "你笑起来真好看",
    ),
    "日常": ("早上好", "吃饭了吗", "今天天气不错", "路上小心", "明天见", "我去上班了"),
}
