"""The UI (bot/ui/): the callback-data codec and Telegram's length rules for captions and texts."""

from __future__ import annotations

import re
from html import escape

import pytest

from bot.backends.critique import Critique
from bot.backends.errors import ContentBlocked
from bot.ui.autopilot import (
    autopilot_best_caption,
    autopilot_plan_text,
    autopilot_progress_text,
)
from bot.ui.callbacks import (
    ACCEPT,
    AUTO,
    EDIT,
    HISTORY,
    REDRAW,
    ROUND_ACTIONS,
    SESSION_ACTIONS,
    SETTING,
    STOP,
    ButtonPress,
    callback_pattern,
    decode_callback,
    encode_callback,
)
from bot.ui.refusals import photo_refusal_text
from bot.ui.rounds import (
    CRITIQUE_BELOW,
    critique_texts,
    edit_prompt_text,
    round_caption,
    round_keyboard,
    short_round_caption,
    stop_caption,
)
from bot.ui.text import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    plain_text,
    shorten,
    shorten_html,
    split_html,
    utf16_length,
    visible_length,
)
from storage.records import RoundRecord, RoundStatus
from tests.fakes.telegram_server import parse_html


def make_round(**overrides: object) -> RoundRecord:
    values: dict = dict(
        id=7,
        session_id=1,
        parent_round_id=None,
        number=2,
        prompt="red saree",
        action="accept",
        acted_by=5,
        acted_by_name="Ana",
        status=RoundStatus.DONE,
        error_kind=None,
        error=None,
        image_sha="ab",
        critique=None,
        score=None,
        message_id=None,
        created_at="2026-11-26T10:00:00.000+00:00",
        image_at=None,
        finished_at=None,
        generate_ms=None,
        critique_ms=None,
    )
    values.update(overrides)
    return RoundRecord(**values)


@pytest.mark.parametrize("action", [ACCEPT, EDIT, STOP])
def test_codec_round_trips(action: str) -> None:
    data = encode_callback(action, 123456789012)
    assert len(data.encode()) <= 64
    assert decode_callback(data) == ButtonPress(action, "123456789012")


@pytest.mark.parametrize(
    "data",
    [
        "",
        None,
        "x:1",
        "a:",
        "a:0",
        "a:-1",
        "a:1:2",
        "a:01",
        "accept:1",
        "a:" + "9" * 40,
        "a:1 ",
        "ä:1",
        "a:１",
    ],
)
def test_codec_rejects_forgeries(data: str | None) -> None:
    assert decode_callback(data) is None


def test_keyboard_first_row_words() -> None:
    row = round_keyboard(99).inline_keyboard[0]
    labels = [b.text for b in row]
    assert "Accept" in labels[0] and "Edit" in labels[1] and "Stop" in labels[2]
    assert [b.callback_data for b in row] == ["a:99", "e:99", "s:99"]


def test_caption_fits_1024_even_with_huge_critique() -> None:
    critique = Critique(
        score=6,
        strengths=["<b>&" * 100] * 5,
        problems=["x" * 500] * 6,
        revised_prompt="very long <prompt> & more " * 150,
    )
    caption = round_caption(make_round(), critique, group=True)
    assert visible_length(caption) <= CAPTION_LIMIT
    assert "6/10" in caption
    assert "&lt;prompt&gt;" in caption  # escaped, so Telegram can parse it
    assert "…" in caption


def test_caption_without_critique_explains_the_error() -> None:
    caption = round_caption(make_round(), None, ContentBlocked("critic"))
    assert "blocked" in caption
    assert "same prompt" in caption


def test_visible_length_counts_entities_as_one() -> None:
    assert visible_length("<b>a&amp;b</b>") == 3


def test_edit_prompt_fits_4096() -> None:
    text = edit_prompt_text(3, "<x>" * 3000, group=False)
    assert visible_length(text) <= TEXT_LIMIT
    assert text.count("<pre>") == 1


