"""Per-process plumbing: settings → clients (DB engine, Redis, RQ queue, Twilio), dev defaults.

Every web and job process builds one `Services` from here. It may import `bot.store`, `bot.flows`
and `bot.settings`; channels, handoff and the entry points import it, never the other way round.
"""
