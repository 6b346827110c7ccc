"""``sigforge service start|stop|status``: the services of the installed release, through the updater's service
managers (``cli/service_manager.py``): systemd units, or ``current/bin/sigforge up`` with a pidfile ("no-systemd",
``--prefix`` installs). ``--wait-ready S`` polls ``/readyz`` on the loopback until it answers 200 with this
release's version (exit 3 if it does not within S seconds). ``install.sh`` uses it for the start and the final
health check.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import sigforge
from sigforge.cli.service_manager import ProcessHost, make_manager, ready_url
from sigforge.settings import Settings, find_config_file
from sigforge.updates import Layout

EXIT_OK, EXIT_NOT_READY = 0, 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--prefix", type=Path, default=Path("/"), help="root of the installation (default: /)")
    common.add_argument("--services", choices=("auto", "systemd", "pidfile"), default="auto",
                        help="how services are run (auto: systemd when it runs this machine)")  # fmt: skip
    common.add_argument("--wait-ready", type=float, metavar="S", help="then wait up to S seconds for /readyz")
    service = sub.add_parser("service", help="start, stop or probe the installed release's services")
    actions = service.add_subparsers(dest="service_command", required=True, metavar="ACTION")
    actions.add_parser("start", parents=[common], help="start the services of `current`")
    actions.add_parser("stop", parents=[common], help="stop them gracefully")
    actions.add_parser("status", parents=[common], help="whether they run, and /readyz")


def run_service(args: argparse.Namespace, settings: Settings) -> int:
    config = find_config_file(args.config, os.environ)
    config_file = str(config.resolve()) if config is not None else None
    layout = Layout(args.prefix.resolve())
    manager = make_manager(args.services, layout.current, settings, config_file)
    host = ProcessHost(manager, ready_url=ready_url(settings), config_file=config_file)
    version = layout.current_version() or sigforge.__version__
    if args.service_command == "stop":
        manager.stop()
        print(f"stopped ({manager.name})")
        return EXIT_OK
    if args.service_command == "start":
        manager.start()
        print(f"started {version} ({manager.name})")
    running = manager.running()
    if args.wait_ready is None:
        print(f"services: {'running' if running else 'stopped'} ({manager.name})")
        return EXIT_OK if running else EXIT_NOT_READY
    ready, detail = host.wait_healthy(version, args.wait_ready)
    print(f"{'READY' if ready else 'NOT READY'} {host.ready_url}: {detail}")
    return EXIT_OK if ready else EXIT_NOT_READY
