"""`make demo-oidc`: the demo hub with its users logging in at a local OpenID Connect provider.

Starts the tests' provider (`provider.OidcProvider`) on 127.0.0.1 with alice (in gpu-users) and bob (in
no group), registers the demo hub as its client `sciencelab-demo`, prints the passwords, then runs
`sciencelab demo --oidc-issuer ...` (arguments after `--` go to it, `--port` included) until Ctrl-C, and
stops the provider. The provider keeps its state in `<state dir>/oidc-provider`.
"""

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from sciencelab_spawner.demo import read_or_make_secret

from .provider import TEST_USERS, OidcProvider

CLIENT_ID = "sciencelab-demo"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the demo hub's public port (default: 8000)")
    parser.add_argument("--state-dir", default=".sciencelab", help="the demo's state (default: .sciencelab)")
    args, demo_args = parser.parse_known_args()
    if reason := OidcProvider.missing():
        sys.exit(f"make demo-oidc: {reason}")
    state = Path(args.state_dir).resolve()
    (state / "oidc-provider").mkdir(parents=True, exist_ok=True, mode=0o700)
    secret_file = state / "oidc-client-secret"
    secret = read_or_make_secret(secret_file)
    provider = OidcProvider(state / "oidc-provider")
    provider.add_client(CLIENT_ID, secret, [f"http://127.0.0.1:{args.port}/hub/oauth_callback"])
    provider.start()
    print(f"OIDC provider: {provider.issuer} (log: {provider.log_path})")
    for user in TEST_USERS:
        groups = ", ".join(user["groups"]) or "no group"
        print(f"  {user['username']}: password {user['password']} ({groups})")
    command = [
        str(Path(sys.executable).parent / "sciencelab"),
        "demo",
        f"--port={args.port}",
        f"--state-dir={state}",
        f"--oidc-issuer={provider.issuer}",
        f"--oidc-client-id={CLIENT_ID}",
        f"--oidc-client-secret-file={secret_file}",
        *(argument for argument in demo_args if argument != "--"),
    ]
    # Ctrl-C, or SIGTERM, stops the demo, then the provider (even where a shell started this one ignoring SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    demo = subprocess.Popen(command, env=os.environ)
    try:
        demo.wait()
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reaches the demo too (it stops once, whatever the count); a SIGINT sent to
        # this process alone must reach it as well.
        demo.send_signal(signal.SIGINT)
        demo.wait()
    finally:
        provider.stop()
    sys.exit(demo.returncode)


if __name__ == "__main__":
    main()
