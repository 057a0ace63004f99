"""``vigor-agent --config agent.toml COMMAND``: one line per failure, documented exit codes."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from client_agent import errors
from client_agent.agent import Agent
from client_agent.config import load_config
from client_agent.verify import CheckAnswer

EPILOG = """exit codes:
  0   up to date, or the command succeeded
  1   unexpected error
  2   bad command line or configuration
  10  an update was applied
  11  an update is available (check), or available but not yet due (update --when-due)
  20  refused: untrusted data (signature, hash, size, nonce, downgrade, expired root) or license
  30  network failure, or the server asked to wait
  40  install failed and was rolled back; the installed application is unchanged
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigor-agent",
        description="Verified self-update for applications distributed with Vigor.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, type=Path, help="the agent's TOML configuration")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("status", "maintenance status, renewal prompt and notices"),
        ("check", "ask the server what this installation may have"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "status":
            cmd.add_argument(
                "--export",
                type=Path,
                metavar="FILE",
                default=None,
                help="write a status file signed by this installation (no network is used)",
            )
    download = sub.add_parser("download", help="check, then download and verify the offered update")
    download.add_argument("--json", action="store_true")
    sub.add_parser("apply", help="install the update downloaded by `download`").add_argument(
        "--allow-downgrade", action="store_true"
    )
    update = sub.add_parser("update", help="check, download, verify and install")
    update.add_argument(
        "--when-due",
        action="store_true",
        help="apply only when the update's apply-by time has come (critical at once)",
    )
    update.add_argument(
        "--allow-downgrade", action="store_true", help="accept a version not newer than installed"
    )
    update.add_argument("--json", action="store_true")
    sub.add_parser("rollback", help="return to the previous version")
    bundle = sub.add_parser("import", help="install from an offline bundle (no network is used)")
    bundle.add_argument("bundle", type=Path, help="the bundle file from `vigor bundle export`")
    bundle.add_argument("--allow-downgrade", action="store_true")
    bundle.add_argument("--json", action="store_true")
    sub.add_parser(
        "run",
        help="keep the installation up to date: `update --when-due` every check_interval "
        "(with jitter, obeying Retry-After)",
    )
    verify = sub.add_parser("verify", help="re-verify the installed version offline")
    verify.add_argument("--json", action="store_true")
    return parser


def _entitlement_lines(answer: CheckAnswer) -> list[str]:
    ent = answer.entitlement
    lines = [f"maintenance: {ent.get('status', 'unknown')} — {ent.get('message', '')}".rstrip(" —")]
    renewal = answer.renewal
    if renewal and ent.get("status") in {"expiring", "grace", "lapsed", "none"}:
        lines.append("")
        lines.append(f"  ! {renewal.get('message', '')}")
        counts = (renewal.get("updates", 0), renewal.get("security", 0), renewal.get("versions", 0))
        if any(counts):
            lines.append(
                f"    missing: {counts[0]} update(s), {counts[1]} security revision(s), "
                f"{counts[2]} new version(s); newest {renewal.get('newest_version')}"
            )
        url = renewal.get("renewal_url") or ent.get("renewal_url")
        if url:
            lines.append(f"    renew at {url}")
    for notice in answer.notices:
        lines.append(f"  notice ({notice.get('code')}): {notice.get('message')}")
    return lines


def _answer_json(agent: Agent, answer: CheckAnswer) -> dict[str, Any]:
    manifest = answer.manifest
    return {
        "installation_id": agent.installation_id,
        "installed_version": str(agent.installed_version() or ""),
        "entitlement": dict(answer.entitlement),
        "renewal": dict(answer.renewal) if answer.renewal else None,
        "notices": [dict(n) for n in answer.notices],
        "update": None
        if manifest is None
        else {
            "version": str(manifest.version),
            "kind": manifest.kind,
            "severity": manifest.severity,
            "size": manifest.artifact.size,
            "sha256": manifest.artifact.sha256,
            "apply_by": answer.apply_by.isoformat() if answer.apply_by else None,
            "due": agent.is_due(answer),
        },
    }


def _print(args: argparse.Namespace, data: Mapping[str, Any], lines: Sequence[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print("\n".join(lines))


def run(args: argparse.Namespace) -> int:
    agent = Agent(load_config(args.config))
    if args.command == "status" and args.export:
        from client_agent.status import export_status

        document = export_status(agent, args.export, agent.clock())
        signed = document["signed"]
        _print(
            args,
            signed,
            [
                f"status of {signed['installation_id']} ({signed['installed_version']}) "
                f"written to {args.export}"
            ],
        )
        return errors.EXIT_OK
    if args.command in {"status", "check"}:
        agent.recover()
        answer = agent.check()
        data = _answer_json(agent, answer)
        lines = [
            f"installed: {data['installed_version'] or 'nothing'}",
            *_entitlement_lines(answer),
        ]
        if answer.manifest is not None:
            update = data["update"]
            due = "due now" if update["due"] else f"apply by {update['apply_by']}"
            lines.insert(
                1,
                f"update available: {update['version']} ({update['kind']}"
                f"{', ' + update['severity'] if update['severity'] else ''}; {due})",
            )
        elif args.command == "check":
            lines.insert(1, "up to date")
        _print(args, data, lines)
        return (
            errors.EXIT_AVAILABLE if args.command == "check" and answer.manifest else errors.EXIT_OK
        )
    if args.command == "download":
        answer = agent.check()
        if answer.manifest is None:
            _print(args, {"downloaded": None}, ["up to date; nothing to download"])
            return errors.EXIT_OK
        path = agent.download(answer)
        _print(
            args,
            {"downloaded": str(answer.manifest.version), "path": str(path)},
            [f"downloaded and verified {answer.manifest.version} ({path})"],
        )
        return errors.EXIT_OK
    if args.command == "apply":
        agent.recover()
        answer = agent.last_check(allow_downgrade=args.allow_downgrade)
        if answer.manifest is None:
            print("up to date; nothing to apply")
            return errors.EXIT_OK
        artifact = agent.state_dir / "downloads" / answer.manifest.artifact.sha256
        if not artifact.exists():
            raise errors.AgentError("the update is not downloaded yet: run `vigor-agent download`")
        outcome = agent.apply(answer.manifest, artifact)
        print(outcome.message)
        return errors.EXIT_APPLIED
    if args.command == "update":
        outcome, answer = agent.update(when_due=args.when_due, allow_downgrade=args.allow_downgrade)
        data = {
            **_answer_json(agent, answer),
            "applied": outcome.applied,
            "message": outcome.message,
        }
        _print(args, data, [outcome.message, *_entitlement_lines(answer)])
        if outcome.applied:
            return errors.EXIT_APPLIED
        return errors.EXIT_OK if outcome.due and outcome.version is None else errors.EXIT_AVAILABLE
    if args.command == "rollback":
        print(agent.rollback().message)
        return errors.EXIT_OK
    if args.command == "import":
        from client_agent.bundle import import_bundle

        result = import_bundle(agent, args.bundle, allow_downgrade=args.allow_downgrade)
        ent = result.statement.get("entitlement") or {}
        lines = [
            result.outcome.message,
            f"maintenance: {ent.get('status')} — {ent.get('message', '')}",
        ]
        if result.clock_note:
            lines.append(f"note: {result.clock_note}")
        _print(
            args,
            {
                "applied": result.outcome.applied,
                "version": result.outcome.version,
                "message": result.outcome.message,
                "entitlement": ent,
                "clock_note": result.clock_note,
            },
            lines,
        )
        return errors.EXIT_APPLIED if result.outcome.applied else errors.EXIT_OK
    if args.command == "run":
        agent.run_forever()
    problems = agent.verify()
    _print(
        args, {"ok": not problems, "problems": problems}, problems or ["installed version verifies"]
    )
    return errors.EXIT_REFUSED if problems else errors.EXIT_OK


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        code = run(args)
    except errors.AgentError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"vigor-agent: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("vigor-agent: interrupted", file=sys.stderr)
        code = errors.EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the one place that turns surprises into one line
        if args.verbose:
            traceback.print_exc()
        print(
            f"vigor-agent: unexpected error: {type(exc).__name__}: {exc} (use --verbose)",
            file=sys.stderr,
        )
        code = errors.EXIT_ERROR
    sys.exit(code)
