"""``soccerkd serve``: wires Kafka, the pipeline, the producer and metrics; graceful shutdown.

One loop on the main thread: ``poll`` (kafka-python's IO thread fetches in the background) ->
start decoding the poll's frames in one batch (decode threads, or nvJPEG) -> run at most one
due inference batch meanwhile -> publish its events -> add the decoded frames to their windows
(bad messages go to the dead-letter topic) -> pause/resume partitions by the number of waiting
windows -> every ``commit_interval_ms``: flush the producer, check every send succeeded, commit
the pipeline's commit points. Because one batch runs per iteration, ``poll`` keeps being called
while partitions are paused. SIGTERM/SIGINT set a flag; the loop then runs the waiting windows,
publishes, commits and closes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from stream.config import StreamConfig
from stream.errors import FailStop, StreamError
from stream.metrics import LoopHealth, Metrics, MetricsServer
from stream.pipeline import Outputs, Pipeline, SourceRef, TopicPartition
from stream.publisher import Publisher, PublishError, TransactionAborted
from stream.signals import record_stop_signals

log = logging.getLogger("soccerkd.serve")
BROKER_CHECK_S = 0.5   # how often the loop refreshes /readyz's view of the broker (a cheap local check)
DLQ_HEADROOM = 64 * 1024   # bytes kept for a dead letter's headers and record overhead
STALL_CHECK_S = 15.0   # a partition behind its end that did not move for this long: reset, then fail stop


class StreamService:
    """The running service. ``run()`` blocks until :meth:`stop` (or a signal) is called."""

    def __init__(self, config: StreamConfig, *, predictor: Any = None, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.clock = clock
        self._owns_predictor = predictor is None   # an injected predictor is its owner's to close
        if predictor is None:
            from stream.inference import TorchPredictor

            m = config.model
            predictor = TorchPredictor.from_checkpoint(m.checkpoint, device=m.device, amp=m.amp,
                                                       cpu_threads=m.cpu_threads, decode=m.decode,
                                                       decode_threads=config.decode_threads, jpeg_draft=m.jpeg_draft)
        self.shadow: Any = None
        if config.shadow.enabled:   # the teacher on a sample of windows, on spare capacity only
            from stream.shadow import ShadowedPredictor, ShadowRunner

            self.shadow = ShadowRunner.from_config(
                config.shadow, student=predictor, registry=self.metrics.registry,
                spare=lambda: self.pipeline.pending < config.batching.max_batch).start()
            predictor = ShadowedPredictor(predictor, self.shadow)
        self.predictor = predictor
        self.pipeline = Pipeline(predictor, config=config.pipeline_config(), metrics=self.metrics, clock=clock)
        self._stop = threading.Event()
        self.health = LoopHealth(max_stall_s=config.liveness_timeout_s)  # /healthz: the loop ticks
        self._consumer: Any = None
        self._producer: Any = None
        self._publisher: Publisher | None = None
        self._new: list[TopicPartition] = []
        self._paused = False
        self._broker_ok = False
        self._missing_topic: str | None = None
        self._last_positions: dict[TopicPartition, int] = {}   # the fetch watchdog's (see _unstall)
        self._reset_at: dict[TopicPartition, int] = {}
        self._messages_at_check = 0
        self.stopped_by: int | None = None   # the signal that stopped the service, if one did
        self._server: MetricsServer | None = None
        self._assigned: set[TopicPartition] = set()
        self.counts = {"messages": 0, "dlq": 0, "events": 0, "windows": 0, "commits": 0}

    # -- control ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self, *, received: list[int] | None = None) -> None:
        """SIGTERM/SIGINT stop the loop cleanly. ``received``: the signals that
        :func:`stream.signals.record_stop_signals` caught while this service was being built; the
        last one stops it at once."""
        import faulthandler

        def on_signal(signum: int, _frame: Any) -> None:
            self.stopped_by = signum
            self.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        if received:
            on_signal(received[-1], None)
        # `kill -USR1 <pid>` prints every thread's stack to stderr: where a stuck instance waits
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    def ready(self) -> tuple[bool, str]:
        if self.predictor is None:
            return False, "model not loaded"
        if self._missing_topic:
            return False, f"topic {self._missing_topic!r} missing"
        if not self._broker_ok:
            return False, "broker not reachable"
        if not self._assigned:
            return False, "no partitions assigned"
        return True, "ready"

    # -- main loop ----------------------------------------------------------------------------
    def run(self, *, max_seconds: float | None = None) -> dict[str, int]:
        from kafka.errors import KafkaConnectionError

        from stream import kafka as k

        cfg = self.config.kafka
        if self._stop.is_set():   # told to stop while the model loaded: nothing consumed, nothing to do
            log.info("stopped before start")
            self.close()   # the model and its decode threads
            return dict(self.counts)
        if self.config.metrics_port is not None:
            self._server = MetricsServer(self.metrics, port=self.config.metrics_port, host=self.config.metrics_bind,
                                         ready=self.ready,
                                         alive=self.health.alive).start()
        exactly_once = cfg.delivery == "exactly_once"
        self._producer = k.make_producer(cfg, transactional=exactly_once)
        self._publisher = Publisher(self._producer, transactional=exactly_once, timeout_s=cfg.commit_timeout_s)
        self._consumer = k.make_consumer(cfg)
        self._broker_ok = True
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            if not self._wait_for_topic(cfg.frames_topic):   # stopped while waiting
                return dict(self.counts)
            self._consumer.subscribe([cfg.frames_topic], listener=k.make_listener(
                revoked=self._on_revoked, assigned=self._on_assigned, lost=self._on_lost))
            last_commit = last_log = last_check = last_stall_check = time.monotonic()
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self.health.tick()
                # kafka-python abandons a join that does not finish within the poll timeout, and a
                # busy loop of short polls then rejoins forever: give rebalances a long poll.
                if k.group_busy(self._consumer):
                    wait_ms = 1000
                else:
                    wait_ms = 0 if self.pipeline.due() else max(1, min(100, int(self.config.batching.max_wait_ms)))
                try:
                    records = self._consumer.poll(timeout_ms=wait_ms)
                except KafkaConnectionError as exc:  # broker out of reach: not ready, keep trying
                    self._broker_ok = False
                    log.warning("poll: broker unreachable (%s); retrying", exc)
                    self._stop.wait(0.5)
                    continue
                self._restore_new()
                self._step_while_decoding([rec for recs in records.values() for rec in recs])
                self._backpressure()
                now = time.monotonic()
                if (now - last_commit) * 1000 >= cfg.commit_interval_ms:
                    self._publish(self.pipeline.close_idle())
                    self.commit()
                    self._update_lag()
                    last_commit = now
                if now - last_check >= BROKER_CHECK_S:   # /readyz follows the broker within seconds
                    self._check_broker()
                    last_check = now
                if now - last_stall_check >= STALL_CHECK_S:
                    self._unstall()
                    last_stall_check = now
                if now - last_log >= self.config.log_every_s:
                    self._report()
                    last_log = now
            log.info("stopping: running %d waiting windows, publishing, committing", self.pipeline.pending)
            self._publish(self.pipeline.drain())
            self.commit(final=True)
        except BaseException as exc:
            # Fail-stop: whatever went wrong, no later commit (close, revoke) may pass the work
            # that did not happen; the restart replays from the last good commit.
            if self._publisher is not None:
                self._publisher.poison(exc)
            if isinstance(exc, FailStop):   # logged here too: a supervisor's SIGTERM may come before the CLI's line
                log.error("failing stop: %s", exc)
            raise
        finally:
            self.close()
        return dict(self.counts)

    def _wait_for_topic(self, topic: str) -> bool:
        """Wait (until stopped) for the frames topic; one line says it is missing, and so does
        /readyz. False when stopped first."""
        from stream.topics import missing_topic_message

        while not self._consumer.partitions_for_topic(topic):
            if self._missing_topic is None:
                self._missing_topic = topic
                log.warning("%s; waiting for it", missing_topic_message(topic, self.config.kafka.bootstrap,
                                                                         "kafka.frames_topic"))
            self.health.tick()
            if self._stop.wait(1.0):
                return False
        if self._missing_topic is not None:
            log.info("topic %r now exists; starting", topic)
        self._missing_topic = None
        return True

    def _step_while_decoding(self, recs: list[Any]) -> None:
        """Start decoding one poll's records as a batch, run a due inference batch meanwhile, then
        add the frames to their windows; the rejected records go to the dead-letter topic."""
        # the key travels with the ref: a record not keyed by its camera id is dead-lettered
        by_ref = {SourceRef(r.topic, r.partition, r.offset, key=r.key if r.key is not None else b""): r for r in recs}
        self.counts["messages"] += len(recs)
        offer = self.pipeline.begin_offer([(r.value, ref) for ref, r in by_ref.items()]) if recs else None
        self._publish(self.pipeline.step())
        if offer is not None:
            for bad in self.pipeline.finish_offer(offer):
                self._dead_letter(by_ref[bad.ref], bad.ref, bad.error)

    def _dead_letter(self, rec: Any, ref: SourceRef, error: BaseException) -> None:
        """Send a rejected message to the dead-letter topic with its context (headers); a value
        too large for that topic is replaced by an empty one and a header says so, so this path
        cannot fail on size."""
        from stream.kafka import dlq_headers

        self.pipeline.skip(ref)
        value, replaced = rec.value, None
        if value is not None and len(value) > self.config.kafka.max_request_size - DLQ_HEADROOM:
            value, replaced = b"", len(value)
        reason = getattr(error, "reason", "processing_error")
        key = rec.key if rec.key is None or len(rec.key) <= 4096 else rec.key[:4096]
        self._publisher.send(self.config.kafka.dlq_topic, key=key, value=value,
                             headers=dlq_headers(ref, error, record=rec, group=self.config.kafka.group_id,
                                                 replaced=replaced))
        self.metrics.dead_lettered(reason)
        self.counts["dlq"] += 1
        log.warning("dead-lettered %s[%d]@%d (%s): %s", ref.topic, ref.partition, ref.offset, reason,
                    " ".join(str(error).split())[:300])

    def _publish(self, out: Outputs) -> None:
        if not out.events and not out.predictions:
            self.counts["windows"] += out.windows
            return
        t0 = time.perf_counter()
        cfg = self.config.kafka
        for emitted in out.events:
            ev = emitted.event
            fut = self._publisher.send(cfg.events_topic, key=ev.camera_id.encode(), value=ev.to_json(),
                                       headers=[("event_id", ev.event_id.encode())])
            newest = emitted.newest_capture_ts_ns
            fut.add_callback(lambda _md, label=ev.label, newest=newest:
                             self.metrics.event_published(label, self._latency(newest)))
        if cfg.predictions_topic:
            for pred in out.predictions:
                self._publisher.send(cfg.predictions_topic, key=pred.camera_id.encode(), value=pred.to_json())
        self.metrics.observe_stage("publish", time.perf_counter() - t0)
        self.counts["events"] += len(out.events)
        self.counts["windows"] += out.windows

    def _latency(self, newest_capture_ts_ns: int) -> float | None:
        """Capture-to-publish latency, or None when the capture clock is off by more than
        limits.max_clock_skew_s (the frames were counted as clock_skew; no latency is made up)."""
        latency = self.clock() - newest_capture_ts_ns / 1e9
        return latency if abs(latency) <= self.config.limits.max_clock_skew_s else None

    def _backpressure(self) -> None:
        from stream.kafka import set_paused

        b = self.config.batching
        if not self._paused and self.pipeline.pending >= b.max_pending_windows:
            set_paused(self._consumer, True)
            self._paused = True
        elif self._paused and self.pipeline.pending <= b.resume_pending_windows:
            set_paused(self._consumer, False)
            self._paused = False

    def commit(self, *, final: bool = False, only: set[TopicPartition] | None = None,
               in_callback: bool = False) -> bool:
        """The one commit path (periodic, final, on revoke): settle the publisher (flush, check
        every send), then commit the pipeline's commit points of the assigned partitions (or of
        ``only``). After any failure, now or earlier, it raises :class:`PublishError` and commits
        nothing, ever again in this process.

        Periodic and revoke commits are asynchronous: a synchronous commit during a cooperative
        rebalance would block the loop that has to call ``poll`` to finish that rebalance, and a
        failed one only means a longer replay (it is counted). The final commit is synchronous.
        With ``kafka.delivery: exactly_once`` every commit is a transaction commit (synchronous),
        offsets of all assigned partitions included, also on revoke: aborting there would drop
        the kept partitions' outputs too.
        """
        from stream.kafka import commit, commit_async

        t0 = time.perf_counter()
        settled = self._publisher.settle()
        self.metrics.observe_stage("publish", time.perf_counter() - t0)
        if not settled:
            return False
        keep = self._assigned if only is None else only
        points = {tp: v for tp, v in self.pipeline.commit_points().items() if tp in keep}
        if not points:
            return False
        if self._publisher.transactional:   # outputs and offsets commit (or abort) together
            from stream.kafka import kafka_offsets

            try:
                self._publisher.commit_transaction(kafka_offsets(points), self._consumer.group_metadata())
            except TransactionAborted as exc:
                self.metrics.commit_failed()
                if in_callback:   # no blocking seeks on kafka-python's IO thread: fail stop instead
                    self._publisher.poison(exc)
                    raise
                log.warning("%s; rewinding every partition to its committed offset", exc)
                self._rewind()
                return False
        elif final:
            try:
                commit(self._consumer, points)
            except Exception as exc:
                self._commit_failed(exc)
                return False
        else:
            commit_async(self._consumer, points, on_error=self._commit_failed)
        self.counts["commits"] += 1
        return True

    def _rewind(self) -> None:
        """After an aborted transaction: forget every partition's state and read each again from
        its committed offset and resume points, so the outputs of the aborted transaction are
        made again, in the next one."""
        from kafka.structs import TopicPartition as KTP

        for tp in sorted(self._assigned):
            self.pipeline.drop_partition(tp)
            part = KTP(*tp)
            offset = self._consumer.committed(part)
            if offset is None:
                self._consumer.seek_to_beginning(part)
            else:
                self._consumer.seek(part, offset)
            self._new.append(tp)

    def _commit_failed(self, exc: BaseException) -> None:
        self.metrics.commit_failed()
        log.warning("commit failed (a restart replays from the previous commit): %s", exc)

    # -- rebalance ----------------------------------------------------------------------------
    def _on_assigned(self, tps: list[TopicPartition]) -> None:
        log.info("assigned %s", tps)
        self._assigned.update(tps)
        self._new.extend(tps)

    def _restore_new(self) -> None:
        from stream.kafka import committed_metadata

        while self._new:
            tp = self._new.pop()
            self.pipeline.restore(tp, committed_metadata(self._consumer, tp))

    def _on_revoked(self, tps: list[TopicPartition]) -> None:
        # kafka-python 3 runs this on its IO thread while the main thread waits inside poll()/close(),
        # so the pipeline is not touched concurrently, but it must stay short (heartbeats wait):
        # no inference here. What was published is settled and the safe points committed
        # (async, queued before the JoinGroup request); windows still waiting for inference are
        # dropped, and the new owner rebuilds them from those commit points.
        log.info("revoked %s: committing what is published, dropping their windows", tps)
        try:
            self.commit(only=None if self._publisher.transactional else set(tps), in_callback=True)
        except PublishError as exc:
            log.warning("no commit on revoke: %s", exc)
        except Exception as exc:   # the new owner replays from the previous commit
            self._commit_failed(exc)
        self._forget(tps)

    def _on_lost(self, tps: list[TopicPartition]) -> None:
        log.warning("lost %s: dropping their windows without committing", tps)
        self._forget(tps)

    def _forget(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self.pipeline.drop_partition(tp)
            self._assigned.discard(tp)
            self.metrics.forget_lag(*tp)

    def _update_lag(self) -> None:
        from stream.kafka import lag

        try:
            for (topic, part), value in lag(self._consumer).items():
                self.metrics.set_lag(topic, part, value)
        except Exception as exc:
            log.debug("lag unavailable: %s", exc)

    def _unstall(self) -> None:
        """A watchdog over the Kafka client. While the client delivers no record at all, an
        assigned, unpaused partition that is behind its end offset and did not move since the
        last check gets its fetch reset (a seek to where it is); still stuck at the next check,
        the service fails stop, so that its restart gets a fresh client and replays from the last
        commit. Both are counted and logged.

        Why: after a broker restart, kafka-python 3.0.12 consumers that lived through it (and
        paused and resumed partitions) were seen to stop fetching some partitions for good, with
        the loop healthy and nothing in the logs; a seek did not help. A client fault then costs
        about 30 s and a restart, not the rest of a match."""
        from stream.kafka import fetch_progress, fetch_state, reset_fetch

        delivered = self.counts["messages"] != self._messages_at_check
        self._messages_at_check = self.counts["messages"]
        # Judged only while the client delivers nothing at all: a busy service that works through
        # one partition's buffered records while another waits is slow, not stuck.
        if self._paused or not self._broker_ok or delivered:
            self._last_positions, self._reset_at = {}, {}
            return
        try:
            progress = fetch_progress(self._consumer)
        except Exception as exc:
            log.debug("fetch progress unavailable: %s", exc)
            return
        for tp, (position, end) in progress.items():
            if end > position and self._last_positions.get(tp) == position:
                self.metrics.fetch_stalled()
                state = fetch_state(self._consumer, tp)   # why the client is not fetching it, for a diagnosis
                if self._reset_at.get(tp) == position:
                    raise FailStop(f"the Kafka client stopped fetching {tp[0]}[{tp[1]}] at offset {position} "
                                   f"(end {end}) and a reset did not help, so a restart gets a fresh client. "
                                   f"Client state: {state}")
                log.warning("partition %s[%d] made no progress at offset %d (end %d) in %.0f s; resetting its fetch. "
                            "Client state: %s", tp[0], tp[1], position, end, STALL_CHECK_S, state)
                reset_fetch(self._consumer, tp, position)
                self._reset_at[tp] = position
        self._last_positions = {tp: position for tp, (position, _end) in progress.items()}

    def _check_broker(self) -> None:
        from stream.kafka import broker_reachable

        try:
            hb_s = self.config.kafka.heartbeat_interval_ms / 1000
            self._broker_ok = broker_reachable(self._consumer, stale_after_s=3 * hb_s)
        except Exception as exc:
            log.warning("broker check failed: %s", exc)

    def _report(self) -> None:
        log.info("messages=%d windows=%d events=%d dlq=%d pending=%d paused=%s", self.counts["messages"],
                 self.counts["windows"], self.counts["events"], self.counts["dlq"], self.pipeline.pending,
                 self._paused)

    def close(self) -> None:
        if self._consumer is not None:
            try:   # bounded like the producer: leaving the group waits on a broker that may not answer
                self._consumer.close(autocommit=False, timeout_ms=int(self.config.kafka.commit_timeout_s * 1000))
            except Exception as exc:
                log.warning("consumer close: %s", exc)
        if self._producer is not None:
            try:   # a transaction still open here was not committed: it is aborted
                if self._publisher is not None:
                    self._publisher.close()
                else:
                    self._producer.close(timeout=self.config.kafka.commit_timeout_s)
            except Exception as exc:
                log.warning("producer close: %s", exc)
        if self._server is not None:
            self._server.stop()
        if self.shadow is not None:
            self.shadow.close()
        if self._owns_predictor and hasattr(self.predictor, "close"):
            self.predictor.close()
        self._consumer = self._producer = self._server = None


@dataclass
class ServeOutcome:
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False   # stopped by SIGINT (Ctrl-C): the command exits 130


def serve(config: StreamConfig, *, max_seconds: float | None = None, workers: int = 1,
          received: list[int] | None = None) -> ServeOutcome:
    """Run the service until SIGTERM/SIGINT (or ``max_seconds``): in this process, or in
    ``workers`` processes (see :func:`serve_workers`). Returns the summed counters.
    ``received``: from a :func:`~stream.signals.record_stop_signals` the caller installed earlier."""
    if workers > 1:
        return serve_workers(config, workers, max_seconds=max_seconds, received=received)
    if received is None:
        received = record_stop_signals()
    service = StreamService(config)
    service.install_signal_handlers(received=received)
    counts = service.run(max_seconds=max_seconds)
    return ServeOutcome(counts, interrupted=service.stopped_by == signal.SIGINT)


def worker_configs(config: StreamConfig, workers: int) -> list[StreamConfig]:
    """The config of each of ``workers`` processes on one host.

    Every worker joins the same consumer group with its own static member id
    ``<base>-w<i>``, the base being ``kafka.group_instance_id`` or ``<hostname>-serve``, so a
    restarted worker takes its partitions back without a rebalance. Metrics: worker ``i``
    serves ``metrics_port + i`` (one scrape target per worker; the deploy files list them).
    """
    import dataclasses
    import socket

    if workers < 1:
        raise StreamError(f"--workers must be >= 1, got {workers!r}")
    base = config.kafka.group_instance_id or f"{socket.gethostname()}-serve"
    return [dataclasses.replace(
        config, kafka=dataclasses.replace(config.kafka, group_instance_id=f"{base}-w{i}"),
        metrics_port=None if config.metrics_port is None else config.metrics_port + i) for i in range(workers)]


def _worker_main(config: StreamConfig, max_seconds: float | None, results: Any, log_setup: tuple[str, str]) -> None:
    from stream import logs

    received = record_stop_signals()   # the parent forwards a SIGTERM to a worker still loading
    logs.configure(*log_setup)
    service = StreamService(config)
    service.install_signal_handlers(received=received)
    results.put(service.run(max_seconds=max_seconds))


def serve_workers(config: StreamConfig, workers: int, *, max_seconds: float | None = None,
                  received: list[int] | None = None) -> ServeOutcome:
    """``workers`` service processes sharing this host (and its GPU), one consumer group.

    A SIGTERM or SIGINT to this process is passed to every worker, and each one runs its
    waiting windows, publishes and commits before it exits. A worker that dies makes this
    function raise once the others have stopped. ``received``: stop signals that came before
    (see :func:`serve`); after one, no further worker is started.
    """
    import multiprocessing as mp

    from stream import logs

    ctx = mp.get_context("spawn")   # CUDA cannot be forked; spawn also gives each a clean torch
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(cfg, max_seconds, results, logs.current()), name=f"serve-w{i}")
             for i, cfg in enumerate(worker_configs(config, workers))]

    stopped_by: list[int] = list(received or ())

    def forward(signum: int, _frame: Any) -> None:
        stopped_by.append(signum)
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for p in procs:
            if stopped_by:   # a worker started after the signal would never be told to stop
                break
            p.start()
        started = [p for p in procs if p.pid is not None]
        log.info("started %d workers: %s", len(started), ", ".join(f"{p.name} (pid {p.pid})" for p in started))
        for p in started:
            p.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    totals: dict[str, int] = {}
    for _ in [p for p in started if p.exitcode == 0]:   # each worker that ran to the end put its counts
        for key, value in results.get(timeout=10).items():
            totals[key] = totals.get(key, 0) + value
    # a worker still starting when the SIGTERM was forwarded dies by it before it has consumed
    # anything: stopped as asked (a running worker handles the signal and exits 0)
    failed = [f"{p.name} exit {p.exitcode}" for p in started
              if p.exitcode != 0 and not (stopped_by and p.exitcode == -signal.SIGTERM)]
    if failed:   # the others published and committed; the restart replays the failed ones' partitions
        raise FailStop(f"worker(s) failed: {', '.join(failed)}")
    return ServeOutcome(totals, interrupted=signal.SIGINT in stopped_by)
