"""What the bot says to explain itself: /start, /help, and the nudges towards a brief."""

from __future__ import annotations

HELP = (
    "<b>refinebot</b> turns a product description into a marketing image and improves it "
    "round by round.\n\n"
    "• Describe the product: <code>/new black-purple Banarasi saree, gold jewellery, plain "
    "backdrop</code> (in a private chat, just send the description).\n"
    "• I draw it, critique it against your brief and suggest the next step: an edit of this "
    "picture (keeping what is right) or a new picture.\n"
    "• <b>✅ Accept</b> takes the suggestion, <b>✏️ Edit</b> changes this picture as you say, "
    "<b>🎨 Redraw</b> draws a new one from the suggested prompt, <b>⏹ Stop</b> keeps that "
    "image and sends it at full resolution.\n"
    "• Send a <b>photo of your product</b> with a caption saying the scene (<i>on a marble "
    "table, soft morning light</i>): I keep your product and change what is around it.\n"
    "• <b>🔁 Auto</b> (or <code>/auto 3</code>) runs up to 3 rounds without asking, drawing "
    "several drafts each round and keeping the best; I say first how many images that can "
    "cost at most.\n"
    "• <b>📐 All formats</b> on the image Stop sends makes it a feed post, a Story and a "
    "banner (and, if /settings says so, a white marketplace image) at the platforms' exact "
    "sizes: I say first what it costs.\n"
    "• Buttons on older rounds still work: they continue from that round. Replying to a round's "
    "photo with text is an Edit of it.\n"
    "• In a group: <code>/new@bot …</code> or <code>@bot …</code> starts a session; everyone "
    "can steer it unless /settings says otherwise.\n\n"
    "/history lists this chat's sessions, /gallery sends a contact sheet, /settings picks the "
    "format, quality and critique language, /cancel stops a running round or autopilot, "
    "/usage shows today's rounds and their estimated cost, /help shows this."
)

START = "👋 Hi! " + HELP

NEW_USAGE = "Tell me what to draw: <code>/new red silk saree on a plain backdrop</code>"
PHOTO_NEEDS_CAPTION = (
    "📷 Nice photo! Send it again with a caption saying the scene you want, for example: "
    "<i>on a marble table, soft morning light</i>. I keep your product and change the rest."
)
UNKNOWN_MESSAGE = "Describe the product in words to start, or see /help."
