"""RQ entry points: the contact job (dispatch), the sweeper and the worker process.

A top room beside `bot.api` and `bot.twilio`: it may import everything below it, and nothing
imports it but the CLI (jobs are enqueued by import path, through `bot.runtime.queueing`).
"""
