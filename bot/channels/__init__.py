"""Channels: the conversation core and the voice, text and email conversations, with no Flask.

They turn a flow engine step into TwiML or a text, and hand outcomes to `handoff`. They may import
`handoff`, `bot.compliance`, `bot.runtime`, `bot.store` and `bot.flows`; web routes and jobs call them.
"""
