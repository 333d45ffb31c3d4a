"""A real single-node Apache Kafka 4.x broker (KRaft, combined broker+controller) for tests,
the demo and local users.

The jars come from Maven Central through ``mvn dependency:copy-dependencies`` (the POM ships in
``stream/kafka_jars/pom.xml``) and are cached once per version under
``$SOCCERKD_CACHE`` (default ``~/.cache/soccerkd``)/``kafka-<version>/libs``.

    with LocalBroker() as broker:          # formats storage, starts the JVM, waits for an admin reply
        broker.create_topic("frames", partitions=2)
        KafkaProducer(bootstrap_servers=broker.bootstrap, ...)

The broker listens on 127.0.0.1 only, on free ports, with automatic topic creation off and
``message.max.bytes`` sized for multi-megabyte frame batches. ``LocalBroker(brokers=3)`` returns a
:class:`stream.dev.cluster.LocalCluster` of three such nodes instead (each a :class:`LocalBroker`
with a :class:`ClusterMember`).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from stream.dev.certificates import make_broker_certificate, make_client_certificate
from stream.errors import BrokerError, StreamError

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.3"
# Frame batches are JPEG bursts of a few MB; 16 MiB leaves headroom for large batches.
MESSAGE_MAX_BYTES = 16 * 1024 * 1024
# One test broker on a 2-core, 24 GiB box: 512 MiB of heap is plenty for multi-MB messages.
DEFAULT_HEAP_MB = 512
_READY_LINE = "Kafka Server started"

_LOG4J2 = """\
appender.f.type=Console
appender.f.name=STDOUT
appender.f.layout.type=PatternLayout
appender.f.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.f.ref=STDOUT
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.org.name=org.apache.kafka
logger.org.level=WARN
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
"""


def cache_root() -> Path:
    return Path(os.environ.get("SOCCERKD_CACHE", Path.home() / ".cache" / "soccerkd"))


def require_tool(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrokerError(f"{name!r} was not found on PATH; the local Kafka broker needs it. "
                          f"Install it first: {install_hint}")
    return path


def ensure_jars(version: str = KAFKA_VERSION, *, quiet: bool = True) -> Path:
    """Resolve ``kafka_2.13:<version>`` and its runtime jars once; return the libs folder."""
    libs = cache_root() / f"kafka-{version}" / "libs"
    if (libs / ".complete").is_file():
        return libs
    mvn = require_tool("mvn", "apt-get install -y maven (and Java 17: openjdk-17-jre-headless)")
    require_tool("java", "apt-get install -y openjdk-17-jre-headless")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    pom = resources.files("stream") / "kafka_jars" / "pom.xml"
    with resources.as_file(pom) as pom_path:
        cmd = [mvn, "-B", "-f", str(pom_path), "dependency:copy-dependencies", "-DincludeScope=runtime",
               f"-DoutputDirectory={staging}", f"-Dkafka.version={version}", f"-Dlog4j.version={LOG4J_VERSION}"]
        if quiet:
            cmd.insert(1, "-q")
        if not quiet:
            print(f"resolving Apache Kafka {version} jars from Maven Central into {libs} ...", flush=True)
        proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        detail = (proc.stdout or "")[-2000:] + (proc.stderr or "")[-2000:] if quiet else ""
        raise BrokerError(f"mvn could not resolve org.apache.kafka:kafka_2.13:{version} "
                          f"(exit {proc.returncode}). {detail}")
    (staging / ".complete").write_text(version + "\n")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)  # atomic: a half-downloaded folder is never mistaken for a complete one
    return libs


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the JVM does: TIME_WAIT is free
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range. A port from that range (what
    binding to port 0 gives) can be taken by the local end of any outgoing connection between
    this pick and the JVM's bind, or while a node is down for a restart: a 3-node cluster once
    failed to start so ("Address already in use")."""
    rng, below = random.SystemRandom(), _ephemeral_low()
    for _ in range(200):
        port = rng.randrange(10000, below)
        if port_free(port):
            return port
    with socket.socket() as sock:   # no luck below the range: any free port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        return max(10001, int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return 32768   # Linux's default


def random_cluster_id() -> str:
    # Kafka's Uuid.toString: URL-safe base64 of 16 bytes without padding, never starting with '-'.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class ClusterMember:
    """What makes a :class:`LocalBroker` one node of a :class:`~stream.dev.cluster.LocalCluster`."""

    node_id: int
    voters: str            # controller.quorum.voters: "1@127.0.0.1:PORT,2@...,3@..."
    cluster_id: str        # the same for every node, given to the storage format
    replication_factor: int = 3
    min_insync_replicas: int = 2
    replica_lag_time_ms: int = 6000
    session_timeout_ms: int = 6000


