"""A round in the chat: its captions, its keyboards (Accept / Edit / Stop / Auto, or Retry),
the texts of a round that failed or was cancelled, the Edit prompt, Stop's final caption and
the toasts of the round buttons."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.backends.critique import Critique
from bot.backends.errors import BackendError
from bot.refine.models import Actor
from bot.refine.sizes import SizeNote
from bot.ui.callbacks import ACCEPT, AUTO, EDIT, REDRAW, RETRY, STOP, encode_callback
from bot.ui.refusals import asked_text, backend_error_text, pixels
from bot.ui.text import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    count_of,
    fit_html,
    shorten,
    split_html,
    utf16_length,
    visible_length,
)
from storage.records import RoundRecord

EDIT_PROMPT = (
    "✏️ Send your own prompt for round {next_number}: say what to change in this picture, "
    "and everything else stays as it is. A suggestion, to copy and change:\n"
    "<pre>{suggestion}</pre>"
)
EDIT_PROMPT_GROUP = EDIT_PROMPT + "\n({who}reply to this message with your change.)"
STOP_NOT_SENT = (
    "The full-resolution image didn't go through yet. I'll keep trying, and send it as soon "
    "as Telegram takes it (⏹ Stop asks again now)."
)
SENDING_FULL_RESOLUTION = "Sending the full-resolution image…"
"""Stop's toast."""
ALREADY_SENT = "The full-resolution image is above."
"""Stop's toast when the image went out already (a double press)."""
NOTHING_TO_CANCEL = "Nothing is running right now."
EDIT_CANCELLED = "✏️ Edit cancelled."
CRITIQUE_BELOW = "💬 The critique is below."
"""Ends the short caption a round's photo gets when Telegram refuses the whole critique."""

_SUGGESTION_HEADING = "\n\nSuggested next prompt:\n"
_EDIT_HEADING = "\n\nAccept edits this picture:\n"


def _suggestion(critique: Critique) -> tuple[str, str]:
    """Return (heading, text) of what Accept will do: the critic's edit of this picture, or
    a new picture from its revised prompt."""
    if critique.suggests_edit and critique.edit_instruction is not None:
        return _EDIT_HEADING, critique.edit_instruction
    return _SUGGESTION_HEADING, critique.revised_prompt


_CREDIT_VERBS = {
    "accept": "accepted",
    "edit": "edited",
    "redraw": "redrawn",
    "brief": "started",
    "auto": "autopilot started",
}


def round_keyboard(round_id: int) -> InlineKeyboardMarkup:
    """Return a round's keyboard: Accept / Edit / Stop, then 🔁 Auto and 🎨 Redraw (a fresh
    picture from the suggested prompt) on a second row."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("✅ Accept", callback_data=encode_callback(ACCEPT, round_id)),
                InlineKeyboardButton("✏️ Edit", callback_data=encode_callback(EDIT, round_id)),
                InlineKeyboardButton("⏹ Stop", callback_data=encode_callback(STOP, round_id)),
            ],
            [
                InlineKeyboardButton("🔁 Auto", callback_data=encode_callback(AUTO, round_id)),
                InlineKeyboardButton("🎨 Redraw", callback_data=encode_callback(REDRAW, round_id)),
            ],
        ]
    )


def retry_keyboard(round_id: int) -> InlineKeyboardMarkup:
    """Return the keyboard of a round that produced no image: one Retry button."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("🔁 Retry", callback_data=encode_callback(RETRY, round_id))]]
    )


def working_on_round_toast(number: int) -> str:
    """Return the toast of an Accept or Retry press that began round `number`."""
    return f"Working on round {number}…"


def _credit(round: RoundRecord, group: bool) -> str:
    """Return ` · accepted by Ana` (in groups, for a round someone named acted on), or ''."""
    if not group or not round.acted_by_name:
        return ""
    verb = _CREDIT_VERBS.get(round.action, "")
    return f" · {verb} by {escape(round.acted_by_name)}" if verb else ""


