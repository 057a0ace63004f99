"""``vigor-agent --config agent.toml COMMAND``: one line per failure, documented exit codes."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from client_agent import errors, prompts
from client_agent.agent import Agent
from client_agent.config import load_config
from client_agent.installer import Outcome

__all__ = [
    "EPILOG",
    "main",
    "run",
]

EPILOG = f"""exit codes:
  {errors.EXIT_OK:<3} up to date, or the command succeeded
  {errors.EXIT_ERROR:<3} unexpected error
  {errors.EXIT_CONFIG:<3} bad command line or configuration
  {errors.EXIT_APPLIED:<3} an update was applied
  {errors.EXIT_AVAILABLE:<3} an update is available (check), or available but not yet due (update --when-due)
  {errors.EXIT_REFUSED:<3} refused: untrusted data (signature, hash, size, nonce, downgrade, expired root)
  {errors.EXIT_LICENSE:<3} the server refused this license (suspended, revoked, other product, not entitled)
  {errors.EXIT_NETWORK:<3} network failure, or the server asked to wait (Retry-After)
  {errors.EXIT_INSTALL:<3} installing failed and was rolled back; the installed application is unchanged
  {errors.EXIT_BUSY:<3} another vigor-agent is working on this installation

Every failure is one line on stderr; --verbose adds the traceback. See docs/agent.md.
"""


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line too, like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(errors.EXIT_CONFIG, f"vigor-agent: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="vigor-agent",
        description="Verified self-update for applications distributed with Vigor.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", required=True, type=Path, help="the agent's TOML configuration file"
    )
    parser.add_argument("--verbose", action="store_true", help="show a traceback with any error")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=text, description=text)
        # SUPPRESS: `--json` before the command is not reset by the subcommand's default.
        cmd.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        return cmd

    status = command("status", "maintenance status, renewal prompt and notices")
    status.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write a status file signed by this installation instead (no network is used)",
    )
    command("check", "ask the server what this installation may have (exit 11: an update)")
    command("download", "check, then download and verify the offered update (no install)")
    apply = command("apply", "install the update `download` fetched")
    update = command("update", "check, download, verify and install, with health check")
    update.add_argument(
        "--when-due",
        action="store_true",
        help="install only once the update's apply-by time has come (critical at once)",
    )
    command("rollback", "return to the previous version (health-checked)")
    command("verify", "re-verify the installed version and the trust chain offline")
    bundle = command("import", "install from an offline bundle (no network is used)")
    bundle.add_argument("bundle", type=Path, help="the bundle file from `vigor bundle export`")
    run = command("run", "stay up to date: `update --when-due` every check_interval")
    run.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)  # tests
    for cmd in (apply, update, bundle):
        cmd.add_argument(
            "--allow-downgrade",
            action="store_true",
            help="accept a version that is not newer than the installed one",
        )
    return parser


def _emit(args: argparse.Namespace, data: Mapping[str, Any], lines: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print("\n".join(lines))


def _outcome_data(outcome: Outcome) -> dict[str, Any]:
    return {
        "applied": outcome.applied,
        "version": outcome.version,
        "message": outcome.message,
        "patch": outcome.patch,
    }


def _outcome_lines(outcome: Outcome) -> list[str]:
    """What a terminal shows: what a patch did (if one was offered), then the outcome."""
    return [*([outcome.patch] if outcome.patch else []), outcome.message]


def _installed(agent: Agent) -> str | None:
    version = agent.installed_version()
    return str(version) if version else None


def cmd_status(agent: Agent, args: argparse.Namespace) -> int:
    """`status` and `check`: the verified answer, as lines or JSON."""
    if getattr(args, "export", None):
        return cmd_export(agent, args)
    agent.recover_if_idle()
    answer = agent.check()
    agent.flush_reports()
    data = prompts.summary(
        answer,
        _installed(agent),
        agent.is_due(answer),
        {"installation_id": agent.installation_id, "product": agent.config.product},
    )
    lines = [f"installed: {data['installed_version'] or 'nothing'}", prompts.offer_line(data)]
    _emit(args, data, [*lines, *prompts.entitlement_lines(answer)])
    if args.command == "check" and answer.manifest is not None:
        return errors.EXIT_AVAILABLE
    return errors.EXIT_OK


def cmd_export(agent: Agent, args: argparse.Namespace) -> int:
    """`status --export FILE`: a status file signed by the installation, for offline machines."""
    from client_agent.status import export_status

    signed = export_status(agent, args.export, agent.clock())["signed"]
    line = f"status of {signed['installation_id']} ({signed['installed_version']}) written to {args.export}"
    _emit(args, signed, [line])
    return errors.EXIT_OK


def cmd_download(agent: Agent, args: argparse.Namespace) -> int:
    """`download`: check, then fetch and verify the artifact for a later `apply`."""
    with agent.exclusive():
        agent.recover()
        answer = agent.check()
        if answer.manifest is None:
            _emit(args, {"downloaded": None, "path": None}, ["up to date; nothing to download"])
            return errors.EXIT_OK
        path = agent.download(answer)
    version = str(answer.manifest.version)
    _emit(
        args,
        {"downloaded": version, "path": str(path)},
        [f"downloaded and verified {version} ({path})"],
    )
    return errors.EXIT_OK


def cmd_apply(agent: Agent, args: argparse.Namespace) -> int:
    """`apply`: install what `download` fetched (its manifest is verified again first)."""
    with agent.exclusive():
        agent.recover()
        pending = agent.pending(allow_downgrade=args.allow_downgrade)
        if pending is None:
            raise errors.AgentError("nothing is downloaded to apply: run `vigor-agent download`")
        outcome = agent.apply(*pending)
    _emit(args, _outcome_data(outcome), [outcome.message])
    return errors.EXIT_APPLIED


def cmd_update(agent: Agent, args: argparse.Namespace) -> int:
    """`update`: everything, with `--when-due` honouring the apply-by time."""
    outcome, answer = agent.update(when_due=args.when_due, allow_downgrade=args.allow_downgrade)
    data = prompts.summary(answer, _installed(agent), agent.is_due(answer), _outcome_data(outcome))
    _emit(args, data, [*_outcome_lines(outcome), *prompts.entitlement_lines(answer)])
    if outcome.applied:
        return errors.EXIT_APPLIED
    return errors.EXIT_AVAILABLE if not outcome.due else errors.EXIT_OK


def cmd_rollback(agent: Agent, args: argparse.Namespace) -> int:
    """`rollback`: back to the previous version."""
    outcome = agent.rollback()
    _emit(args, _outcome_data(outcome), [outcome.message])
    return errors.EXIT_OK


def cmd_verify(agent: Agent, args: argparse.Namespace) -> int:
    """`verify`: offline re-verification; exit 20 when anything does not check out."""
    agent.recover_if_idle()
    problems = agent.verify()
    _emit(
        args,
        {"ok": not problems, "installed_version": _installed(agent), "problems": problems},
        problems or [f"installed version {_installed(agent)} verifies"],
    )
    return errors.EXIT_REFUSED if problems else errors.EXIT_OK


def cmd_import(agent: Agent, args: argparse.Namespace) -> int:
    """`import BUNDLE`: the same verification as online, from a file, with no network."""
    from client_agent.bundle import import_bundle

    result = import_bundle(agent, args.bundle, allow_downgrade=args.allow_downgrade)
    entitlement = result.statement.get("entitlement") or {}
    lines = [
        result.outcome.message,
        f"maintenance: {entitlement.get('status')} — {entitlement.get('message', '')}",
    ]
    if result.clock_note:
        lines.append(f"note: {result.clock_note}")
    data = {
        **_outcome_data(result.outcome),
        "entitlement": entitlement,
        "clock_note": result.clock_note,
    }
    _emit(args, data, lines)
    return errors.EXIT_APPLIED if result.outcome.applied else errors.EXIT_OK


def cmd_run(agent: Agent, args: argparse.Namespace) -> int:
    """`run`: the loop; every round prints one line (errors on stderr) and carries on."""

    def show(result: Outcome | errors.AgentError) -> None:
        if isinstance(result, errors.AgentError):
            print(f"vigor-agent: {result}", file=sys.stderr, flush=True)
        else:
            print("\n".join(_outcome_lines(result)), flush=True)

    agent.run_forever(show, rounds=args.rounds)
    return errors.EXIT_OK


COMMANDS: dict[str, Callable[[Agent, argparse.Namespace], int]] = {
    "status": cmd_status,
    "check": cmd_status,
    "download": cmd_download,
    "apply": cmd_apply,
    "update": cmd_update,
    "rollback": cmd_rollback,
    "verify": cmd_verify,
    "import": cmd_import,
    "run": cmd_run,
}


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; errors propagate to :func:`main`."""
    agent = Agent(load_config(args.config))
    return COMMANDS[args.command](agent, args)


def _fail(args: argparse.Namespace, exc: BaseException, message: str, code: int) -> int:
    message = " ".join(message.split())  # one line, whatever the error carried
    if args.verbose:
        traceback.print_exception(exc)
    print(f"vigor-agent: {message}", file=sys.stderr)
    if args.json:
        error = {"type": type(exc).__name__, "exit_code": code, "message": message}
        print(json.dumps({"error": error}, indent=2))
    return code


def main(argv: Sequence[str] | None = None) -> None:
    """The ``vigor-agent`` entry point: exits with one of the documented codes."""
    args = _parser().parse_args(argv)
    try:
        code = run(args)
    except errors.AgentError as exc:
        code = _fail(args, exc, str(exc), exc.exit_code)
    except KeyboardInterrupt as exc:
        code = _fail(args, exc, "interrupted", errors.EXIT_ERROR)
    except Exception as exc:  # noqa: BLE001 - the one place that turns surprises into one line
        message = f"unexpected error: {type(exc).__name__}: {exc} (--verbose shows where)"
        code = _fail(args, exc, message, errors.EXIT_ERROR)
    sys.exit(code)
