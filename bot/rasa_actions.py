"""Shim, for one release: `python -m rasa_sdk --actions bot.rasa_actions` keeps working.

The actions live in `bot.channels.rasa_actions`; importing them registers them with the Rasa SDK.
"""

from bot.channels.rasa_actions import *  # noqa: F403 - the SDK finds Action subclasses by import
