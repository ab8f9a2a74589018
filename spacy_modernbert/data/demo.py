"""The demo corpus: synthetic IT incident reports with entities and an anomaly flag.

Seeded and deterministic (the standard library's `random.Random` only). Every report is
1-4 sentences built by concatenating template fragments and entity values, recording the
character offsets of each entity as it is appended (never by searching the finished text).

Entity labels: HOST, IP, SERVICE, PERSON, ERROR, TEAM, TIME.

About `anomaly_rate` of the reports are anomalous. The anomaly is in what the story says,
not in a giveaway word: anomalous reports are built from the same vocabulary, sentence
shapes and entity types as the normal ones, and most of their sentences have a normal
"twin" that differs in a detail (a privileged login from an outside address followed by
audit logging being switched off; data copied to a host that is not ours; a routine
cleanup that removes the recent backups too; a restart by someone outside the on-call
team; a timeline whose response comes before the alert; alerts muted for days instead of
minutes...). A bag-of-words model can pick up some of these cues but not all of them.
"""

import random
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from .splits import stratified_split

ENTITY_LABELS = ("HOST", "IP", "SERVICE", "PERSON", "ERROR", "TEAM", "TIME")

# --- vocabulary --------------------------------------------------------------------------

ORG_DOMAIN = "acme.net"
HOST_ROLES = (
    "web",
    "api",
    "db",
    "cache",
    "worker",
    "queue",
    "auth",
    "search",
    "batch",
    "edge",
    "lb",
    "bastion",
    "backup",
    "log",
    "mon",
    "k8s-node",
    "build",
    "etl",
)
HOST_ENVS = ("prod", "stage", "dc1", "dc2", "eu-west", "us-east")
EXTERNAL_HOSTS = (
    "registry-1.docker.io",
    "deb.debian.org",
    "api.github.com",
    "objects.githubusercontent.com",
    "acme-v02.api.letsencrypt.org",
    "storage.googleapis.com",
    "s3.eu-west-1.amazonaws.com",
    "sftp.partner-example.com",
    "files.example.org",
    "transfer.example.net",
    "cdn.example.com",
    "pypi.org",
    "files.pythonhosted.org",
    "sync.example.io",
)
SERVICES = (
    "nginx",
    "postgres",
    "kafka",
    "redis",
    "elasticsearch",
    "rabbitmq",
    "haproxy",
    "kubelet",
    "etcd",
    "consul",
    "vault",
    "jenkins",
    "grafana",
    "prometheus",
    "mysql",
    "memcached",
    "cassandra",
    "zookeeper",
    "payments-api",
    "auth-service",
    "checkout-service",
    "minio",
)
FIRST_NAMES = (
    "Priya",
    "Tomás",
    "Chen",
    "Aisha",
    "Lukas",
    "Maria",
    "Kwame",
    "Sara",
    "Daniel",
    "Yuki",
    "Olga",
    "James",
    "Fatima",
    "Ravi",
    "Emma",
    "Noah",
    "Ines",
    "Mateo",
    "Hannah",
    "Omar",
    "Lena",
    "Arjun",
    "Sofia",
    "Jonas",
    "Amara",
    "Pedro",
    "Mei",
    "Viktor",
    "Grace",
    "Samir",
)
LAST_NAMES = (
    "Nair",
    "Díaz",
    "Wei",
    "Bello",
    "Becker",
    "Rossi",
    "Mensah",
    "Lindqvist",
    "Okafor",
    "Tanaka",
    "Petrova",
    "Carter",
    "Haddad",
    "Kumar",
    "Dubois",
    "Williams",
    "Silva",
    "Novak",
    "Murphy",
    "Khan",
    "Jensen",
    "Moreau",
    "Kowalski",
    "Ahmed",
    "Fischer",
    "Costa",
    "Park",
)
INFRA_TEAMS = (
    "SRE",
    "Platform",
    "Database",
    "Networking",
    "Security",
    "Storage",
    "Identity",
    "Infrastructure",
)
BUSINESS_TEAMS = (
    "Marketing",
    "Finance",
    "Sales",
    "Customer Support",
    "Legal",
    "Data Science",
    "Growth",
)
ERRORS = {
    "http": ("HTTP 500", "HTTP 502", "HTTP 503", "HTTP 504"),
    "net": ("ECONNRESET", "ETIMEDOUT", "ECONNREFUSED", "EHOSTUNREACH"),
    "crash": ("OOMKilled", "CrashLoopBackOff", "SIGKILL", "SIGSEGV"),
    "disk": ("ENOSPC", "EIO", "EROFS"),
    "db": ("deadlock detected", "too many connections", "lock wait timeout"),
    "cert": ("x509: certificate has expired", "CERT_HAS_EXPIRED", "SSL_ERROR_BAD_CERT_DOMAIN"),
    "auth": ("HTTP 401", "HTTP 403", "EACCES"),
}
PORTS = ("22", "443", "5432", "6379", "8443", "9092", "3306")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


