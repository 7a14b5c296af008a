"""Storage: the engine, the tables, prepared statements, lead creation, the timeline and the read models.

The bottom room beside `bot.flows` and `bot.settings`: it imports neither Flask, Redis nor Twilio,
and nothing of leadbot above it.
"""
