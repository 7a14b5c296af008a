"""Lead sources: Google Ads and Facebook Lead Ads webhooks, mapped web forms and Zapier, and CSV backfill.

A top room beside bot.api: adapters parse a platform's payload into the intake contract (LeadIn)
and end in the same create_lead path as POST /leads. It may import bot.api's helpers and every
room below; nothing imports it but bot.cli (and app.py, which registers its blueprint).
"""
