"""The pure rule on a drawn picture's size against the size asked for (bot/refine/sizes.py),
what each backend says it asked for (bot/backends/formats.py), and how the chat words it."""

from __future__ import annotations

import pytest

from bot.backends.formats import (
    FORMATS,
    FREE_SIZE_MODELS,
    SizeAsked,
    openai_size,
    openai_size_asked,
    stability_aspect_ratio,
    stability_size_asked,
)
from bot.refine.sizes import MIN_SIDE, SizeNote, check_size
from bot.ui.refusals import size_refusal_text
from bot.ui.rounds import size_note_text, stop_caption
from tests.fakes.stability_server import ASPECT_SIZES
from tests.test_views import make_round

SQUARE = SizeAsked(1024, 1024, "1024x1024")


@pytest.mark.parametrize(
    ("width", "height", "problem"),
    [
        (1, 1, "too_small"),
        (MIN_SIDE - 1, 1024, "too_small"),
        (1, 10_000, "too_small"),
        (100, 10_000, "too_thin"),
        (10_000, 1000, "too_thin"),
    ],
)
def test_a_degenerate_picture_is_unusable_whatever_was_asked(width, height, problem) -> None:
    for asked in (SQUARE, stability_size_asked("16:9"), None):
        assert check_size(asked, width, height).problem == problem


def test_a_long_shape_is_usable_when_it_was_asked_for() -> None:
    asked = SizeAsked(9, 1, "9:1", exact=False)
    check = check_size(asked, 2304, 256)
    assert check.problem is None and check.note is None


@pytest.mark.parametrize(
    ("width", "height"),
    [(1024, 1024), (1008, 1008), (2048, 2048), (MIN_SIDE, MIN_SIDE * 8)],
)
def test_no_note_for_the_size_asked_or_nothing_exact(width, height) -> None:
    assert check_size(None, width, height).note is None
    if width == height:  # the asked square: exactly, rounded by a server, or larger
        assert check_size(SQUARE, width, height).note is None


@pytest.mark.parametrize(
    ("width", "height", "smaller"),
    [(640, 480, True), (512, 512, True), (1536, 1024, False), (1024, 1536, False)],
)
def test_a_usable_picture_of_another_size_is_kept_with_a_note(width, height, smaller) -> None:
    check = check_size(SQUARE, width, height)
    assert check.problem is None
    note = check.note
    assert note == SizeNote(width, height, "1024x1024")
    assert SizeNote.parse(str(note)) == note and note.smaller is smaller


def test_stability_native_sizes_are_the_ratio_asked_for() -> None:
    # tests/fakes/stability_server.py: ASPECT_SIZES, Stability's own pixel size per ratio.
    for ratio, (width, height) in ASPECT_SIZES.items():
        asked = stability_size_asked(ratio)
        assert asked is not None and not asked.exact
        assert check_size(asked, width, height).note is None, ratio
    assert check_size(stability_size_asked("16:9"), 1024, 1024).note == SizeNote(1024, 1024, "16:9")
    assert not SizeNote(512, 512, "16:9").smaller  # a ratio says nothing of the pixel count


def test_every_preset_asks_for_what_it_sends() -> None:
    for preset in FORMATS:
        for model in ("gpt-image-1", *FREE_SIZE_MODELS):
            size = openai_size(preset, model)
            asked = openai_size_asked(size)
            assert asked is not None and asked.exact and asked.label == size
            assert (f"{asked.width}x{asked.height}") == size
        ratio = stability_aspect_ratio(preset)
        assert stability_size_asked(ratio) is not None
    assert openai_size_asked("auto") is None
    assert openai_size_asked("0x0") is None
    assert stability_size_asked("wide") is None


def test_the_sentences_name_the_size_received_and_asked() -> None:
    assert size_refusal_text(check_size(SQUARE, 1, 1)) == (
        "The image service sent back a 1×1 picture instead of the 1024×1024 asked for: too "
        "small to use. Try again."
    )
    assert size_refusal_text(check_size(None, 100, 10_000)) == (
        "The image service sent back a 100×10000 picture: too thin to use. Try again."
    )
    noted = make_round(size_note="640x480 for 1024x1024")
    assert size_note_text(noted) == "📐 server returned 640×480, not the 1024×1024 asked for"
    assert size_note_text(make_round()) == ""
    assert size_note_text(make_round(size_note="garbage")) == ""


def test_stop_caption_states_the_real_pixel_size() -> None:
    assert "Kept round 2 (1024×1024 px). Final prompt" in stop_caption(
        make_round(), 1, (1024, 1024)
    )
    smaller = stop_caption(make_round(size_note="640x480 for 1024x1024"), 2, (640, 480))
    assert "(640×480 px, smaller than the 1024×1024 asked for)" in smaller
    other = stop_caption(make_round(size_note="1024x1024 for 16:9"), 2, (1024, 1024))
    assert "(1024×1024 px, not the 16:9 asked for)" in other
    assert "px" not in stop_caption(make_round(), 1)
