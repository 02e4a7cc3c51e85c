"""Session lifetimes, the I/O shell: the `sciencelab` hub service keeps each running server's
deadline, stops servers past it or idle beyond their profile's timeout, and remembers why.

What it keeps lives in one JSON file (`SessionStore`, `$SCIENCELAB_SESSIONS_FILE`), so deadlines and
extensions survive restarts of the service and of the hub; the hub's pages read the same file
(`session_pages.py`). A pass (`SessionKeeper.check`) costs one hub API request per page of active
users, whatever the number of servers; the servers' own activity reports (the server extension
counts busy kernels and GPUs as activity) tell it which are idle.
"""

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from .session_terms import SESSION_STATE_KEY, Session, extend_session, read_session_record, stop_reason

STORE_VERSION = 1


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str | None) -> datetime | None:
    """A hub API timestamp (ISO 8601, `Z` or an offset) as an aware datetime."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def session_key(user: str, server: str) -> str:
    """`alice/` for alice's default server, `alice/gpu` for her server named gpu."""
    return f"{user}/{server}"


class SessionStore:
    """The service's record, one JSON file: per server, the session's start, the seconds Extend
    added and its deadline; and why each server was last stopped, until it starts again."""

    def __init__(self, path: Path):
        self.path = path
        self.sessions: dict[str, dict] = {}
        self.stops: dict[str, dict] = {}
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.sessions = data.get("sessions", {})
            self.stops = data.get("stops", {})

    def save(self):
        data = {"version": STORE_VERSION, "sessions": self.sessions, "stops": self.stops}
        # Written whole and renamed: the hub reads this file while we write it.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(partial, self.path)

    def extended(self, key: str, started: datetime) -> int:
        """The seconds Extend added to this session (0 for a session started since)."""
        record = self.sessions.get(key)
        return record["extended"] if record and parse_time(record["started"]) == started else 0

    def record(self, session: Session) -> bool:
        """Keep `session`'s start, extension and deadline; whether anything changed."""
        key = session_key(session.user, session.server)
        deadline = session.deadline
        record = {
            "started": session.started.isoformat(),
            "extended": session.extended,
            "deadline": deadline.isoformat() if deadline else None,
            "idle_timeout": session.idle_timeout,
        }
        changed = self.sessions.get(key) != record or key in self.stops
        self.sessions[key] = record
        self.stops.pop(key, None)  # running again: the last stop's reason is old news
        return changed

    def forget_except(self, running: set[str]) -> bool:
        """Drop the sessions of servers no longer running; whether any was dropped."""
        gone = set(self.sessions) - running
        for key in gone:
            del self.sessions[key]
        return bool(gone)

    def record_stop(self, session: Session, reason: str, at: datetime):
        key = session_key(session.user, session.server)
        self.sessions.pop(key, None)
        self.stops[key] = {"at": at.isoformat(), "reason": reason}
        self.save()


def make_session(user: dict, name: str, server: dict, exempt_groups: frozenset[str], store: SessionStore):
    """The session of server `name` in a hub API user model, or None when it has no terms or is
    not up (starting, stopping)."""
    terms = read_session_record((server.get("state") or {}).get(SESSION_STATE_KEY))
    started = parse_time(server.get("started"))
    if terms is None or started is None or not server.get("ready") or server.get("pending"):
        return None
    return Session(
        user=user["name"],
        server=name,
        started=started,
        terms=terms,
        extended=store.extended(session_key(user["name"], name), started),
        exempt=not exempt_groups.isdisjoint(user.get("groups") or ()),
    )


class SessionKeeper:
    """Checks every running server each `interval` seconds and stops those whose time is up."""

    def __init__(
        self,
        hub,
        store: SessionStore,
        exempt_groups: Callable[[], frozenset[str]],
        interval: float,
        log: logging.Logger,
    ):
        self.hub = hub
        self.store = store
        self.exempt_groups = exempt_groups
        self.interval = interval
        self.log = log
        self._stopping: set[str] = set()

    def session_of(self, user: dict, name: str, server: dict) -> Session | None:
        """The session of `user`'s server `name` with the exemptions as they are now (`make_session`)."""
        return make_session(user, name, server, self.exempt_groups(), self.store)

    async def run(self):
        while True:
            try:
                await self.check()
            except Exception:
                # A failed pass (the hub restarting, say) is retried at the next one.
                self.log.exception("Session check failed; retrying in %s s", self.interval)
            await asyncio.sleep(self.interval)

    async def check(self):
        now = now_utc()
        exempt = self.exempt_groups()
        running, changed, due = set(), False, []
        for user in await self.hub.active_users():
            for name, server in (user.get("servers") or {}).items():
                key = session_key(user["name"], name)
                running.add(key)
                session = make_session(user, name, server, exempt, self.store)
                if session is None:
                    continue
                changed |= self.store.record(session)
                reason = stop_reason(session, parse_time(server.get("last_activity")), now)
                if reason and key not in self._stopping:
                    due.append((session, reason))
        changed |= self.store.forget_except(running)
        if changed:
            self.store.save()
        for session, reason in due:
            await self.stop(session, reason)

    async def stop(self, session: Session, reason: str, *, by: str | None = None):
        """Stop `session`'s server through the hub and remember why (`by`: the admin who asked)."""
        key = session_key(session.user, session.server)
        self._stopping.add(key)
        try:
            sentence = f"stopped by the admin {by}" if by else f"stopped because {reason}"
            self.log.info("Stopping %s's server: %s", session.label, sentence)
            self.store.record_stop(session, sentence, now_utc())
            await self.hub.stop_server(session.user, session.server)
        finally:
            self._stopping.discard(key)

    def extend(self, session: Session) -> Session:
        """Extend `session` once (or raise `ExtendRefused`) and keep the new deadline."""
        extended = replace(session, extended=extend_session(session))
        self.store.record(extended)
        self.store.save()
        self.log.info("%s's server extended to %s", extended.label, extended.deadline.isoformat())
        return extended
