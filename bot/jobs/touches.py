"""RQ job: send one planned touch (a retry call, a text, a nurture step, a callback) when it is due."""

from __future__ import annotations

from bot.channels.touchsend import run_touch
from bot.runtime.services import current


def run(touch_id: str) -> str:
    """Send the touch once; safe to run twice, concurrently, or after a crash (see run_touch)."""
    return run_touch(current(), touch_id)
