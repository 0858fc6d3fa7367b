"""Telegram for commissioners (python-telegram-bot 22): notifications with 认领/办结/查看 buttons,
replies relayed to enterprises, ``/mycases``, ``/case``, ``/duty``; optionally the enterprise
dialogue for chats that are not commissioners. On when ``telegram_token`` is set; see
:mod:`bot.channels.telegram.channel` for the wiring."""
