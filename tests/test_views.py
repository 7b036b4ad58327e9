"""The UI (bot/ui/): the callback-data codec and Telegram's length rules for captions and texts."""

from __future__ import annotations

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
from bot.ui.rounds import edit_prompt_text, round_caption, round_keyboard, stop_caption
from bot.ui.text import CAPTION_LIMIT, TEXT_LIMIT, visible_length
from storage.records import RoundRecord, RoundStatus


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
