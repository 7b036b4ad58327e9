"""What the chat shows, one module per screen: every string, caption and keyboard.

All text is HTML (the Application's Defaults set parse_mode=HTML for every send); everything
that came from a user or a model is escaped. Telegram counts caption and message length after
entity parsing, so limits are checked against the visible text, not the markup (ui/text.py).
"""
