"""Session lifetimes, the pure core: a server's terms (lifetime, idle timeout, Extend), its deadline,
whether it must stop and why, and what one Extend does.

The spawner fixes the terms when a server starts and keeps them in the server's state
(`make_session_record`); the `sciencelab` hub service (`session_keeper.py`) adds the extensions
users asked for and stops servers past their deadline or idle too long. Times are aware UTC
datetimes, durations whole seconds.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# In a server's state (`Spawner.get_state`): its session terms, as `make_session_record` writes them.
SESSION_STATE_KEY = "sciencelab_session"


@dataclass(frozen=True)
class SessionTerms:
    """How long a server may run: `lifetime` seconds from its start (None: no limit), stopped after
    `idle_timeout` idle seconds (0: never); each Extend adds `extend_step` up to `extend_cap`
    seconds from the start (None: no Extend)."""

    lifetime: int | None = None
    idle_timeout: int = 0
    extend_step: int | None = None
    extend_cap: int | None = None

    @property
    def limited(self) -> bool:
        return self.lifetime is not None or self.idle_timeout > 0


def make_session_record(terms: SessionTerms) -> dict:
    """The terms as the server's state keeps them (JSON)."""
    return {
        "lifetime": terms.lifetime,
        "idle_timeout": terms.idle_timeout,
        "extend_step": terms.extend_step,
        "extend_cap": terms.extend_cap,
    }


def read_session_record(record: object) -> SessionTerms | None:
    """The terms in a server's state, or None when it has none (started before lifetimes existed)."""
    if not isinstance(record, Mapping):
        return None
    return SessionTerms(
        lifetime=record.get("lifetime"),
        idle_timeout=record.get("idle_timeout") or 0,
        extend_step=record.get("extend_step"),
        extend_cap=record.get("extend_cap"),
    )


def describe_duration(seconds: float) -> str:
    """`2 h 30 min`, `45 min`, `1 min 30 s`, `20 s`: a duration in words, at most two units."""
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next((index for index, (value, _) in enumerate(parts) if value), len(parts) - 1)
    shown = [f"{value} {unit}" for value, unit in parts[first : first + 2] if value]
    return " ".join(shown) or "0 s"


def clock(moment: datetime) -> str:
    """`04 Dec 16:05 UTC`: a deadline, as messages and logs say it (sessions may last days)."""
    return moment.strftime("%d %b %H:%M UTC")


@dataclass(frozen=True)
class Session:
    """One running server's session as the hub service keeps it."""

    user: str
    server: str  # "" for the default server
    started: datetime
    terms: SessionTerms
    extended: int = 0  # seconds Extend added
    exempt: bool = False  # the user's group is exempt from every limit

    @property
    def label(self) -> str:
        """`alice` or `alice:gpu`, as JupyterHub's logs name servers."""
        return f"{self.user}:{self.server}" if self.server else self.user

    @property
    def deadline(self) -> datetime | None:
        if self.exempt or self.terms.lifetime is None:
            return None
        return self.started + timedelta(seconds=self.terms.lifetime + self.extended)

    @property
    def extend_until(self) -> datetime | None:
        """The latest deadline Extend may reach; None when this session cannot be extended."""
        if self.deadline is None or not self.terms.extend_step or self.terms.extend_cap is None:
            return None
        return self.started + timedelta(seconds=self.terms.extend_cap)

    @property
    def idle_timeout(self) -> int | None:
        return None if self.exempt or not self.terms.idle_timeout else self.terms.idle_timeout


def make_deadline_document(session: Session, now: datetime) -> dict:
    """What `GET .../deadline` answers (ISO 8601 times, seconds)."""

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    extendable = session.extend_until is not None
    return {
        "deadline": iso(session.deadline),
        "idle_timeout": session.idle_timeout,
        "extend_until": iso(session.extend_until),
        "extend_step": session.terms.extend_step if extendable else None,
        "exempt": session.exempt,
        "started": iso(session.started),
        "now": iso(now),
    }


class ExtendRefused(ValueError):
    """An Extend the session's terms do not allow: an HTTP 409 with this message."""

    status_code = 409


def extend_session(session: Session) -> int:
    """The session's `extended` seconds after one more Extend: `extend_step` later, at most the cap."""
    if session.deadline is None:
        why = "its user's group is exempt from limits" if session.exempt else "its profile sets no lifetime"
        raise ExtendRefused(f"{session.label}'s server has no deadline to extend: {why}")
    until = session.extend_until
    if until is None:
        raise ExtendRefused(
            f"{session.label}'s server stops at {clock(session.deadline)}: its profile does not allow Extend"
        )
    if session.deadline >= until:
        cap = describe_duration(session.terms.extend_cap)
        raise ExtendRefused(
            f"{session.label}'s server already runs until {clock(until)}, the cap of its profile "
            f"({cap} in all since it started); it cannot be extended further"
        )
    room = (until - session.deadline).total_seconds()
    return session.extended + int(min(session.terms.extend_step, room))


def stop_reason(session: Session, last_activity: datetime | None, now: datetime) -> str | None:
    """Why the session's server must stop now (a sentence for logs and the user), or None."""
    deadline = session.deadline
    if deadline is not None and now >= deadline:
        total = describe_duration((deadline - session.started).total_seconds())
        return f"it reached the end of its session ({total} since it started, at {clock(deadline)})"
    timeout = session.idle_timeout
    if timeout and last_activity is not None and (now - last_activity).total_seconds() >= timeout:
        return (
            f"it was idle for {describe_duration((now - last_activity).total_seconds())} "
            f"(its profile's idle timeout is {describe_duration(timeout)})"
        )
    return None
