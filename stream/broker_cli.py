"""``soccerkd broker start|status|stop``: a local Kafka broker that outlives the command.

``start`` records ``state.json`` (pid, bootstrap, data dir) in the state directory; ``stop`` ends
exactly that process, after checking that its command line is the broker we started.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from stream.errors import BrokerError


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "soccerkd" / "broker"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("broker", help="start, inspect or stop a local Apache Kafka broker (KRaft)")
    sub = parser.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=default_state_dir(),
                        help="where the broker's data, log and state.json live (default: %(default)s)")
    start = sub.add_parser("start", parents=[common], help="start a broker in the background and print its address")
    start.add_argument("--heap-mb", type=int, default=512, help="JVM heap in MiB (default: %(default)s)")
    start.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness")
    start.set_defaults(handler=_start)
    status = sub.add_parser("status", parents=[common], help="report whether the recorded broker is up")
    status.set_defaults(handler=_status)
    stop = sub.add_parser("stop", parents=[common], help="stop the recorded broker and delete its data")
    stop.add_argument("--keep-data", action="store_true", help="keep the data directory")
    stop.set_defaults(handler=_stop)


def _state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def _recorded_broker_alive(state_dir: Path):
    """The recorded state when its pid is still our broker JVM, else None."""
    from stream.broker import BrokerState, pid_alive, pid_cmdline

    path = _state_file(state_dir)
    if not path.is_file():
        return None
    state = BrokerState.load(path)
    ours = str(Path(state.data_dir) / "server.properties")
    if pid_alive(state.pid) and ours in pid_cmdline(state.pid):
        return state
    return None


def _start(args: argparse.Namespace) -> int:
    from stream.broker import LocalBroker

    state_dir: Path = args.state_dir
    running = _recorded_broker_alive(state_dir)
    if running is not None:
        print(f"already running (pid {running.pid})")
        print(running.bootstrap)
        return 0
    data_dir = state_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)  # a stale, stopped broker's data is not reused
    state_dir.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(data_dir, heap_mb=args.heap_mb, detach=True)
    broker.start(timeout=args.timeout, quiet=False)
    broker.state().save(_state_file(state_dir))
    print(f"Kafka {broker.version} started in {broker.startup_seconds:.1f} s (pid {broker.process.pid}); "
          f"log: {broker.log_path}")
    print(broker.bootstrap)
    return 0


def _status(args: argparse.Namespace) -> int:
    from stream.broker import admin_ping

    state = _recorded_broker_alive(args.state_dir)
    if state is None:
        print(f"not running (no live broker recorded in {args.state_dir})")
        return 1
    reachable = admin_ping(state.bootstrap)
    uptime = time.time() - state.started_at
    print(f"running: pid {state.pid}, bootstrap {state.bootstrap}, Kafka {state.version}, "
          f"up {uptime:.0f} s, admin {'reachable' if reachable else 'NOT reachable'}")
    return 0 if reachable else 1


def _stop(args: argparse.Namespace) -> int:
    from stream.broker import BrokerState, stop_process

    path = _state_file(args.state_dir)
    if not path.is_file():
        raise BrokerError(f"no broker recorded in {args.state_dir} (nothing to stop)")
    recorded = BrokerState.load(path)
    state = _recorded_broker_alive(args.state_dir)
    if state is None:
        print(f"pid {recorded.pid} is no longer our broker; cleaning up its state")
    else:
        stop_process(state.pid)
        print(f"stopped broker pid {state.pid}")
    path.unlink()
    if not args.keep_data:
        shutil.rmtree(recorded.data_dir, ignore_errors=True)
    return 0
