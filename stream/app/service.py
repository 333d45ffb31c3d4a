"""The serve loop: Kafka frames in, the pipeline, events out; graceful shutdown.

One loop on the main thread: ``poll`` (kafka-python's IO thread fetches in the background) ->
start decoding the poll's frames in one batch (decode threads, or nvJPEG) -> run at most one
due inference batch meanwhile -> publish its events -> add the decoded frames to their windows
(bad messages go to the dead-letter topic) -> pause/resume partitions by the number of waiting
windows -> every ``commit_interval_ms``: flush the producer, check every send succeeded, commit
the pipeline's commit points. Because one batch runs per iteration, ``poll`` keeps being called
while partitions are paused. SIGTERM/SIGINT set a flag; the loop then runs the waiting windows,
publishes, commits and closes.

The service builds none of its collaborators: :func:`stream.app.compose.build_service` passes
the predictor and a ``connect`` function that makes the Kafka clients when :meth:`run` starts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from stream.app.delivery import Delivery
from stream.app.http import LoopHealth, MetricsServer
from stream.app.metrics import Metrics
from stream.app.signals import install_stop_handlers
from stream.app.swap import ModelSwapper
from stream.config import StreamConfig
from stream.core.ledger import SourceRef
from stream.core.clocks import ReadingClock
from stream.core.pipeline import Outputs, Pipeline
from stream.core.ports import Predictor
from stream.errors import FailStop
from stream.kafka.admin import missing_topic_message
from stream.kafka.clients import KafkaClients
from stream.kafka.consumer import BrokerUnreachable
from stream.kafka.watchdog import FetchWatchdog

log = logging.getLogger("soccerkd.serve")
BROKER_CHECK_S = 0.5   # how often the loop refreshes /readyz's view of the broker (a cheap local check)
STALL_CHECK_S = 15.0   # a partition behind its end that did not move for this long: reset, then fail stop


class StreamService:
    """The running service. ``run()`` blocks until :meth:`stop` (or a signal) is called.

    ``connect`` makes the Kafka clients (:meth:`connect` calls it; :meth:`run` does so first).
    ``shadow``: the teacher's runner behind the predictor, if any (closed with the service).
    ``owns_predictor``: close the predictor too when the service closes. ``swapper``: swaps in a
    new model on SIGHUP (:mod:`stream.app.swap`), if any.
    """

    def __init__(self, config: StreamConfig, *, predictor: Predictor, connect: Callable[[], KafkaClients],
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.time, shadow: Any = None,
                 owns_predictor: bool = False, swapper: ModelSwapper | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.predictor = predictor
        self.shadow = shadow
        self.swapper = swapper
        self._owns_predictor = owns_predictor
        self._connect = connect
        self.reading_clock = ReadingClock()   # what idle eviction counts: see stream.core.clocks
        self.pipeline = Pipeline(predictor, config=config.pipeline_config(), metrics=self.metrics, clock=clock,
                                 idle_clock=self.reading_clock)
        self.health = LoopHealth(max_stall_s=config.liveness_timeout_s)  # /healthz: the loop ticks
        self.kafka: KafkaClients | None = None
        self.delivery: Delivery | None = None   # commits and rebalances, once connected
        self.watchdog: FetchWatchdog | None = None
        self.broker_ok = False
        self.stopped_by: int | None = None   # the signal that stopped the service, if one did
        self.counts = {"messages": 0, "dlq": 0, "events": 0, "windows": 0, "commits": 0}
        self._stop = threading.Event()
        self._missing_topic: str | None = None
        self._server: MetricsServer | None = None
        self._messages_at_check = 0
        self._last: dict[str, float] = {}   # when each periodic job last ran (see _iterate)
        self.metrics.track_ready(self.ready)
        self.metrics.set_assigned(config.kafka.frames_topic, 0)

    # -- control ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self, *, received: list[int] | None = None) -> None:
        """SIGTERM/SIGINT stop the loop cleanly, SIGHUP reloads the model (see
        :func:`stream.app.signals.install_stop_handlers`)."""
        def on_stop(signum: int) -> None:
            self.stopped_by = signum
            self.stop()

        install_stop_handlers(on_stop, received=received, on_reload=self.swapper and self.swapper.request)

    def ready(self) -> tuple[bool, str]:
        if self._missing_topic:
            return False, f"topic {self._missing_topic!r} missing"
        if not self.broker_ok:
            return False, "broker not reachable"
        if self.delivery is None or not self.delivery.assigned:
            return False, "no partitions assigned"
        return True, "ready"

    def connect(self) -> KafkaClients:
        self.kafka = self._connect()
        self.delivery = Delivery(self.pipeline, self.kafka, self.metrics,
                                 callback_timeout_s=self.config.kafka.session_timeout_ms / 4000)
        self.broker_ok = True
        self.watchdog = FetchWatchdog(self.kafka.consumer, interval_s=STALL_CHECK_S,
                                      on_stall=self.metrics.fetch_stalled)
        return self.kafka

    def subscribe(self) -> None:
        d = self.delivery
        self.kafka.consumer.subscribe(self.config.kafka.frames_topic, assigned=d.on_assigned, revoked=d.on_revoked,
                                      lost=d.on_lost)

    # -- main loop ----------------------------------------------------------------------------
    def run(self, *, max_seconds: float | None = None) -> dict[str, int]:
        if self._stop.is_set():   # told to stop while the model loaded: nothing consumed, nothing to do
            log.info("stopped before start")
            self.close()   # the model and its decode threads
            return dict(self.counts)
        if self.config.metrics_port is not None:
            self._server = MetricsServer(self.metrics, port=self.config.metrics_port, host=self.config.metrics_bind,
                                         ready=self.ready, alive=self.health.alive).start()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            self.connect()
            if not self._wait_for_topics():   # stopped while waiting
                return dict(self.counts)
            self.subscribe()
            self._last = dict.fromkeys(("commit", "broker", "stall", "log"), time.monotonic())
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self._iterate()
            log.info("stopping: running %d waiting windows, publishing, committing", self.pipeline.pending)
            self.publish(self.pipeline.drain())
            self.delivery.commit(final=True)
        except BaseException as exc:
            # Fail-stop: whatever went wrong, no later commit (close, revoke) may pass the work
            # that did not happen; the restart replays from the last good commit.
            if self.kafka is not None:
                self.kafka.publisher.poison(exc)
            if isinstance(exc, FailStop):   # logged here too: a supervisor's SIGTERM may come before the CLI's line
                log.error("failing stop: %s", exc)
            raise
        finally:
            self.close()
        return dict(self.counts)

    def _iterate(self) -> None:
        """One turn of the loop: poll, decode while a batch runs, backpressure, then whatever
        periodic work is due (commit and lag, broker check, fetch watchdog, log line)."""
        consumer = self.kafka.consumer
        self.health.tick()
        # kafka-python abandons a join that does not finish within the poll timeout, and a busy
        # loop of short polls then rejoins forever: give rebalances a long poll.
        busy = consumer.group_busy()
        if busy:
            wait_ms = 1000
        else:
            wait_ms = 0 if self.pipeline.due() else max(1, min(100, int(self.config.batching.max_wait_ms)))
        try:
            records = consumer.poll(wait_ms)
        except BrokerUnreachable as exc:  # not ready, keep trying
            self.broker_ok = False
            self.reading_clock.tick(reading=False)
            log.warning("poll: broker unreachable (%s); retrying", exc)
            self._stop.wait(0.5)
            return
        self.reading_clock.tick(reading=self.broker_ok and not consumer.paused and not busy)
        records = self.delivery.after_poll(records)
        self.step_while_decoding(records)
        if self.swapper is not None:   # between two batches
            self.publish(self.swapper.poll(self.pipeline))
        self.backpressure()
        now = time.monotonic()
        timers = self._last
        if (now - timers["commit"]) * 1000 >= self.config.kafka.commit_interval_ms:
            self.publish(self.pipeline.close_idle())
            self.delivery.commit()
            self.delivery.update_lag()
            timers["commit"] = now
        if now - timers["broker"] >= BROKER_CHECK_S:   # /readyz follows the broker within seconds
            self.check_broker()
            timers["broker"] = now
        if now - timers["stall"] >= STALL_CHECK_S:
            delivered = self.counts["messages"] != self._messages_at_check
            self._messages_at_check = self.counts["messages"]
            self.watchdog.check(judge=not (consumer.paused or not self.broker_ok or delivered))
            timers["stall"] = now
        if now - timers["log"] >= self.config.log_every_s:
            log.info("messages=%d windows=%d events=%d dlq=%d pending=%d paused=%s", self.counts["messages"],
                     self.counts["windows"], self.counts["events"], self.counts["dlq"], self.pipeline.pending,
                     consumer.paused)
            timers["log"] = now

    def _wait_for_topics(self) -> bool:
        """Wait (until stopped) for every topic the service reads or writes; one line names a
        missing one, and so does /readyz. False when stopped first."""
        k = self.config.kafka
        for topic, key in ((k.frames_topic, "frames_topic"), (k.events_topic, "events_topic"),
                           (k.dlq_topic, "dlq_topic"), (k.predictions_topic, "predictions_topic")):
            while topic and not self.kafka.consumer.topic_exists(topic):
                if self._missing_topic != topic:
                    self._missing_topic = topic
                    log.warning("%s; waiting for it", missing_topic_message(topic, k.bootstrap, f"kafka.{key}"))
                self.health.tick()
                if self._stop.wait(1.0):
                    return False
        if self._missing_topic is not None:
            log.info("topic %r now exists; starting", self._missing_topic)
        self._missing_topic = None
        return True

    def step_while_decoding(self, records: list[tuple[SourceRef, Any]]) -> None:
        """Start decoding one poll's records as a batch, run a due inference batch meanwhile, then
        add the frames to their windows; the rejected records go to the dead-letter topic."""
        by_ref = dict(records)
        self.counts["messages"] += len(records)
        offer = self.pipeline.begin_offer([(r.value, ref) for ref, r in records]) if records else None
        self.publish(self.pipeline.step())
        if offer is not None:
            for bad in self.pipeline.finish_offer(offer):
                self.dead_letter(by_ref[bad.ref], bad.ref, bad.error)

    def dead_letter(self, record: Any, ref: SourceRef, error: BaseException) -> None:
        """Send a rejected message to the dead-letter topic, count and log it."""
        self.pipeline.skip(ref)
        reason = self.kafka.dead_letters.send(record, ref, error)
        self.metrics.dead_lettered(reason)
        self.counts["dlq"] += 1
        log.warning("dead-lettered %s[%d]@%d (%s): %s", ref.topic, ref.partition, ref.offset, reason,
                    " ".join(str(error).split())[:300])

    def publish(self, out: Outputs) -> None:
        self.counts["windows"] += out.windows
        if not out.events and not out.predictions:
            return
        t0 = time.perf_counter()
        cfg, publisher = self.config.kafka, self.kafka.publisher
        for emitted in out.events:
            ev = emitted.event
            fut = publisher.send(cfg.events_topic, key=ev.camera_id.encode(), value=ev.to_json(),
                                 headers=ev.headers())
            newest = emitted.newest_capture_ts_ns
            fut.add_callback(lambda _md, label=ev.label, newest=newest:
                             self.metrics.event_published(label, self.latency(newest)))
        if cfg.predictions_topic:
            for pred in out.predictions:
                publisher.send(cfg.predictions_topic, key=pred.camera_id.encode(), value=pred.to_json())
        self.metrics.observe_stage("publish", time.perf_counter() - t0)
        self.counts["events"] += len(out.events)

    def latency(self, newest_capture_ts_ns: int) -> float | None:
        """Capture-to-publish latency, or None when the capture clock is off by more than
        limits.max_clock_skew_s (the frames were counted as clock_skew; no latency is made up)."""
        latency = self.clock() - newest_capture_ts_ns / 1e9
        return latency if abs(latency) <= self.config.limits.max_clock_skew_s else None

    def backpressure(self) -> None:
        apply_backpressure(self.kafka.consumer, self.pipeline.pending, self.config.batching)

    def check_broker(self) -> None:
        try:
            hb_s = self.config.kafka.heartbeat_interval_ms / 1000
            self.broker_ok = self.kafka.consumer.broker_reachable(stale_after_s=3 * hb_s)
        except Exception as exc:
            log.warning("broker check failed: %s", exc)

    def close(self) -> None:
        timeout_s = self.config.kafka.commit_timeout_s
        if self.kafka is not None:
            try:   # bounded like the producer: leaving the group waits on a broker that may not answer
                self.kafka.consumer.close(timeout_s=timeout_s)
            except Exception as exc:
                log.warning("consumer close: %s", exc)
            try:   # a transaction still open here was not committed: it is aborted
                self.kafka.publisher.close()
            except Exception as exc:
                log.warning("producer close: %s", exc)
            self.counts["commits"] = self.delivery.commits
            self.kafka = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        for runner in (self.shadow, self.swapper):
            if runner is not None:
                runner.close()
        if self._owns_predictor and hasattr(self.predictor, "close"):
            self.predictor.close()


def apply_backpressure(consumer: Any, pending: int, b: Any) -> None:
    """Pause every assigned partition while too many windows wait (``b``: the batching config);
    resume once few do."""
    if not consumer.paused and pending >= b.max_pending_windows:
        consumer.set_paused(True)
    elif consumer.paused and pending <= b.resume_pending_windows:
        consumer.set_paused(False)
    else:
        consumer.keep_paused()
