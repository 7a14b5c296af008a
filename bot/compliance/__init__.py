"""The compliance gate every outbound touch passes: opt-out, consent, and the calling rules table.

gate.py (check_touch, record_verdict), rules.py (ivr_flows/calling_rules.yaml), optout.py (the record
per number, keywords, DNC files). It sits below channels, jobs and handoff, and imports only
`bot.runtime`, `bot.store`, `bot.flows` and settings.
"""
