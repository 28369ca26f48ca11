"""`facility gateway`: run a gateway box's adapters (`--config FILE`), or check its config (`check FILE`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from gateway.config import GatewayConfig, GatewayConfigError, check_file, load_config
from ground.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `gateway` subcommand and its `check`."""
    gateway = sub.add_parser(
        "gateway", help="read Modbus, BACnet and GB/T 26875.3 equipment and publish it to FACILITY_MQTT_URL"
    )
    gateway.add_argument("--config", type=Path, metavar="FILE", help="the gateway's config (YAML)")
    gateway_sub = gateway.add_subparsers(dest="gateway_command")
    check = gateway_sub.add_parser("check", help="validate a gateway config as `--config` would at start-up")
    check.add_argument("file", type=Path)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out `facility gateway`; 1 with every problem on stderr when the config cannot be used."""
    if args.gateway_command == "check":
        problems = check_file(args.file)
        for problem in problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"{args.file}: ok")
        return 0
    if args.config is None:
        print("facility gateway: give --config FILE (or `check FILE`)", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except GatewayConfigError as exc:
        print(f"facility gateway: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"facility gateway: {args.config}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    asyncio.run(_until_signalled(config, settings))
    return 0


async def _until_signalled(config: GatewayConfig, settings: Settings) -> None:
    # Imported here: the gateway's Modbus and BACnet libraries are 12 MB that every other
    # command (`facility serve` among them) would carry for nothing.
    from gateway.app import run as run_gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_gateway(config, settings, stop)