_REDRAWN_BECAUSE = {
    "no_edits": "this image server can't edit pictures",
    "picture_gone": "the picture to edit is no longer stored",
}


def kind_text(round: RoundRecord) -> str:
    """Return how the round was made: `✎ edited` (its parent's picture, changed), `✎ edit of
    an earlier round`, `↻ new picture`, or `↻ redrawn (why the edit asked for could not be
    made)`."""
    if round.edit_of is not None:
        return (
            "✎ edited" if round.edit_of == round.parent_round_id else "✎ edit of an earlier round"
        )
    why = _REDRAWN_BECAUSE.get(round.kind_note or "")
    return f"↻ redrawn ({why})" if why else "↻ new picture"


def size_note_text(round: RoundRecord) -> str:
    """Return the line that says the round's picture is not the size asked for (`📐 server
    returned 640×480, not the 1024×1024 asked for`), or '' when it is."""
    note = SizeNote.parse(round.size_note)
    if note is None:
        return ""
    return (
        f"📐 server returned {pixels(note.width, note.height)}, not the "
        f"{escape(asked_text(note.asked))} asked for"
    )


def _with_size_note(first_line: str, round: RoundRecord) -> str:
    note = size_note_text(round)
    return f"{first_line}\n{note}" if note else first_line


def drawing_caption(round: RoundRecord) -> str:
    """Return the caption of a round's preview: a partial image while the picture is drawn."""
    return f"<b>Round {round.number}</b> · drawing…"


def critiquing_caption(round: RoundRecord) -> str:
    """Return the caption the round's photo has while the critic looks at it."""
    return _with_size_note(f"<b>Round {round.number}</b> · 🔍 critiquing…", round)


def _caption_header(round: RoundRecord, critique: Critique | None, group: bool) -> str:
    """Return a round caption's first line (round, score, fidelity, how it was made, credit)
    and, when its picture is not the size asked for, a line saying so."""
    header = f"<b>Round {round.number}</b>"
    if critique is not None:
        header += f" · {critique.score}/10"
        if critique.fidelity is not None:
            header += f" · product {critique.fidelity}/10"
    return _with_size_note(header + f" · {kind_text(round)}" + _credit(round, group), round)


def _no_critique_note(error: BackendError | None) -> str:
    note = backend_error_text(error) if error else "No critique for this round."
    return escape(note) + "\nAccept runs the same prompt again."


def round_caption(
    round: RoundRecord,
    critique: Critique | None,
    error: BackendError | None = None,
    group: bool = False,
) -> str:
    """Return the round's caption: score, what works, problems and the suggested revision.

    Always fits Telegram's caption limit (1024 UTF-16 code units of visible text, see
    bot/ui/text.py): the suggestion is shortened last (Accept still uses all of it).
    """
    header = _caption_header(round, critique, group)
    if critique is None:
        return fit_html(header + "\n" + _no_critique_note(error), CAPTION_LIMIT)

    lines = [header]
    lines += [f"✓ {escape(shorten(s, 120))}" for s in critique.strengths[:2]]
    lines += [f"✗ {escape(shorten(p, 160))}" for p in critique.problems[:3]]
    body = "\n".join(lines)
    heading, proposed = _suggestion(critique)
    budget = CAPTION_LIMIT - visible_length(body) - utf16_length(heading) - 2
    suggestion = escape(shorten(proposed, max(budget, 40)))
    caption = f"{body}{heading}<i>{suggestion}</i>"
    while visible_length(caption) > CAPTION_LIMIT and len(lines) > 1:
        lines.pop()  # only when strengths/problems alone are huge
        caption = "\n".join(lines) + f"{heading}<i>{suggestion}</i>"
    return fit_html(caption, CAPTION_LIMIT)  # only a header that is itself huge gets here


