"""Telegram-side helpers shared by the handlers and the presenters: the typed handler context,
reading updates and replying to them, and sending images once."""