def test_stop_caption_is_short_and_escaped() -> None:
    caption = stop_caption(make_round(prompt="a <b> " * 400), 3)
    assert visible_length(caption) <= CAPTION_LIMIT
    assert "3 rounds" in caption and "&lt;b&gt;" in caption


def test_auto_and_redraw_buttons_on_the_second_row_and_their_codes() -> None:
    rows = round_keyboard(99).inline_keyboard
    assert len(rows[0]) == 3 and [b.text for b in rows[1]] == ["🔁 Auto", "🎨 Redraw"]
    assert rows[1][0].callback_data == "u:99" and rows[1][1].callback_data == "w:99"
    assert decode_callback("u:99") == ButtonPress(AUTO, "99")
    assert decode_callback("w:99") == ButtonPress(REDRAW, "99")


def test_the_caption_says_how_the_round_was_made() -> None:
    critique = Critique(score=7, strengths=[], problems=[], revised_prompt="p")
    assert "↻ new picture" in round_caption(make_round(), critique)
    edit = make_round(edit_of=1, parent_round_id=1, instruction="make it white")
    assert "✎ edited" in round_caption(edit, critique)
    redrawn = make_round(kind_note="picture_gone")
    assert "the picture to edit is no longer stored" in round_caption(redrawn, critique)


def test_caption_shows_product_fidelity() -> None:
    critique = Critique(
        score=8, fidelity=4, strengths=["light"], problems=["label"], revised_prompt="p"
    )
    assert round_caption(make_round(), critique).startswith("<b>Round 2</b> · 8/10 · product 4/10")


def test_autopilot_texts() -> None:
    from bot.refine.models import RunPlan, RunProgress

    plan = RunPlan(rounds=3, drafts=2, threshold=8, autopilot=True)
    assert "at most <b>6 images</b>" in autopilot_plan_text(plan)
    progress = RunProgress(plan, "done", 2, best=make_round(), best_quality=7)
    assert "Round 2/3 · best 7/10" in autopilot_progress_text(progress)
    assert len(autopilot_best_caption(make_round(), None, None, False)) <= 1024


def test_photo_refusals_are_specific() -> None:
    assert "at most 20 MB" in photo_refusal_text("file_too_big", 20)
    assert "animation" in photo_refusal_text("animated", 20)
    assert "damaged" in photo_refusal_text("something new", 20)


@pytest.mark.parametrize("action", sorted(ROUND_ACTIONS | SESSION_ACTIONS | {HISTORY}))
def test_each_action_pattern_matches_only_its_own_data(action: str) -> None:
    data = encode_callback(action, 42)
    matching = [
        a
        for a in ROUND_ACTIONS | SESSION_ACTIONS | {HISTORY, SETTING}
        if callback_pattern(a).match(data)
    ]
    assert matching == [action]


def test_setting_pattern_and_forgeries_match_no_handler() -> None:
    assert callback_pattern(SETTING).match(encode_callback(SETTING, "quality=high"))
    actions = ROUND_ACTIONS | SESSION_ACTIONS | {HISTORY, SETTING}
    for data in ["x:1", "a:", "a:0", "a:01", "a:1:2", "a:1 ", "a:1\n", "a:１", "c:Quality=high"]:
        assert decode_callback(data) is None
        assert not any(callback_pattern(action).match(data) for action in actions)


# --- lengths in UTF-16 code units of the visible text (bot/ui/text.py) ---------------------

