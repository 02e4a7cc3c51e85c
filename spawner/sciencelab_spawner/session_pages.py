"""Session lifetimes on the hub's pages: each server's deadline on the home page, why a server was
stopped on the next visit, and the admins' sessions page of the `sciencelab` service.

The hub's pages read the service's `SessionStore` file through `JupyterHub.template_vars`
(`make_session_template_vars`); the templates under `templates/` show it. Pure apart from reading
that file; every value reaches HTML through Jinja's or `html.escape`'s escaping.
"""

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from pathlib import Path

from .session_terms import Session, clock, describe_duration

# The hub's templates that show sessions; they extend JupyterHub's own (`templates/home.html`).
TEMPLATES_DIR = str(files(__package__).joinpath("templates"))


def make_server_notes(store: dict, user: str, started: dict[str, datetime | None], now: datetime) -> dict[str, dict]:
    """Per server name of `user`: its deadline in words while it runs (`started`: the hub's start
    time of each running server, naive UTC as JupyterHub keeps it), or why it was last stopped."""
    notes = {}
    for key, record in store.get("sessions", {}).items():
        owner, _, name = key.partition("/")
        begun = started.get(name) if owner == user else None
        if begun is None or datetime.fromisoformat(record["started"]) != begun.replace(tzinfo=UTC):
            continue  # not running, or the record of an earlier session
        note = {}
        if record.get("deadline"):
            deadline = datetime.fromisoformat(record["deadline"])
            left = describe_duration((deadline - now).total_seconds())
            note["deadline"] = f"Stops at {clock(deadline)} ({left} left)."
        if record.get("idle_timeout"):
            note["idle"] = f"Stops after {describe_duration(record['idle_timeout'])} without activity."
        if note:
            notes[name] = note
    for key, record in store.get("stops", {}).items():
        owner, _, name = key.partition("/")
        if owner == user and started.get(name) is None:
            at = datetime.fromisoformat(record["at"])
            notes[name] = {"stopped": f"Your server was {record['reason']}, at {clock(at)}."}
    return notes


def make_session_template_vars(store_path: str) -> Callable:
    """`c.JupyterHub.template_vars["sciencelab_sessions"]`: the current user's server notes."""

    def server_notes(user) -> dict[str, dict]:
        if user is None:
            return {}
        try:
            store = json.loads(Path(store_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no session kept yet (or the service is writing it): nothing to say
        started = {
            name: spawner.orm_spawner.started if spawner.active else None for name, spawner in user.spawners.items()
        }
        return make_server_notes(store, user.name, started, datetime.now(UTC))

    return server_notes


def make_sessions_page(
    rows: Iterable[tuple[Session | None, dict]], now: datetime, prefix: str, xsrf: str, hub_static: str = "/hub/static/"
) -> str:
    """The admins' page: each running server with its deadline, idle time, Extend and Stop;
    `prefix` is the service's, `hub_static` where the hub serves its stylesheet."""
    lines = []
    for session, server in rows:
        if session is None:
            continue  # starting, stopping, or started before lifetimes: nothing to show or do
        last = server.get("last_activity")
        idle = describe_duration((now - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds())
        deadline = session.deadline
        path = f"api/users/{session.user}/" + (f"servers/{session.server}" if session.server else "server")
        if session.exempt:
            ends = "exempt"
        elif deadline is None:
            ends = "no lifetime"
        else:
            ends = f"{clock(deadline)} ({describe_duration((deadline - now).total_seconds())} left)"
        timeout = describe_duration(session.idle_timeout) if session.idle_timeout else "never"
        extend = (
            f'<button class="btn btn-sm btn-outline-primary" data-action="extend" data-path="{escape(path)}/deadline">'
            "Extend</button> "
            if session.extend_until and deadline < session.extend_until
            else ""
        )
        lines.append(
            f'<tr data-server="{escape(session.label)}"><td>{escape(session.label)}</td>'
            f"<td>{escape(clock(session.started))}</td><td>{escape(ends)}</td>"
            f"<td>{escape(idle)}</td><td>{escape(timeout)}</td><td>{extend}"
            f'<button class="btn btn-sm btn-outline-danger" data-action="stop" data-path="{escape(path)}">Stop</button>'
            "</td></tr>"
        )
    body = "".join(lines) or '<tr><td colspan="6">No server with a session is running.</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ScienceLab sessions</title>
<link rel="stylesheet" href="{escape(hub_static)}css/style.min.css"></head>
<body><div class="container mt-3">
<h1 class="h3">Running sessions</h1>
<p class="text-muted">Each server's deadline and time since its last activity. Exempt groups and
lifetimes are set in the profile file (<code>sessions</code>, and each profile's <code>lifetime</code>).</p>
<table class="table table-sm" id="sciencelab-sessions"><thead><tr><th>Server</th><th>Started</th>
<th>Deadline</th><th>Idle for</th><th>Idle timeout</th><th></th></tr></thead><tbody>{body}</tbody></table>
<p id="sciencelab-sessions-message" class="text-danger"></p></div>
<script>
document.querySelectorAll("button[data-action]").forEach((button) => {{
  button.addEventListener("click", async () => {{
    const method = button.dataset.action === "stop" ? "DELETE" : "POST";
    const response = await fetch({json.dumps(prefix)} + button.dataset.path, {{
      method, body: method === "POST" ? "{{}}" : undefined,
      headers: {{"X-XSRFToken": {json.dumps(xsrf)}, "Content-Type": "application/json"}}
    }});
    if (response.ok) {{ location.reload(); return; }}
    const error = await response.json();
    document.getElementById("sciencelab-sessions-message").textContent = error.message;
  }});
}});
</script></body></html>"""
