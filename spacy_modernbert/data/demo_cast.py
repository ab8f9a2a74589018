"""The cast of the demo corpus: its vocabulary, and the values one report draws from it.

Split from `demo.py` (issue 25: one idea per module). A report's entities (hosts, addresses,
services, people, teams, errors, times) and plain numbers are drawn here, once per slot name
and reused, so a slot that appears in two sentences names the same thing in both.

Invariant: the draws use only the `random.Random` passed in, in a fixed order, so the
generator's output for a seed is unchanged by where this code lives.
"""

import random
from typing import Callable, Dict, Optional, Tuple

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


class Cast:
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