GRIN = "😀"  # outside the BMP: 2 UTF-16 code units
FLAG = "🇫🇷"  # two regional indicators: 4
CODER = "👩\u200d💻"  # a ZWJ sequence: 5
THUMB = "👍🏽"  # an emoji with a skin tone: 4


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("abc", 3),
        (GRIN, 2),
        (FLAG, 4),
        (CODER, 5),
        (THUMB, 4),
        ("中文字", 3),
        ("é", 1),
        ("e\u0301", 2),
        ("", 0),
    ],
)
def test_utf16_length(text: str, units: int) -> None:
    assert utf16_length(text) == units
    assert utf16_length(text) == len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("html", "units"),
    [
        ("<b>a&amp;b</b>", 3),
        ("&lt;&gt;&quot;&#39;&#x1F600;", 6),  # the last one is 😀: 2
        ("<b><i>nested</i> and <u>more</u></b>", 15),
        (f"<i>{GRIN * 3}</i>", 6),
        (f'<a href="tg://user?id=1">{FLAG}</a>', 4),
        ("<pre>中文</pre>", 2),
        ("&nbsp;", 6),  # not an entity Telegram decodes: shown as it is
    ],
)
def test_visible_length_counts_utf16_units_of_the_parsed_text(html: str, units: int) -> None:
    assert visible_length(html) == units


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("ab" + GRIN * 3, 5, "ab" + GRIN + "…"),  # never half of a surrogate pair
        ("ab" + GRIN * 3, 7, "ab" + GRIN * 2 + "…"),
        ("ab" + FLAG + FLAG, 8, "ab" + FLAG + "…"),  # never half a flag
        ("ab" + FLAG + FLAG, 7, "ab" + FLAG + "…"),
        ("x" + CODER + "y", 6, "x…"),  # never part of a ZWJ sequence
        ("x" + CODER + "y", 7, "x" + CODER + "y"),
        ("x" + THUMB + "y", 4, "x…"),  # never an emoji without its skin tone
        ("中文字中文字", 4, "中文字…"),
        ("cafe\u0301 noir", 5, "caf…"),  # never a letter without its accent
        ("cafe\u0301 noir", 6, "cafe\u0301…"),
        ("a & b <c>", 100, "a & b <c>"),
    ],
)
def test_shorten_counts_utf16_and_keeps_what_shows_as_one_character(
    text: str, limit: int, expected: str
) -> None:
    short = shorten(text, limit)
    assert short == expected
    assert utf16_length(short) <= limit
    short.encode("utf-8")  # no lone surrogate


def test_shorten_then_escape_keeps_entities_whole() -> None:
    short = escape(shorten("fish & chips & " * 20, 30))
    assert visible_length(short) <= 30
    assert "&amp;" in short and not re.search(r"&(?!amp;|lt;|gt;|quot;|#x27;)", short)
    parse_html(short)  # Telegram (the fake's parser) accepts it


@pytest.mark.parametrize(
    ("html", "limit", "expected"),
    [
        ("<b>bold &amp; more</b> tail", 10, "<b>bold &amp; mo…</b>"),
        ("<b>bold</b> <i>italic</i> tail", 6, "<b>bold</b>…"),
        ("<b><i>deep &lt;x&gt; text</i></b>", 8, "<b><i>deep &lt;x…</i></b>"),
        (f"<i>{GRIN * 5}</i>", 5, f"<i>{GRIN * 2}…</i>"),
        (f"{FLAG}{FLAG}{FLAG}", 9, f"{FLAG}{FLAG}…"),
        ('<a href="tg://user?id=1">Ana</a>, hi', 4, '<a href="tg://user?id=1">Ana</a>…'),
        ("short <b>one</b>", 100, "short <b>one</b>"),
    ],
)
def test_shorten_html_never_splits_tags_entities_or_emoji(
    html: str, limit: int, expected: str
) -> None:
    short = shorten_html(html, limit)
    assert short == expected
    assert visible_length(short) <= limit
    parse_html(short)


def test_split_html_parts_fit_and_keep_everything() -> None:
    line = f"<b>{GRIN} bold &amp; {FLAG}</b> <i>{CODER} 中文 &lt;x&gt;</i>"
    html = "\n".join([line] * 400) + "\n<pre>" + "y" * 5000 + "</pre>"
    parts = split_html(html, TEXT_LIMIT)
    assert len(parts) > 2
    for part in parts:
        assert visible_length(part) <= TEXT_LIMIT
        parse_html(part)  # tags closed at each cut and opened again in the next part
    assert "".join(plain_text(p) for p in parts).replace("\n", "") == plain_text(html).replace(
        "\n", ""
    )
    assert split_html("", 10) == [] and split_html("<b>ok</b>", 10) == ["<b>ok</b>"]
    assert [visible_length(p) for p in split_html(GRIN * 10, 5)] == [4, 4, 4, 4, 4]


