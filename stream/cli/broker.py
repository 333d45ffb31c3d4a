"""``soccerkd broker start|status|stop``: a local Kafka broker that outlives the command.

``start`` listens on 127.0.0.1:9092 (``--port``), creates the service's topics (``--topics``)
and records ``state.json`` (pid, bootstrap, data dir) in the state directory; ``stop`` ends
exactly that process, after checking that its command line is the broker we started. Every
client command finds the broker with :func:`resolve_bootstrap`. ``start --brokers 3`` starts a
3-node KRaft cluster instead (ports 9092-9094, topics replicated 3 times with
``min.insync.replicas`` 2), recorded and stopped as one.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path

from stream.errors import BrokerError

DEFAULT_PORT = 9092
DEFAULT_BOOTSTRAP = f"127.0.0.1:{DEFAULT_PORT}"
DEFAULT_TOPICS = "frames:4,events:4,frames-dlq:1"
BOOTSTRAP_ENV = "SOCCERKD_BOOTSTRAP"
log = logging.getLogger("soccerkd.broker")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "soccerkd" / "broker"


def resolve_bootstrap(flag: str | None = None, config_value: str | None = None, *,
                      state_dir: Path | None = None) -> str:
    """Where clients find Kafka, first match wins: ``--bootstrap``, then ``$SOCCERKD_BOOTSTRAP``,
    then the config's ``kafka.bootstrap`` (when it sets one), then the broker recorded by
    ``soccerkd broker start``, then 127.0.0.1:9092. Logs which one it used."""
    recorded = None
    if not (flag or os.environ.get(BOOTSTRAP_ENV) or config_value):
        state = _recorded_broker_alive(state_dir or default_state_dir())
        recorded = state.bootstrap if state is not None else None
    for value, source in ((flag, "--bootstrap"), (os.environ.get(BOOTSTRAP_ENV), f"${BOOTSTRAP_ENV}"),
                          (config_value, "the config's kafka.bootstrap"),
                          (recorded, "the broker recorded by `soccerkd broker start`"),
                          (DEFAULT_BOOTSTRAP, "the default")):
        if value:
            log.info("Kafka at %s (from %s)", value, source)
            return value
    raise AssertionError("unreachable")


def add_bootstrap_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=None, metavar="HOST:PORT",
                        help=f"Kafka bootstrap servers (default: ${BOOTSTRAP_ENV}, else the broker recorded by "
                             f"`soccerkd broker start`, else {DEFAULT_BOOTSTRAP})")


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """``--bootstrap`` plus the security flags every Kafka client command takes. Passwords are
    never flags: SASL reads ``$SOCCERKD_SASL_PASSWORD`` or ``--sasl-password-file``, and an encrypted
    client key the variable ``--ssl-password-env`` names."""
    add_bootstrap_argument(parser)
    group = parser.add_argument_group("Kafka security (TLS, SASL)")
    group.add_argument("--security-protocol", choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
                       default="PLAINTEXT", help="how to talk to the brokers")
    group.add_argument("--ssl-cafile", type=Path, default=None, help="CA bundle (PEM) of the brokers' certificates")
    group.add_argument("--ssl-certfile", type=Path, default=None, help="client certificate (PEM), for mutual TLS")
    group.add_argument("--ssl-keyfile", type=Path, default=None, help="its private key (PEM)")
    group.add_argument("--ssl-password-env", default=None, metavar="VAR",
                       help="environment variable holding the key's password, when the key is encrypted")
    group.add_argument("--sasl-mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), default=None)
    group.add_argument("--sasl-username", default=None)
    group.add_argument("--sasl-password-file", type=Path, default=None,
                       help="file whose first line is the SASL password (default: $SOCCERKD_SASL_PASSWORD)")


def kafka_from_args(args: argparse.Namespace, config_bootstrap: str | None = None, **extra: object):
    """A :class:`stream.config.KafkaConfig` from the flags of :func:`add_kafka_arguments`."""
    from stream.kafka.config import KafkaConfig

    return KafkaConfig(bootstrap=resolve_bootstrap(args.bootstrap, config_bootstrap),
                       security_protocol=args.security_protocol, ssl_cafile=args.ssl_cafile,
                       ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
                       ssl_password_env=args.ssl_password_env, sasl_mechanism=args.sasl_mechanism,
                       sasl_username=args.sasl_username, sasl_password_file=args.sasl_password_file, **extra)


def kafka_client(args: argparse.Namespace, config_bootstrap: str | None = None, **extra: object):
    """The opening of every Kafka client command: its :class:`~stream.kafka.config.KafkaConfig`
    from the flags, and kafka-python's security arguments for it (passwords read, a client
    certificate loaded once). Returns ``(kafka, security)``."""
    from stream.kafka.connection import client_security

    kafka = kafka_from_args(args, config_bootstrap, **extra)
    return kafka, client_security(kafka)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("broker", help="start, inspect or stop a local Apache Kafka broker (KRaft)")
    sub = parser.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=default_state_dir(),
                        help="where the broker's data, log and state.json live (default: %(default)s)")
    start = sub.add_parser("start", parents=[common], help="start a broker in the background and print its address")
    start.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help="port on 127.0.0.1 for clients; 0 picks a free one")
    start.add_argument("--topics", default=DEFAULT_TOPICS, metavar="NAME:PARTITIONS,...",
                       help="topics to create once it is up (the first gets the frames settings: 16 MiB "
                            "messages, 1 h retention); '' creates none")
    start.add_argument("--data-dir", type=Path, default=None,
                       help="keep the broker's data (topics, offsets) here across restarts; by default it "
                            "lives in the state dir and `broker stop` deletes it")
    start.add_argument("--brokers", type=int, default=1,
                       help="1: one broker; 3 (or more): a KRaft cluster of combined broker+controller nodes on "
                            "consecutive ports, topics with replication 3 and min.insync.replicas 2")
    start.add_argument("--heap-mb", type=int, default=None,
                       help="JVM heap in MiB per node (default: 512 for one broker, 384 per cluster node)")
    start.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness")
    start.set_defaults(handler=_start)
    status = sub.add_parser("status", parents=[common], help="report whether the recorded broker is up, and its topics")
    status.set_defaults(handler=_status)
    stop = sub.add_parser("stop", parents=[common],
                          help="stop the recorded broker; delete its data unless it was given --data-dir")
    stop.add_argument("--keep-data", action="store_true", help="keep the data directory")
    stop.set_defaults(handler=_stop)


def _state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def _recorded_broker_alive(state_dir: Path):
    """The recorded state when its pid is still our broker JVM, else None."""
    from stream.dev.broker import BrokerState, pid_alive, pid_cmdline

    path = _state_file(state_dir)
    if not path.is_file():
        return None
    state = BrokerState.load(path)
    ours = str(Path(state.data_dir)) + os.sep   # a node's server.properties lies in its data dir
    if all(pid_alive(pid) and ours in pid_cmdline(pid) and "server.properties" in pid_cmdline(pid)
           for pid in state.all_pids):
        return state
    return None


def _start(args: argparse.Namespace) -> int:
    from stream.dev.broker import LocalBroker

    from stream.kafka import admin as topics

    state_dir: Path = args.state_dir
    running = _recorded_broker_alive(state_dir)
    if running is not None:
        print(f"already running (pid {running.pid})")
        print(running.bootstrap)
        return 0
    specs = topics.parse_topic_list(args.topics)   # a bad list fails before the JVM starts
    if args.data_dir is not None:
        data_dir = args.data_dir.resolve()
    else:
        data_dir = state_dir / "data"
        shutil.rmtree(data_dir, ignore_errors=True)  # a stale, stopped broker's data is not reused
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.brokers < 1:
        raise BrokerError(f"--brokers must be >= 1, got {args.brokers!r}")
    heap = {} if args.heap_mb is None else {"heap_mb": args.heap_mb}
    broker = LocalBroker(data_dir, detach=True, port=args.port, brokers=args.brokers, **heap)
    broker.start(timeout=args.timeout, quiet=False)
    state = broker.state()
    state.save(_state_file(state_dir))
    print(f"Kafka {broker.version} ({args.brokers} node{'s' if args.brokers > 1 else ''}) started in "
          f"{broker.startup_seconds:.1f} s (pid {', '.join(map(str, state.all_pids))}); "
          f"data: {data_dir}; log: {broker.log_path}")
    replication = getattr(broker, "replication_factor", 1)
    for name, outcome in topics.create(broker.bootstrap, specs, replication_factor=replication,
                                       min_insync_replicas=replication - 1 if replication > 1 else None):
        print(f"topic {name}: {outcome}")
    print(broker.bootstrap)
    return 0


def _status(args: argparse.Namespace) -> int:
    from stream.dev.broker import admin_ping

    state = _recorded_broker_alive(args.state_dir)
    if state is None:
        print(f"not running (no live broker recorded in {args.state_dir})")
        return 1
    from stream.kafka import admin as topics

    reachable = admin_ping(state.bootstrap)
    uptime = time.time() - state.started_at
    print(f"running: pid {', '.join(map(str, state.all_pids))}, bootstrap {state.bootstrap}, Kafka {state.version}, "
          f"up {uptime:.0f} s, data {state.data_dir}, admin {'reachable' if reachable else 'NOT reachable'}")
    if reachable:
        for info in topics.list_topics(state.bootstrap):
            print(f"  topic {info.name}: {info.partitions} partition(s), {info.messages} message(s)")
    return 0 if reachable else 1


def _stop(args: argparse.Namespace) -> int:
    from stream.dev.broker import BrokerState, stop_process

    path = _state_file(args.state_dir)
    if not path.is_file():
        raise BrokerError(f"no broker recorded in {args.state_dir} (nothing to stop)")
    recorded = BrokerState.load(path)
    state = _recorded_broker_alive(args.state_dir)
    if state is None:
        print(f"pid {recorded.pid} is no longer our broker; cleaning up its state")
    else:
        for pid in state.all_pids:
            stop_process(pid)
        print(f"stopped broker pid {', '.join(map(str, state.all_pids))}")
    path.unlink()
    # data the user placed with --data-dir is theirs to keep; the state dir's own is deleted
    if not args.keep_data and Path(recorded.data_dir) == args.state_dir / "data":
        shutil.rmtree(recorded.data_dir, ignore_errors=True)
    return 0
