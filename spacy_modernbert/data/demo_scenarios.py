"""The normal scenarios of the demo corpus, and how a scenario is written down.

Split from `demo.py` (issue 25: one idea per module); the anomalous variants are in
`demo_anomalies.py`. Templates are plain strings with `{SLOT}` names that `demo_cast.Cast`
fills in.

Invariant: the order of the scenarios and of their alternative templates is part of the
seeded output (the generator draws from them by index): append, never reorder.
"""

from typing import Dict, List, Sequence

# --- scenarios ---------------------------------------------------------------------------
# A scenario is a list of sentence slots in story order, each a tuple of alternative
# templates; `required` are the slots every report of the scenario keeps, `weight` how
# often it is drawn. Most anomalous scenarios are variants of a normal "twin": the same
# slots with one or two slots replaced by a version whose story is off, written with the
# twin's words, so the difference is in who did what, where from, in what order, or how
# much, not in vocabulary.

Scenario = Dict[str, object]


def scenario(
    name: str,
    parts: Sequence[Sequence[str]],
    required: Sequence[int] = (0,),
    weight: int = 1,
    night: bool = False,
) -> Scenario:
    return {
        "name": name,
        "parts": [tuple(p) for p in parts],
        "required": tuple(required),
        "weight": weight,
        "night": night,
    }


def variant(
    twin: Scenario,
    name: str,
    replace: Dict[int, Sequence[str]],
    required: Sequence[int],
    night: bool = False,
) -> Scenario:
    """An anomalous scenario: `twin`'s slots with the slots in `replace` swapped."""
    parts = [tuple(replace.get(i, alts)) for i, alts in enumerate(twin["parts"])]
    return scenario(name, parts, required, weight=1, night=night)


HTTP_ERRORS = scenario(
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

ALERT_RESPONSE = scenario(
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

CRASH = scenario(
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

DISK = scenario(
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

MAINTENANCE = scenario(
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

ACCESS = scenario(
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

TRANSFER = scenario(
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

REQUESTED_RESTART = scenario(
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

FIREWALL = scenario(
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

CERT = scenario(
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

DATABASE = scenario(
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

NETWORK = scenario(
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

MONITORING = scenario(
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

NORMAL: List[Scenario] = [
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
