"""Shim, for one release: contact jobs queued before 0.2 name `bot.dispatch.contact`.

RQ imports a job's function by the path stored with it in Redis; new jobs name
`bot.jobs.dispatch.contact`. Remove this module once no queue can hold an old job.
"""

from bot.jobs.dispatch import contact

__all__ = ["contact"]