@dataclass(frozen=True)
class BrokerState:
    """What ``soccerkd broker start`` records so that ``status``/``stop`` find exactly that process."""

    pid: int
    bootstrap: str
    data_dir: str
    version: str
    started_at: float
    pids: tuple[int, ...] = ()   # every node's JVM of a cluster (``pid`` is the first); () for one broker

    @property
    def all_pids(self) -> tuple[int, ...]:
        return self.pids or (self.pid,)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "BrokerState":
        try:
            fields = json.loads(path.read_text())
            return cls(**{**fields, "pids": tuple(fields.get("pids", ()))})
        except (OSError, ValueError, TypeError) as exc:
            raise BrokerError(f"broker state file {str(path)!r} is unreadable: {exc}") from exc


class LocalBroker:
    """One combined broker+controller JVM on 127.0.0.1, owned by this object.

    ``data_dir=None`` uses a temporary directory that :meth:`stop` deletes. ``detach=True`` starts
    the JVM in its own session so it outlives this Python process (used by the CLI).
    """

    def __new__(cls, *args: Any, brokers: int = 1, **kwargs: Any) -> Any:
        if brokers != 1:   # LocalBroker(brokers=3): a cluster of combined nodes (stream.dev.cluster)
            from stream.dev.cluster import LocalCluster

            return LocalCluster(*args, brokers=brokers, **kwargs)
        return super().__new__(cls)

    def __init__(self, data_dir: str | Path | None = None, *, version: str = KAFKA_VERSION,
                 heap_mb: int = DEFAULT_HEAP_MB, message_max_bytes: int = MESSAGE_MAX_BYTES,
                 detach: bool = False, port: int = 0, tls: bool = False,
                 scram_users: dict[str, str] | None = None, mtls: bool = False, brokers: int = 1,
                 member: ClusterMember | None = None, controller_port: int = 0) -> None:
        if heap_mb < 128:
            raise BrokerError(f"heap_mb must be >= 128, got {heap_mb!r}")
        if message_max_bytes < 1024 * 1024:
            raise BrokerError(f"message_max_bytes must be >= 1 MiB, got {message_max_bytes!r}")
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="soccerkd-kafka-"))
        self.version = version
        self.heap_mb = heap_mb
        self.message_max_bytes = message_max_bytes
        self.detach = detach
        if not 0 <= port < 65536:
            raise BrokerError(f"port must be 0 (any free one) or 1-65535, got {port!r}")
        self.port = port
        # tls: an SSL listener (self-signed certificate for 127.0.0.1, its PEM in ``ca_file``);
        # scram_users: a SASL_SSL listener with these SCRAM-SHA-256/512 users (tls implied);
        # mtls: an SSL listener that requires a client certificate, and one made for the tests
        # (client_certfile, client_keyfile encrypted with CLIENT_KEY_PASSWORD; tls implied).
        self.scram_users = dict(scram_users or {})
        self.mtls = mtls
        self.tls = tls or bool(self.scram_users) or mtls
        self.ssl_port = self.sasl_ssl_port = self.mtls_port = 0
        self.member = member   # None: a cluster of its own (node 1, a standalone quorum)
        self._controller_port = controller_port
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        if not self.port:
            raise BrokerError("the broker has not been started")
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    def start(self, timeout: float = 90.0, *, quiet: bool = True) -> "LocalBroker":
        java = require_tool("java", "apt-get install -y openjdk-17-jre-headless")
        libs = ensure_jars(self.version, quiet=quiet)
        t0 = time.monotonic()
        # A restart keeps its ports, so clients configured with the old address reconnect; so does
        # a new broker on kept data (--data-dir), whose KRaft quorum recorded its controller port.
        if self.port and self.process is None and not port_free(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is already in use (another Kafka? "
                              f"`soccerkd broker status` shows ours); pick another with --port, or 0 for any free one")
        self.port = self.port or free_port()
        self._controller_port = self._controller_port or self._recorded_controller_port() or free_port()
        if self.tls:
            self.ssl_port = self.ssl_port or free_port()
            keytool = require_tool("keytool", "apt-get install -y openjdk-17-jre-headless")
            make_broker_certificate(self.data_dir / "tls", keytool, password=self.KEYSTORE_PASSWORD)
        if self.scram_users:
            self.sasl_ssl_port = self.sasl_ssl_port or free_port()
        if self.mtls:
            self.mtls_port = self.mtls_port or free_port()
            make_client_certificate(self.data_dir / "tls", require_tool("openssl", "apt-get install -y openssl"),
                                    require_tool("keytool", "apt-get install -y openjdk-17-jre-headless"),
                                    key_password=self.CLIENT_KEY_PASSWORD, store_password=self.KEYSTORE_PASSWORD)
        self._write_config(self._controller_port)
        classpath = f"{libs}/*"
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        if not (self.data_dir / "kraft-logs" / "meta.properties").exists():   # a restart keeps its cluster
            fmt = subprocess.run(
                [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", log4j, "-cp", classpath, "kafka.tools.StorageTool",
                 "format", *(["--standalone", "-t", random_cluster_id()] if self.member is None
                             else ["-t", self.member.cluster_id]),   # members: the voters are in the config
                 "-c", str(self.properties_path), "--ignore-formatted", *self._scram_format_args()],
                capture_output=True, text=True)
            if fmt.returncode != 0:
                raise BrokerError(f"formatting KRaft storage in {self.data_dir} failed: "
                                  f"{fmt.stdout[-1500:]}{fmt.stderr[-1500:]}")
        cmd = [java, f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
               "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.data_dir / 'logs'}", log4j,
               "-cp", classpath, "kafka.Kafka", str(self.properties_path)]
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=self.detach)
        finally:
            log.close()
        try:
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def state(self) -> BrokerState:
        if self.process is None:
            raise BrokerError("the broker has not been started")
        return BrokerState(pid=self.process.pid, bootstrap=self.bootstrap, data_dir=str(self.data_dir),
                           version=self.version, started_at=time.time())

    def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
        create_topic(self.bootstrap, name, partitions=partitions, config=config)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is not None:
            stop_process(self.process.pid, timeout=timeout, popen=self.process)
            self.process = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self, *, down_s: float = 0.0, timeout: float = 90.0) -> "LocalBroker":
        """Stop the broker process and start it again on the same data directory and ports
        (topics, offsets and transactions survive), after ``down_s`` seconds down."""
        if self.process is not None:
            stop_process(self.process.pid, timeout=20.0, popen=self.process)
            self.process = None
        time.sleep(down_s)
        return self.start(timeout=timeout)

    def __enter__(self) -> "LocalBroker":
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    KEYSTORE_PASSWORD = "soccerkd-local"   # a throw-away keystore for a local test broker

    @property
    def ca_file(self) -> Path:
        """The PEM clients trust for the SSL and SASL_SSL listeners (``tls=True``)."""
        return self.data_dir / "tls" / "ca.pem"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def mtls_bootstrap(self) -> str:
        """The SSL listener that requires a client certificate (``mtls=True``)."""
        return f"127.0.0.1:{self.mtls_port}"

    CLIENT_KEY_PASSWORD = "soccerkd-client"   # the test client's throw-away key

    @property
    def client_certfile(self) -> Path:
        """A client certificate (PEM) the mutual-TLS listener trusts (``mtls=True``)."""
        return self.data_dir / "tls" / "client.pem"

    @property
    def client_keyfile(self) -> Path:
        """Its private key (PEM), encrypted with :attr:`CLIENT_KEY_PASSWORD`."""
        return self.data_dir / "tls" / "client.key"

    def _scram_format_args(self) -> list[str]:
        args = []
        for user, password in self.scram_users.items():
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                args += ["--add-scram", f"{mech}=[name={user},password={password}]"]
        return args

    def _recorded_controller_port(self) -> int:
        """The controller port of data formatted before (0 when there is none)."""
        if not (self.data_dir / "kraft-logs" / "meta.properties").exists() or not self.properties_path.is_file():
            return 0
        for line in self.properties_path.read_text().splitlines():
            if line.startswith("controller.quorum.bootstrap.servers="):
                return int(line.rsplit(":", 1)[1])
        return 0

    def _write_config(self, controller_port: int) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        props = server_properties(self, controller_port)
        self.properties_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _wait_ready(self, deadline: float) -> None:
        """Ready once the broker logs that it started and an admin client lists topics.

        Waiting for the log line first keeps the admin client from logging refused connections
        while the JVM boots. Fails fast if the JVM exits.
        """
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BrokerError(f"the Kafka JVM exited with code {self.process.returncode} during start-up; "
                                  f"log tail:\n{tail(self.log_path)}")
            if _READY_LINE in tail(self.log_path, 200) and admin_ping(self.bootstrap):
                return
            time.sleep(0.25)
        raise BrokerError(f"the Kafka broker did not answer within the start timeout; log tail:\n{tail(self.log_path)}")