class _Context:
    """The cast of one report: slot name -> (text, entity label or None), drawn once and reused."""

    def __init__(self, rng: random.Random, night: bool = False) -> None:
        self.rng = rng
        self.values: Dict[str, Tuple[str, Optional[str]]] = {}
        start = rng.randint(0, 4 * 60 + 30) if night else rng.randint(0, 21 * 60)
        d1 = rng.randint(2, 40)
        d2 = rng.randint(5, 75)
        self.minutes = (start, start + d1, start + d1 + d2)
        self.utc = rng.random() < 0.5

    def _time(self, minute: int) -> str:
        minute %= 24 * 60
        text = f"{minute // 60:02d}:{minute % 60:02d}"
        return text + " UTC" if self.utc else text

    def _host(self) -> str:
        rng = self.rng
        short = f"{rng.choice(HOST_ROLES)}-{rng.randint(1, 24):02d}"
        return short if rng.random() < 0.3 else f"{short}.{rng.choice(HOST_ENVS)}.{ORG_DOMAIN}"

    def _internal_ip(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.6:
            return f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if kind < 0.8:
            return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def _external_ip(self) -> str:
        rng = self.rng
        first = rng.choice((185, 91, 45, 62, 77, 146, 203, 198))
        return f"{first}.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def _person(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def _distinct(self, other: str, make: Callable[[], str]) -> str:
        """A fresh value that differs from the value of slot `other`."""
        avoid = self.get(other)[0]
        for _ in range(20):
            value = make()
            if value != avoid:
                return value
        return value

    def _make(self, name: str) -> Tuple[str, Optional[str]]:
        rng = self.rng
        if name == "HOST":
            return self._host(), "HOST"
        if name == "HOST2":
            return self._distinct("HOST", self._host), "HOST"
        if name == "EXT_HOST":
            return rng.choice(EXTERNAL_HOSTS), "HOST"
        if name == "IP":
            return self._internal_ip(), "IP"
        if name == "IP2":
            return self._distinct("IP", self._internal_ip), "IP"
        if name == "EXT_IP":
            return self._external_ip(), "IP"
        if name == "SERVICE":
            return rng.choice(SERVICES), "SERVICE"
        if name == "SERVICE2":
            return self._distinct("SERVICE", lambda: rng.choice(SERVICES)), "SERVICE"
        if name == "PERSON":
            return self._person(), "PERSON"
        if name in ("PERSON2", "OUTSIDER"):
            return self._distinct("PERSON", self._person), "PERSON"
        if name == "TEAM":
            return rng.choice(INFRA_TEAMS), "TEAM"
        if name == "BIZTEAM":
            return rng.choice(BUSINESS_TEAMS), "TEAM"
        if name.startswith("ERR_"):
            return rng.choice(ERRORS[name[4:].lower()]), "ERROR"
        if name == "ERROR":
            return rng.choice(ERRORS[rng.choice(("http", "net", "crash", "db"))]), "ERROR"
        if name in ("TIME", "TIME2", "TIME3"):
            return self._time(self.minutes[{"TIME": 0, "TIME2": 1, "TIME3": 2}[name]]), "TIME"
        plain: Dict[str, Callable[[], str]] = {
            "pct": lambda: str(rng.randint(4, 60)),
            "highpct": lambda: str(rng.randint(88, 94)),
            "fullpct": lambda: str(rng.randint(95, 99)),
            "n": lambda: str(rng.randint(120, 90000)),
            "n2": lambda: str(rng.randint(8, 64)),
            "gb": lambda: str(rng.randint(2, 900)),
            "days": lambda: str(rng.choice((7, 14, 30, 60, 90))),
            "keep": lambda: str(rng.choice((7, 14, 30))),
            "minutes": lambda: str(rng.randint(5, 90)),
            "ticket": lambda: f"{rng.choice(('CHG', 'INC', 'OPS'))}-{rng.randint(1000, 29999)}",
            "port": lambda: rng.choice(PORTS),
            "dbport": lambda: rng.choice(("22", "5432", "6379", "3306", "9092")),
            "mbps": lambda: str(rng.randint(80, 4000)),
            "weekday": lambda: rng.choice(WEEKDAYS),
            "rack": lambda: f"{rng.choice('ABCDEF')}{rng.randint(1, 40)}",
        }
        if name not in plain:
            raise KeyError(f"unknown template slot {name!r}")
        return plain[name](), None

    def get(self, name: str) -> Tuple[str, Optional[str]]:
        if name not in self.values:
            self.values[name] = self._make(name)
        return self.values[name]


_SLOT = re.compile(r"\{([A-Za-z0-9_]+)\}")


class _Builder:
    """Concatenate text fragments, recording entity offsets as they are appended."""

    def __init__(self) -> None:
        self.parts: List[str] = []
        self.length = 0
        self.entities: List[List[Union[int, str]]] = []

    def add(self, text: str, label: Optional[str] = None) -> None:
        if label is not None:
            self.entities.append([self.length, self.length + len(text), label])
        self.parts.append(text)
        self.length += len(text)

    def render(self, template: str, ctx: _Context) -> None:
        pos = 0
        for match in _SLOT.finditer(template):
            if match.start() > pos:
                self.add(template[pos : match.start()])
            self.add(*ctx.get(match.group(1)))
            pos = match.end()
        if pos < len(template):
            self.add(template[pos:])

    @property
    def text(self) -> str:
        return "".join(self.parts)


# --- scenarios ---------------------------------------------------------------------------
# A scenario is a list of sentence slots in story order, each a tuple of alternative
# templates; `required` are the slots every report of the scenario keeps, `weight` how
# often it is drawn. Most anomalous scenarios are variants of a normal "twin": the same
# slots with one or two slots replaced by a version whose story is off, written with the
# twin's words, so the difference is in who did what, where from, in what order, or how
# much, not in vocabulary.

_Scenario = Dict[str, object]


def _scenario(
    name: str,
    parts: Sequence[Sequence[str]],
    required: Sequence[int] = (0,),
    weight: int = 1,
    night: bool = False,
) -> _Scenario:
    return {
        "name": name,
        "parts": [tuple(p) for p in parts],
        "required": tuple(required),
        "weight": weight,
        "night": night,
    }


def _variant(
    twin: _Scenario,
    name: str,
    replace: Dict[int, Sequence[str]],
    required: Sequence[int],
    night: bool = False,
) -> _Scenario:
    """An anomalous scenario: `twin`'s slots with the slots in `replace` swapped."""
    parts = [tuple(replace.get(i, alts)) for i, alts in enumerate(twin["parts"])]
    return _scenario(name, parts, required, weight=1, night=night)


HTTP_ERRORS = _scenario(
    "http_errors",
    [
        (
            "At {TIME} {SERVICE} on {HOST} started returning {ERR_HTTP} for about {pct}% of requests.",
            "{SERVICE} on {HOST} returned {ERR_HTTP} to clients between {TIME} and {TIME3}.",
            "Monitoring paged {PERSON} at {TIME} because {SERVICE} on {HOST} was failing health checks with {ERR_HTTP}.",
            "Customers reported {ERR_HTTP} errors from the checkout page and {OUTSIDER} from the {BIZTEAM} team opened a ticket at {TIME}.",
        ),
        (
            "{PERSON} from the {TEAM} team traced it to connection pool exhaustion in {SERVICE2} on {HOST2}.",
            "Logs on {HOST} showed {ERR_NET} from the upstream {SERVICE2} at {IP}.",
            "The root cause was a config push that pointed {SERVICE} at the old {SERVICE2} address {IP}.",
        ),
        (
            "{PERSON} rolled back the last deploy of {SERVICE} and scaled the pool to {n2} workers.",
            "The {TEAM} team raised the connection limit on {SERVICE2} under change ticket {ticket}.",
            "{PERSON} drained {HOST} from the load balancer at {TIME2} and restarted {SERVICE} on it.",
        ),
        (
            "Error rates were back to normal by {TIME3} and a postmortem is scheduled for {weekday}.",
            "The service recovered at {TIME3} and the incident was closed after {minutes} minutes of monitoring.",
            "No data was lost and the alert cleared at {TIME3}.",
            "The incident was marked as resolved at {TIME3} after {minutes} minutes of monitoring.",
        ),
    ],
)

ALERT_RESPONSE = _scenario(
    "alert_response",
    [
        (
            "The {ERR_HTTP} alert for {SERVICE} on {HOST} fired at {TIME} and {PERSON}, the on-call engineer, acknowledged it.",
            "Monitoring paged {PERSON} at {TIME} because {SERVICE} on {HOST} returned {ERR_HTTP}.",
        ),
        (
            "{PERSON} restarted {SERVICE} in response at {TIME2}, and the errors stopped at {TIME3}.",
            "In response {PERSON} drained {HOST} from the load balancer at {TIME2}, and the errors stopped at {TIME3}.",
        ),
        (
            "{PERSON2} from the {TEAM} team traced it to connection pool exhaustion in {SERVICE2} on {HOST2}.",
            "No data was lost and a postmortem is scheduled for {weekday}.",
            "Logs on {HOST} showed {ERR_NET} from the upstream {SERVICE2} at {IP}.",
        ),
    ],
    required=(0, 1),
    weight=2,
)

CRASH = _scenario(
    "crash",
    [
        (
            "{SERVICE} pods on {HOST} went into {ERR_CRASH} after the {weekday} release.",
            "Memory on {HOST} rose to {highpct}% before the kernel killed {SERVICE} with {ERR_CRASH} at {TIME}.",
            "At {TIME} the {SERVICE} workers on {HOST} kept exiting with {ERR_CRASH} and {PERSON} was paged.",
        ),
        (
            "{PERSON} found a memory leak in the new batch importer and opened a bug for the {TEAM} team.",
            "A heap dump showed the cache in {SERVICE} growing without limit after the config was changed.",
        ),
        (
            "{PERSON} raised the memory limit to {gb} GB and restarted {SERVICE} on {HOST} at {TIME2}.",
            "We pinned {SERVICE} to the previous image until a fix lands, under ticket {ticket}.",
            "{PERSON2} from {TEAM} moved the workload to {HOST2} while the node was drained.",
        ),
        (
            "The pods have been stable since {TIME3}.",
            "No customer impact was reported and the incident was closed at {TIME3}.",
        ),
    ],
)

DISK = _scenario(
    "disk",
    [
        (
            "{HOST} ran out of disk space at {TIME} and {SERVICE} failed writes with {ERR_DISK}.",
            "Disk usage on {HOST} reached {highpct}% at {TIME} and {SERVICE} started logging {ERR_DISK}.",
        ),
        (
            "Old log files and core dumps from {SERVICE2} had filled the data partition.",
            "The log rotation job for {SERVICE} had not run since the {weekday} deploy.",
        ),
        (
            "{PERSON} deleted log files older than {days} days and rotated the {SERVICE} logs, and the backups were not touched.",
            "{PERSON} removed stale snapshots older than {days} days from {HOST}, and the last {keep} days of backups were kept.",
            "{PERSON} extended the volume by {gb} GB under {ticket} and restarted {SERVICE} on {HOST}.",
        ),
        (
            "After the cleanup usage changed from {highpct}% to {pct}% and the incident was closed as resolved.",
            "Writes succeeded again from {TIME3} and the retention policy of {days} days was left unchanged.",
        ),
    ],
    weight=2,
)

MAINTENANCE = _scenario(
    "maintenance",
    [
        (
            "Routine maintenance on {HOST} started at {TIME} and {PERSON} applied kernel patches and rebooted the node.",
            "{PERSON} from the {TEAM} team announced routine maintenance on {HOST} for {TIME} under {ticket}.",
        ),
        (
            "During routine maintenance, {PERSON} ran the cleanup script on {HOST}, which removed {SERVICE} snapshots older than {days} days.",
            "{PERSON} ran the cleanup script on {HOST} as part of routine maintenance, and it removed all {SERVICE} snapshots older than {days} days.",
            "The routine maintenance window on {HOST} included the {SERVICE} upgrade and deleting temporary files on {HOST2}.",
        ),
        (
            "The script kept the last {keep} days of backups, and the nightly backup to {HOST2} was verified afterwards.",
            "{SERVICE} was failed over to {HOST2} during the window and moved back at {TIME2}.",
            "The retention policy of {keep} days was unchanged, and {PERSON2} checked that the backup to {HOST2} completed.",
            "{PERSON2} checked that the temporary directory on {HOST2} was empty afterwards.",
        ),
        (
            "Maintenance finished at {TIME3} with no customer impact.",
            "All checks were green at {TIME3} and the ticket was closed.",
        ),
    ],
    required=(1,),
    weight=2,
)

ACCESS = _scenario(
    "access",
    [
        (
            "{PERSON} logged in to {HOST} from the VPN address {IP} at {TIME} to investigate {ERR_AUTH} errors.",
            "The WAF blocked {n} requests from the address {EXT_IP}, a known scanner, and no action was needed.",
            "At {TIME} the root account on {HOST} was used from the address {IP} to change the {SERVICE} unit file.",
            "The shared admin credentials for {SERVICE} were used to log in to {HOST} from the address {IP} at {TIME}.",
        ),
        (
            "Audit logging on {HOST} was paused at {TIME2} for the agent upgrade and re-enabled by {PERSON} at {TIME3}.",
            "Two minutes later the audit logging agent on {HOST} was stopped for the upgrade, and {PERSON} restarted it at {TIME3}.",
            "Failed logins from {EXT_IP} were blocked at the edge firewall after {n2} attempts.",
            "{PERSON} added {EXT_IP} to the allow list for the partner integration after approval from the {TEAM} team.",
        ),
        (
            "The change was logged under {ticket} and reviewed by {PERSON2} the next morning.",
            "{PERSON2} from {TEAM} found the session in the access logs.",
            "{PERSON} was on the on-call rota that night and the work is referenced in {ticket}.",
        ),
    ],
    weight=3,
)

TRANSFER = _scenario(
    "transfer",
    [
        (
            "The nightly job copied {gb} GB of {SERVICE} exports from {HOST} to {HOST2} for the analytics warehouse.",
            "{PERSON} synced {gb} GB of build artifacts from {HOST} to {HOST2} ahead of the migration under {ticket}.",
            "{SERVICE} on {HOST} pulled {gb} GB of images from {EXT_HOST} during the rollout, which saturated the uplink.",
            "The weekly customer exports from {SERVICE} on {HOST} were uploaded to {EXT_HOST} for the billing partner under {ticket}.",
        ),
        (
            "Outbound traffic on {HOST} peaked at {mbps} Mbps at {TIME} while the scheduled job ran.",
            "{EXT_HOST} is not one of our hosts but the vendor's mirror, so {PERSON} added a cache in front of it.",
            "The transfer slowed {SERVICE2} on {HOST2} and clients saw {ERR_NET} for a few minutes.",
        ),
        (
            "The transfer finished at {TIME2} and the {BIZTEAM} team confirmed the reports were complete.",
            "{PERSON} from the {TEAM} team moved the job to {TIME3} so it no longer overlaps with peak traffic.",
        ),
    ],
    weight=3,
)

REQUESTED_RESTART = _scenario(
    "requested_restart",
    [
        (
            "{OUTSIDER} from the {BIZTEAM} team reported slow dashboards at {TIME} and asked for {SERVICE} on {HOST} to be restarted.",
            "The {BIZTEAM} team saw {ERR_HTTP} errors in the reporting tool at {TIME} and {OUTSIDER} raised a ticket.",
        ),
        (
            "{PERSON}, the on-call engineer from {TEAM}, checked the graphs and restarted {SERVICE} on {HOST} under {ticket}.",
            "{PERSON} from the {TEAM} team restarted {SERVICE} on {HOST} at {TIME2} using the shared admin credentials from the vault.",
        ),
        (
            "The restart cleared the {ERR_NET} errors and {OUTSIDER} confirmed the dashboards were fast again.",
            "The dashboards have been fast since {TIME3} and {OUTSIDER} closed the ticket.",
        ),
    ],
    required=(1,),
    weight=2,
)

FIREWALL = _scenario(
    "firewall",
    [
        (
            "{PERSON} opened port {port} on {HOST} to the load balancer subnet at {IP} under {ticket}.",
            "At {TIME} the firewall on {HOST} was changed to accept port 22 from the bastion {HOST2} only.",
            "At {TIME} the firewall on {HOST} was changed to accept port 443 from any address, and the change came from {IP}.",
        ),
        (
            "Failed logins from {EXT_IP} were blocked at the edge firewall after {n2} attempts.",
            "{PERSON2} from the {TEAM} team approved the change after checking the {SERVICE} access list.",
        ),
        (
            "The rule was verified from {IP2} and the ticket was closed at {TIME3}.",
            "No alerts fired during the change.",
            "{PERSON2} did not see any errors after the change.",
        ),
    ],
    weight=2,
)

CERT = _scenario(
    "cert",
    [
        (
            "The TLS certificate for {HOST} expired at {TIME} and clients of {SERVICE} failed with {ERR_CERT}.",
            "From {TIME} clients calling {SERVICE} on {HOST} failed with {ERR_CERT}.",
        ),
        (
            "Auto-renewal had been failing silently since the DNS change {days} days ago.",
            "The renewal job on {HOST2} could not reach {EXT_HOST} because of a proxy change.",
        ),
        (
            "{PERSON} renewed the certificate through {EXT_HOST} and reloaded {SERVICE} at {TIME2}.",
            "{PERSON} from the {TEAM} team issued a new certificate and added an expiry alert {days} days ahead.",
        ),
    ],
)

DATABASE = _scenario(
    "database",
    [
        (
            "Replication lag on {SERVICE} between {HOST} and {HOST2} reached {n2} minutes at {TIME}.",
            "Writes to {SERVICE} on {HOST} failed with {ERR_DB} from {TIME}.",
        ),
        (
            "{PERSON} found a long-running migration holding locks, which caused {ERR_DB} on writes.",
            "A batch job from {HOST2} opened thousands of connections and {SERVICE} answered with {ERR_DB}.",
        ),
        (
            "The migration was paused by {PERSON} and the replica caught up by {TIME2}.",
            "{PERSON} from the {TEAM} team stopped the job, and {PERSON2} agreed to run it at night.",
        ),
        ("The incident was closed at {TIME3} with no data loss.",),
    ],
)

NETWORK = _scenario(
    "network",
    [
        (
            "Packet loss between {HOST} and {IP} reached {pct}% at {TIME} and {SERVICE} clients saw {ERR_NET}.",
            "From {TIME} {SERVICE} on {HOST} could not reach {IP} and logged {ERR_NET}.",
        ),
        (
            "The {TEAM} team found a flapping switch port in rack {rack}.",
            "A routing change in the {TEAM} change window dropped the route to {IP}.",
        ),
        (
            "{PERSON} moved the traffic to the second uplink and the errors stopped at {TIME2}.",
            "{PERSON} reverted the change at {TIME2}, and {PERSON2} confirmed the route from {HOST2}.",
        ),
    ],
)

MONITORING = _scenario(
    "monitoring",
    [
        (
            "Alerts for {HOST} were muted for {minutes} minutes by the {SERVICE} service account at {TIME} during the deploy.",
            "{PERSON} muted the {ERR_HTTP} alerts for {SERVICE} for {minutes} minutes while {HOST} was rebuilt.",
        ),
        (
            "The {SERVICE} config was changed from {HOST2} under {ticket} during that window.",
            "The deploy finished at {TIME2} and the alerts were unmuted automatically.",
        ),
        ("{PERSON2} from the {TEAM} team reviewed the change the next morning.",),
    ],
    weight=2,
)

NORMAL: List[_Scenario] = [
    HTTP_ERRORS,
    ALERT_RESPONSE,
    CRASH,
    DISK,
    MAINTENANCE,
    ACCESS,
    TRANSFER,
    REQUESTED_RESTART,
    FIREWALL,
    CERT,
    DATABASE,
    NETWORK,
    MONITORING,
]

ANOMALOUS: List[_Scenario] = [
    # a privileged login from an outside address at night, then audit logging stops for good
    _variant(
        ACCESS,
        "privileged_login",
        {
            0: (
                "At {TIME} the root account on {HOST} was used from the address {EXT_IP} to change the {SERVICE} unit file.",
                "The shared admin credentials for {SERVICE} were used to log in to {HOST} from the address {EXT_IP} at {TIME}.",
            ),
            1: (
                "Audit logging on {HOST} was paused at {TIME2} and was not re-enabled.",
                "Two minutes later the audit logging agent on {HOST} was stopped, and it was not restarted.",
            ),
            2: (
                "{PERSON} was on the on-call rota that night and did not log in.",
                "The change was not logged under a ticket and was found by {PERSON2} the next morning.",
            ),
        },
        required=(0, 1),
        night=True,
    ),
    # customer data copied to a host that is not ours
    _variant(
        TRANSFER,
        "exfiltration",
        {
            0: (
                "The nightly job copied {gb} GB of {SERVICE} exports from {HOST} to {EXT_HOST} for the analytics warehouse.",
                "{PERSON} synced {gb} GB of customer exports from {HOST} to {EXT_IP} ahead of the migration under {ticket}.",
            ),
            1: (
                "Outbound traffic on {HOST} peaked at {mbps} Mbps at {TIME} while no job was scheduled.",
                "{EXT_HOST} is not one of our hosts, and {PERSON} found no ticket for the transfer.",
            ),
        },
        required=(0,),
    ),
    # routine maintenance that removes the recent backups
    _variant(
        MAINTENANCE,
        "backup_deletion",
        {
            1: (
                "During routine maintenance, {PERSON} ran the cleanup script on {HOST}, which removed all {SERVICE} snapshots and the last {keep} days of backups.",
                "The routine maintenance window on {HOST} included the {SERVICE} upgrade and deleting the backups on {HOST2}.",
            ),
            2: (
                "The script removed the last {keep} days of backups, and the nightly backup to {HOST2} was not verified afterwards.",
                "The retention policy was changed from {keep} days to 0 days, and {PERSON2} checked that the backup to {HOST2} was empty.",
            ),
        },
        required=(1, 2),
    ),
    # a restart by someone outside the on-call team
    _variant(
        REQUESTED_RESTART,
        "outsider_restart",
        {
            1: (
                "{OUTSIDER} from the {BIZTEAM} team restarted {SERVICE} on {HOST} at {TIME2} using the shared admin credentials from the vault.",
                "{OUTSIDER}, not the on-call engineer from {TEAM}, checked the graphs and restarted {SERVICE} on {HOST} as root.",
            ),
        },
        required=(1,),
    ),
    # the response comes before the alert
    _variant(
        ALERT_RESPONSE,
        "inconsistent_timeline",
        {
            0: (
                "The {ERR_HTTP} alert for {SERVICE} on {HOST} fired at {TIME3} and {PERSON}, the on-call engineer, acknowledged it.",
                "Monitoring paged {PERSON} at {TIME3} because {SERVICE} on {HOST} returned {ERR_HTTP}.",
            ),
            1: (
                "{PERSON} restarted {SERVICE} in response at {TIME}, and the errors stopped at {TIME2}.",
                "In response {PERSON} drained {HOST} from the load balancer at {TIME}, and the errors stopped at {TIME2}.",
            ),
        },
        required=(0, 1),
    ),
    # a cleanup that fills the disk further, closed as resolved
    _variant(
        DISK,
        "inconsistent_disk",
        {
            3: (
                "After the cleanup usage changed from {highpct}% to {fullpct}% and the incident was closed as resolved.",
            )
        },
        required=(0, 3),
    ),
    # the firewall opened to everyone from an outside address
    _variant(
        FIREWALL,
        "open_firewall",
        {
            0: (
                "At {TIME} the firewall on {HOST} was changed to accept port {dbport} from any address, and the change came from {EXT_IP}.",
                "{PERSON} opened port {dbport} on {HOST} to any address from {EXT_IP} under {ticket}.",
            )
        },
        required=(0,),
        night=True,
    ),
    # alerts muted for days, then a config change from outside
    _variant(
        MONITORING,
        "muted_alerts",
        {
            0: (
                "Alerts for {HOST} were muted for {days} days by the {SERVICE} service account at {TIME} during the deploy.",
                "{PERSON} muted the {ERR_HTTP} alerts for {SERVICE} for {days} days while {HOST} was rebuilt.",
            ),
            1: (
                "The {SERVICE} config was changed from {EXT_IP} under {ticket} during that window.",
            ),
        },
        required=(0, 1),
    ),
]

SENTENCE_WEIGHTS = (1, 3, 4, 3)  # for 1, 2, 3 or 4 sentences
MIN_WORDS = 15
MAX_WORDS = 60


def _pick_parts(rng: random.Random, scenario: _Scenario) -> List[int]:
    """Which sentence slots to use: the required ones plus a random ordered subset of the rest."""
    parts = scenario["parts"]
    required = list(scenario["required"])
    target = rng.choices(range(1, 5), weights=SENTENCE_WEIGHTS)[0]
    target = max(len(required), min(target, len(parts)))
    optional = [i for i in range(len(parts)) if i not in required]
    chosen = required + rng.sample(optional, target - len(required))
    return sorted(chosen)


def generate_report(rng: random.Random, anomalous: bool) -> Dict[str, object]:
    """One incident report as a JSONL record (text, entities, anomaly).

    rng (random.Random): the random generator (advanced by the call).
    anomalous (bool): draw from the anomalous scenarios instead of the normal ones.
    RETURNS (dict): `{"text": str, "entities": [[start, end, label], ...], "anomaly": 0|1}`
        with exact character offsets (end exclusive), 15-60 words.
    """
    scenarios = ANOMALOUS if anomalous else NORMAL
    for _ in range(100):
        scenario = rng.choices(scenarios, weights=[s["weight"] for s in scenarios])[0]
        ctx = _Context(rng, night=bool(scenario["night"]))
        builder = _Builder()
        for k, index in enumerate(_pick_parts(rng, scenario)):
            if k:
                builder.add(" ")
            builder.render(rng.choice(scenario["parts"][index]), ctx)
        text = builder.text
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return {"text": text, "entities": builder.entities, "anomaly": int(anomalous)}
    raise RuntimeError("could not generate a report of the required length")  # pragma: no cover


def generate_demo_records(
    n_docs: int = 600, anomaly_rate: float = 0.1, seed: int = 0
) -> List[Dict[str, object]]:
    """Generate the demo corpus: `n_docs` reports, round(n_docs * anomaly_rate) of them anomalous.

    n_docs (int): number of reports (at least 1).
    anomaly_rate (float): fraction of anomalous reports, in [0, 1].
    seed (int): the seed; the same arguments always give the same records.
    RETURNS (List[dict]): JSONL records (see `generate_report`), anomalies at random positions.
    RAISES ValueError: n_docs < 1 or anomaly_rate outside [0, 1].
    """
    if n_docs < 1:
        raise ValueError(f"n_docs must be at least 1, got {n_docs}")
    if not 0.0 <= anomaly_rate <= 1.0:
        raise ValueError(f"anomaly_rate must be between 0 and 1, got {anomaly_rate}")
    rng = random.Random(seed)
    n_anomalies = int(round(n_docs * anomaly_rate))
    anomalous = set(rng.sample(range(n_docs), n_anomalies))
    return [generate_report(rng, i in anomalous) for i in range(n_docs)]


def generate_demo_splits(
    n_docs: int = 600,
    anomaly_rate: float = 0.1,
    seed: int = 0,
    dev_frac: float = 0.15,
    test_frac: float = 0.15,
) -> Dict[str, List[Dict[str, object]]]:
    """Generate the demo corpus and split it 70/15/15 into train/dev/test, stratified by anomaly.

    n_docs (int): number of reports.
    anomaly_rate (float): fraction of anomalous reports.
    seed (int): the seed of both the generator and the split.
    dev_frac (float): fraction for dev.
    test_frac (float): fraction for test.
    RETURNS (Dict[str, List[dict]]): {"train": [...], "dev": [...], "test": [...]}.
    """
    records = generate_demo_records(n_docs, anomaly_rate, seed)
    splits = stratified_split([r["anomaly"] for r in records], dev_frac, test_frac, seed)
    return {name: [records[i] for i in idx] for name, idx in zip(("train", "dev", "test"), splits)}