def test_caption_fits_1024_utf16_units_with_an_emoji_critique() -> None:
    critique = Critique(
        score=7,
        fidelity=6,
        strengths=[f"{GRIN} bright {FLAG} colours " * 20] * 3,
        problems=[f"{CODER} the label {THUMB} is blurred " * 20] * 4,
        revised_prompt=f"{GRIN}{FLAG} a linen shirt {CODER} on oak " * 60,
    )
    caption = round_caption(make_round(acted_by_name=f"Ana {FLAG}"), critique, group=True)
    assert len(plain_text(caption)) < visible_length(caption) <= CAPTION_LIMIT
    assert "7/10 · product 6/10" in caption and "…" in caption
    parse_html(caption)
    best = autopilot_best_caption(make_round(), critique, None, True)
    assert visible_length(best) <= CAPTION_LIMIT


def test_a_caption_python_counts_as_fitting_is_fitted_in_utf16_units() -> None:
    """Each emoji is one Python character but two UTF-16 code units: a caption measured in
    characters would be 'fine' at 1024 and refused by Telegram."""
    critique = Critique(score=5, strengths=[], problems=[], revised_prompt=GRIN * 900)
    caption = round_caption(make_round(), critique)
    assert visible_length(caption) <= CAPTION_LIMIT
    assert plain_text(caption).count(GRIN) < 500


def test_short_caption_and_critique_texts_for_the_fallback() -> None:
    critique = Critique(
        score=6,
        strengths=[f"{GRIN} strength {n}" for n in range(40)],
        problems=[f"{FLAG} problem {n} " * 30 for n in range(40)],
        revised_prompt="p" * 3900 + GRIN,
    )
    short = short_round_caption(make_round(), critique, group=True)
    assert short.startswith("<b>Round 2</b> · 6/10") and CRITIQUE_BELOW in short
    assert visible_length(short) < 200
    texts = critique_texts(make_round(), critique, group=True)
    assert len(texts) > 1 and all(visible_length(t) <= TEXT_LIMIT for t in texts)
    whole = "".join(plain_text(t) for t in texts)  # a part may end inside a line
    assert all(s in whole for s in critique.strengths)
    assert all(" ".join(p.split()) in whole for p in critique.problems)
    assert "p" * 3900 + GRIN in whole  # the suggestion is not shortened
    for text in texts:
        parse_html(text)
    no_critique = critique_texts(make_round(), None, ContentBlocked("critic"))
    assert len(no_critique) == 1 and "blocked" in no_critique[0]


def test_stop_caption_and_edit_prompt_fit_in_utf16_units() -> None:
    caption = stop_caption(make_round(prompt=GRIN * 1200), 3)
    assert visible_length(caption) <= CAPTION_LIMIT and "…" in caption
    text = edit_prompt_text(3, FLAG * 2000, group=True, asked_by=None)
    assert visible_length(text) <= TEXT_LIMIT
    parse_html(text)


def test_the_caption_says_what_accept_will_do() -> None:
    edit = Critique(
        score=6,
        strengths=[],
        problems=["busy backdrop"],
        revised_prompt="a saree on a plain white backdrop",
        next_step="edit",
        edit_instruction="Make the backdrop plain white; keep the saree as it is",
    )
    caption = round_caption(make_round(), edit)
    assert "Accept edits this picture:" in caption and "Make the backdrop plain white" in caption
    redraw = edit.model_copy(update={"next_step": "redraw", "edit_instruction": None})
    caption = round_caption(make_round(), redraw)
    assert "Suggested next prompt:" in caption and "plain white backdrop" in caption