def server_properties(broker: LocalBroker, controller_port: int) -> dict[str, str]:
    """The ``server.properties`` of ``broker``: a standalone node, or a member of a
    :class:`~stream.dev.cluster.LocalCluster` (``broker.member``)."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker.port},CONTROLLER://127.0.0.1:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(broker.data_dir / "kraft-logs"),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(broker.message_max_bytes),
        "replica.fetch.max.bytes": str(broker.message_max_bytes),
        # explicit: the service caps its commit metadata below this (stream.core.resume)
        "offset.metadata.max.bytes": "4096",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.partitions": "1",
    }
    member = broker.member
    if member is not None:   # one node of a cluster: a static voter set, replicated internal topics
        del props["controller.quorum.bootstrap.servers"]
        rf, isr = str(member.replication_factor), str(member.min_insync_replicas)
        props.update({
            "node.id": str(member.node_id), "controller.quorum.voters": member.voters,
            "default.replication.factor": rf, "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf, "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr, "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": rf, "share.coordinator.state.topic.min.isr": isr,
            "unclean.leader.election.enable": "false",
            # test-speed failure detection: a lagging follower leaves the ISR after this long, a
            # silent broker is fenced after the session timeout, and leadership moves back to a
            # restarted preferred leader within seconds (production: 30 s, 9 s and 300 s)
            "replica.lag.time.max.ms": str(member.replica_lag_time_ms),
            "broker.session.timeout.ms": str(member.session_timeout_ms),
            "broker.heartbeat.interval.ms": str(max(500, member.session_timeout_ms // 4)),
            "leader.imbalance.check.interval.seconds": "10",
        })
    if broker.tls:
        extra = ([("SSL", "SSL", broker.ssl_port)]
                 + ([("SASL_SSL", "SASL_SSL", broker.sasl_ssl_port)] if broker.scram_users else [])
                 + ([("MTLS", "SSL", broker.mtls_port)] if broker.mtls else []))
        for key in ("listeners", "advertised.listeners"):
            props[key] += "".join(f",{name}://127.0.0.1:{port}" for name, _, port in extra)
        props["listener.security.protocol.map"] += "".join(f",{name}:{protocol}" for name, protocol, _ in extra)
        props.update({"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(broker.data_dir / "tls" / "broker.p12"),
                      "ssl.keystore.password": broker.KEYSTORE_PASSWORD, "ssl.key.password": broker.KEYSTORE_PASSWORD})
    if broker.mtls:   # only this listener asks clients for a certificate, checked against the truststore
        props.update({"listener.name.mtls.ssl.client.auth": "required",
                      "listener.name.mtls.ssl.truststore.type": "PKCS12",
                      "listener.name.mtls.ssl.truststore.location": str(broker.data_dir / "tls" / "clients.p12"),
                      "listener.name.mtls.ssl.truststore.password": broker.KEYSTORE_PASSWORD})
    if broker.scram_users:
        props["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512"
        for mech in ("scram-sha-256", "scram-sha-512"):
            props[f"listener.name.sasl_ssl.{mech}.sasl.jaas.config"] = \
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return props


class ExternalBroker:
    """A broker somebody else runs, with the same surface as :class:`LocalBroker` (``stop`` leaves it be)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.startup_seconds = 0.0

    def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
        create_topic(self.bootstrap, name, partitions=partitions, config=config)

    def stop(self) -> None:
        pass


