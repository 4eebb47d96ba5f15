"""The Telegram front end (python-telegram-bot 22): runner (composition), handlers by audience
(subscribers, moderation), the channel publisher, reaction counts and the error handler."""
