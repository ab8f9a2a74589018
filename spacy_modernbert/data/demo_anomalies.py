"""The anomalous scenarios of the demo corpus: variants of a normal "twin" whose story is off.

Split from `demo.py` (issue 25: one idea per module). Each variant keeps its twin's slots and
words and replaces one or two sentences, so the anomaly is in who did what, where from, in
what order or how much, not in a giveaway word.

Invariant: the order of this list and of each variant's templates is part of the seeded
output: append, never reorder.
"""

from typing import List

from .demo_scenarios import (
    ACCESS,
    ALERT_RESPONSE,
    DISK,
    FIREWALL,
    MAINTENANCE,
    MONITORING,
    REQUESTED_RESTART,
    TRANSFER,
    Scenario,
    variant,
)

ANOMALOUS: List[Scenario] = [
    # a privileged login from an outside address at night, then audit logging stops for good
    variant(
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
    variant(
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
    variant(
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
    variant(
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
    variant(
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
    variant(
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
    variant(
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
    variant(
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