def admin_ping(bootstrap: str, timeout_ms: int = 2000) -> bool:
    """True when an admin client can list topics at ``bootstrap``."""
    from kafka.errors import KafkaError

    from stream.kafka.admin import admin

    try:
        with admin(bootstrap, timeout_s=timeout_ms / 1000) as client:
            client.list_topics()
        return True
    except (StreamError, KafkaError, OSError, ValueError):
        return False


def create_topic(bootstrap: str, name: str, *, partitions: int = 1, config: dict[str, str] | None = None,
                 timeout: float = 30.0, replication_factor: int = 1, min_insync_replicas: int | None = None) -> None:
    """Create ``name`` (replication 1 unless told) and wait until its metadata is visible; existing
    is fine (:func:`stream.kafka.admin.create`, as ``soccerkd topics create`` does)."""
    from stream.kafka.admin import TopicSpec, create

    if partitions < 1:
        raise BrokerError(f"partitions must be >= 1, got {partitions!r}")
    create(bootstrap, [TopicSpec(name, partitions, dict(config or {}))], timeout_s=timeout,
           replication_factor=replication_factor, min_insync_replicas=min_insync_replicas)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_process(pid: int, *, timeout: float = 20.0, popen: subprocess.Popen | None = None) -> None:
    """SIGTERM (Kafka shuts down cleanly), then SIGKILL after ``timeout`` seconds."""
    if popen is not None:
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(10)
        return
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            _reap(pid)
            time.sleep(0.05)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
