"""Chaos against a real broker of its own: 3 cameras, 2 service instances, random SIGKILLs, one
process pause (SIGSTOP for twice the session timeout, then SIGCONT: the instance wakes up as a
zombie member whose partitions moved on) and one broker restart on the same data directory, in
each delivery mode (10 kills each: 20 in the suite, inside the 6-minute budget on 2 cores). At-least-once restarts the broker between the
kills; exactly-once restarts it after the last kill, so the instances must recover from the
outage by themselves. The test also acts as the instances' supervisor (as Kubernetes would): an
instance that exits by itself (fail-stop) is started again and counted, and at the end every
instance must stop on SIGTERM with exit code 0 (or end in a fail-stop when a commit wedged by the
broker restart times out meanwhile). The published event ids must equal an offline oracle's
exactly (nothing lost, no id changed); commits must have advanced before the kills (so it is not
one replay from zero); in exactly-once mode a read_committed reader sees each id once,
in at-least-once mode the duplicates are counted and printed.

The model is a tiny TSM-ResNet-18 whose output follows the frames' brightness (see
``brightness_checkpoint``), so labels change along the clips and smoothing's hysteresis, minimum
and maximum lengths all take part; the clips' brightness ramps make several events per camera.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import pytest
from chaos_setup import Instance, Supervisor, brightness_checkpoint, chaos_config, committed, oracle_events, write_video

from soccerkd.config import dump_config
from stream.kafka.events import iter_records, read_events

pytestmark = pytest.mark.timeout(600)   # a mode takes 150-350 s; the broker restart and a fail-stop restart add to it
KILLS = int(os.environ.get("SOCCERKD_CHAOS_KILLS", "10"))   # per delivery mode: 20 in the suite
CAMERAS = ("cam-1", "cam-2", "cam-3")
FRAMES = 1000   # 40 s per camera, sent in real time while the kills happen


@pytest.mark.parametrize("delivery", ["exactly_once", "at_least_once"])
def test_kills_and_a_broker_restart_lose_no_event_and_change_no_id(delivery, tmp_path):
    from stream.dev.broker import LocalBroker
    from stream.errors import BrokerError
    from stream.app.ingest import IngestOptions, ingest

    broker = LocalBroker(tmp_path / "broker")
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"could not start the chaos suite's Kafka broker: {exc}", pytrace=False)
    rng = random.Random(f"chaos-{delivery}")
    instances: list[Instance] = []
    supervisor: Supervisor | None = None
    try:
        cfg = chaos_config(broker.bootstrap, brightness_checkpoint(tmp_path / "bright.pt"), delivery)
        broker.create_topic(cfg.kafka.frames_topic, partitions=3)
        broker.create_topic(cfg.kafka.events_topic)
        broker.create_topic(cfg.kafka.dlq_topic)
        # three live cameras, in real time, while instances and the broker are killed and restarted
        feeds = [threading.Thread(target=ingest, kwargs=dict(progress=False, options=IngestOptions(
            source=str(write_video(tmp_path / f"{cam}.avi", FRAMES, seed=i)), camera_id=cam,
            bootstrap=cfg.kafka.bootstrap, topic=cfg.kafka.frames_topic, frames_per_batch=4, pacing="realtime",
            max_side=64))) for i, cam in enumerate(CAMERAS)]
        for feed in feeds:
            feed.start()
        cfg_path = tmp_path / "serve.yaml"
        dump_config(cfg, cfg_path)
        logs = tmp_path / "logs"
        logs.mkdir()
        instances = [Instance(f"chaos-{k}", cfg_path, logs) for k in range(2)]
        for inst in instances:
            inst.start()
        isolation = "read_committed" if delivery == "exactly_once" else "read_uncommitted"
        supervisor = Supervisor(instances)
        restart_broker_after = KILLS if delivery == "exactly_once" else KILLS // 2
        kills, commits_at_kill, broker_restarts, pauses = 0, [], 0, 0
        deadline = time.monotonic() + 300
        while kills < KILLS and time.monotonic() < deadline:
            if kills == restart_broker_after and broker_restarts == 0:
                broker.restart(down_s=2.0)   # same data directory and port
                broker_restarts += 1
            # once the live feeds have ended there is no work left for a restarted instance to show:
            # the remaining kills land at once (restart and recovery only) instead of each waiting
            # 30 s for progress that cannot come (CI saw 296 s for this mode, most of it such waits)
            feeding = any(feed.is_alive() for feed in feeds)
            if kills == KILLS // 3 and pauses == 0:   # frozen for twice the session timeout, mid-work
                frozen = rng.choice(instances)
                if feeding:
                    frozen.wait_progress(30)
                frozen.pause(2 * cfg.kafka.session_timeout_ms / 1000)
                pauses += 1
            victim = rng.choice(instances)
            if feeding:
                victim.wait_progress(30)      # a random moment of its work, not of its start-up
            time.sleep(rng.uniform(0.0, 1.5))
            commits_at_kill.append(sum(committed(cfg).values()))
            with supervisor.paused():
                victim.kill()
                kills += 1
                time.sleep(rng.uniform(0.0, 1.0))
                victim.start()
        if broker_restarts == 0:   # exactly-once: after the last kill, and no kill comes to the rescue
            broker.restart(down_s=2.0)
            broker_restarts += 1
        for feed in feeds:
            feed.join(180)
        assert not any(feed.is_alive() for feed in feeds), "the live feeds should have ended"
        oracle = oracle_events(cfg)
        expected = {e.event_id for e in oracle}
        assert len(expected) >= 3 * 12, f"only {len(expected)} oracle events: the model should switch labels"
        seen = read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=180, idle_s=None,
                           isolation=isolation, until=lambda evs: {e.event_id for e in evs} >= expected)
        supervisor.stop()
        codes = [inst.stop() for inst in instances]
        records = [json.loads(r.value)["event_id"] for r in iter_records(
            cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=30, idle_s=3, isolation=isolation)]
        final_commits = sum(committed(cfg).values())
    finally:
        if supervisor is not None:
            supervisor.stop()
        for inst in instances:   # none outlives a failed run
            if inst.alive():
                inst.proc.kill()
        broker.stop()
    published = set(records)
    lost, changed = expected - published, published - expected
    duplicates = len(records) - len(published)
    consumed = sum(sum(inst.consumed) for inst in instances)
    total = 3 * (FRAMES // 4)
    report = (f"[chaos {delivery}] kills={kills} pauses={pauses} broker_restarts={broker_restarts} "
              f"self_exits={supervisor.restarts} events={len(expected)} "
              f"lost={len(lost)} changed={len(changed)} duplicates={duplicates} "
              f"replayed_messages~{max(0, consumed - total)} (~{max(0, consumed - total) / max(1, kills):.1f}/kill) "
              f"commits_at_kills={commits_at_kill} final_commit_sum={final_commits} exit_codes={codes}")
    print(report)
    if changed:
        got = {e.event_id: e for e in seen}
        for eid in sorted(changed)[:8]:
            e = got.get(eid)
            print("  changed:", e and (e.camera_id, e.label, e.start_seq, e.end_seq, e.epoch))
        print("  oracle:", sorted((e.camera_id, e.label, e.start_seq, e.end_seq, e.epoch) for e in oracle)[:40])
    assert kills == KILLS and broker_restarts == 1 and pauses == 1, report
    # A SIGTERM may land while a commit is still wedged by the broker restart; the commit then
    # times out and the instance fails stop (exit 1) instead of exiting 0, or, when the signal
    # comes after its fatal error, while CPython tears down (handlers already reset: -15).
    # Either is the end of a run that lost nothing (checked below); a hang (SIGKILL, -9), a
    # SIGTERM that kills a healthy instance (-15 without a fail-stop) or any other code is not.
    assert all(code == 0 or (code in (1, -signal.SIGTERM) and inst.fail_stopped())
               for code, inst in zip(codes, instances)), \
        "every instance should stop on SIGTERM (or fail stop), not hang or die by the signal: " + report
    assert not lost and not changed, report
    assert {e.event_id for e in seen} >= expected
    assert sum(1 for c in commits_at_kill if c > 0) >= KILLS // 2, "commits should advance between kills: " + report
    assert max(commits_at_kill) > 0 and final_commits >= max(commits_at_kill)
    if delivery == "exactly_once":
        assert duplicates == 0, report
