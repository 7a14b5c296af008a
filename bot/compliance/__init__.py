"""The compliance gate every outbound touch passes: consent, opt-out, calling hours in the lead's time.

It sits below channels, jobs and handoff, and imports only `bot.store`, `bot.flows` and settings.
"""
