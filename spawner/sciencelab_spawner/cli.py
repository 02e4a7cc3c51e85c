"""The `sciencelab` command."""

import argparse
import os
import sys

from .demo import DemoError, DemoOidc, make_demo_settings, run_demo


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciencelab", description="ScienceLab command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run a real JupyterHub on 127.0.0.1 with ScienceLab's spawner and demo users",
        description="Run a real JupyterHub on 127.0.0.1 with ScienceLab's local profile "
        "spawner, three example profiles and the users alice, bob and admin.",
    )
    demo.add_argument("--port", type=int, default=8000, help="public port (default: 8000)")
    demo.add_argument(
        "--password",
        default=os.environ.get("SCIENCELAB_DEMO_PASSWORD"),
        help="password of alice and bob, 8 characters or more "
        "(default: $SCIENCELAB_DEMO_PASSWORD, else generated and printed)",
    )
    demo.add_argument(
        "--admin-password",
        default=os.environ.get("SCIENCELAB_DEMO_ADMIN_PASSWORD"),
        help="password of admin, 32 characters or more "
        "(default: $SCIENCELAB_DEMO_ADMIN_PASSWORD, else generated and printed)",
    )
    demo.add_argument(
        "--state-dir",
        default=".sciencelab",
        help="where the hub keeps its database, secrets and user homes (default: .sciencelab)",
    )
    demo.add_argument(
        "--oidc-issuer",
        help="log users in at this OpenID Connect provider instead of with passwords (docs/admin-login.md); "
        "`make demo-oidc` runs one on 127.0.0.1",
    )
    demo.add_argument(
        "--oidc-client-id", default="sciencelab-demo", help="the hub's client id there (default: sciencelab-demo)"
    )
    demo.add_argument(
        "--oidc-client-secret-file", help="a file holding the client's secret (needed with --oidc-issuer)"
    )
    demo.add_argument(
        "--oidc-groups-claim",
        default="groups",
        help="the claim listing a user's groups: groups (default) or wlcg.groups (INDIGO-IAM's paths)",
    )
    return parser


def make_demo_oidc(args: argparse.Namespace) -> DemoOidc | None:
    if not args.oidc_issuer:
        return None
    if not args.oidc_client_secret_file:
        raise DemoError("--oidc-issuer: give the client's secret with --oidc-client-secret-file too")
    return DemoOidc(args.oidc_issuer, args.oidc_client_id, args.oidc_client_secret_file, args.oidc_groups_claim)


def main(argv: list[str] | None = None):
    args = make_parser().parse_args(argv)
    try:
        settings = make_demo_settings(
            args.state_dir, args.port, args.password, args.admin_password, make_demo_oidc(args)
        )
    except DemoError as error:
        sys.exit(f"sciencelab demo: {error}")
    try:
        run_demo(settings)
    except KeyboardInterrupt:
        # Ctrl-C before the hub took over SIGINT: nothing runs yet. 130: interrupted, as shells say.
        sys.exit(130)