def short_round_caption(
    round: RoundRecord,
    critique: Critique | None,
    error: BackendError | None = None,
    group: bool = False,
) -> str:
    """Return the caption a round's photo gets when Telegram refuses `round_caption` as too
    long: the first line (score included) and a pointer to the critique sent below."""
    return fit_html(_caption_header(round, critique, group) + "\n" + CRITIQUE_BELOW, CAPTION_LIMIT)


def critique_texts(
    round: RoundRecord,
    critique: Critique | None,
    error: BackendError | None = None,
    group: bool = False,
) -> list[str]:
    """Return the round's whole critique, nothing shortened, as text messages (each within
    Telegram's 4096 UTF-16 code units): what goes below `short_round_caption`."""
    header = _caption_header(round, critique, group)
    if critique is None:
        text = header + "\n" + _no_critique_note(error)
    else:
        lines = [header]
        lines += [f"✓ {escape(shorten(s, TEXT_LIMIT))}" for s in critique.strengths]
        lines += [f"✗ {escape(shorten(p, TEXT_LIMIT))}" for p in critique.problems]
        heading, proposed = _suggestion(critique)
        text = "\n".join(lines) + f"{heading}<i>{escape(proposed.strip())}</i>"
    return split_html(text, TEXT_LIMIT)


def failed_text(round: RoundRecord, error: BackendError | None) -> str:
    """Return the message shown when a round produced no image (it carries a Retry button)."""
    if error is None or error.kind == "interrupted":
        return f"⚠️ Round {round.number} was interrupted by a restart. Press Retry to run it again."
    return f"⚠️ Round {round.number}: {escape(backend_error_text(error))}"


def cancelled_caption(round: RoundRecord) -> str:
    """Return the caption of a cancelled round's photo (its keyboard is removed)."""
    return f"<b>Round {round.number}</b> · ⏹ cancelled"


def cancelled_text(round: RoundRecord) -> str:
    """Return the message of a round cancelled before it had a photo."""
    return f"⏹ Round {round.number} cancelled."


def stop_caption(round: RoundRecord, round_count: int, size: tuple[int, int] | None = None) -> str:
    """Return the one-line summary sent with the kept round's original image: the rounds, the
    round kept, the image's real pixel `size` (saying when it is smaller than the size asked
    for, or not of the shape asked for) and the final prompt."""
    prefix = f"⏹ Done after {count_of(round_count, 'round')}. Kept round {round.number}"
    if size is not None:
        prefix += f" ({pixels(*size)} px"
        note = SizeNote.parse(round.size_note)
        if note is not None:
            how = "smaller than" if note.smaller else "not"
            prefix += f", {how} the {asked_text(note.asked)} asked for"
        prefix += ")"
    prefix += ". Final prompt: "
    budget = CAPTION_LIMIT - utf16_length(prefix)
    return escape(prefix) + f"<i>{escape(shorten(round.prompt, budget))}</i>"


def edit_prompt_text(
    next_number: int, suggestion: str, group: bool, asked_by: Actor | None = None
) -> str:
    """Return the message asking for the user's own prompt, with the suggestion to copy;
    it always fits Telegram's limit of 4096 UTF-16 code units.

    In groups it names who pressed Edit (`asked_by`, a mention): Telegram opens the reply
    field only for users a selective force-reply mentions.
    """
    template = EDIT_PROMPT_GROUP if group else EDIT_PROMPT
    who = ""
    if asked_by is not None and asked_by.user_id > 0:  # not an anonymous admin's group
        who = f'<a href="tg://user?id={asked_by.user_id}">{escape(asked_by.name)}</a>, '
    fixed = visible_length(template.format(next_number=next_number, suggestion="", who=who))
    text = template.format(
        next_number=next_number,
        suggestion=escape(shorten(suggestion, max(TEXT_LIMIT - fixed - 1, 40))),
        who=who,
    )
    return fit_html(text, TEXT_LIMIT)
