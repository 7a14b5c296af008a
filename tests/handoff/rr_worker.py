"""A worker process for the round-robin fairness test: waits for 'go', matches N leads, prints picks.

Run as: python -m tests.handoff.rr_worker REDIS_URL equal|weighted N
Prints one JSON list of [rotation_seq, rep name] pairs on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

import redis

from handoff.matching import match_rep
from tests.handoff.factories import TUESDAY_10_CHICAGO, rep, roster

GO_KEY = "test:rr:go"
READY_KEY = "test:rr:ready"
ROSTERS = {
    "equal": roster(rep("Ann", "+13125550001"), rep("Bob", "+13125550002"), rep("Cid", "+13125550003")),
    "weighted": roster(rep("Ann", "+13125550001", weight=3), rep("Bob", "+13125550002", weight=2),
                       rep("Cid", "+13125550003", weight=1)),
}


@dataclass
class Lead:
    """A roofing lead from Chicago."""

    phone: str = "+13125550100"
    service: str = "roofing"
    language: str = "en"


def main(url: str, kind: str, count: int) -> None:
    """Wait for the start signal so both processes really run at once, then match."""
    client = redis.Redis.from_url(url)
    client.rpush(READY_KEY, "ready")
    client.blpop([GO_KEY], timeout=60)
    picks = []
    for _ in range(count):
        m = match_rep(ROSTERS[kind], Lead(), client, now=TUESDAY_10_CHICAGO)
        picks.append([m.rotation_seq, m.rep.name])
        time.sleep(0.001)  # like real handoffs, picks are spread out: a busy machine still interleaves
    print(json.dumps(picks))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
