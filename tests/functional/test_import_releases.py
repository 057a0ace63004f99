"""`vigor import releases`: a release history from a folder and a CSV file, published through
the ordinary publish path with historical dates; and `vigor installation list`."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from server.cli import cli
from server.domain.models import Release
from server.services import Services
from tests.common.factories import app_archive


def run(app: Flask, *args: str) -> tuple[int, str, str]:
    result = app.test_cli_runner().invoke(cli, args=list(args))
    return result.exit_code, result.stdout, result.stderr


def history(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "history"
    folder.mkdir()
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        (folder / f"acme-{version}.tar.gz").write_bytes(app_archive(version))
        (folder / f"acme-{version}.zip").write_bytes(app_archive(version) + b"win")
    (folder / "notes-2.0.0.md").write_text("# 2.0\n\nNueva versión.\n")
    csv_file = tmp_path / "history.csv"
    csv_file.write_text(
        "version;kind;severity;date;notes;min_from;file.linux-x86_64;file.windows-x86_64\n"
        "2.0.0;version;;1 mar 2025;notes-2.0.0.md;1.1.0;acme-2.0.0.tar.gz;acme-2.0.0.zip\n"
        "1.0.0;version;;15/01/2024;First release;;acme-1.0.0.tar.gz;\n"
        "1.1.0;security;critical;2024-06-30T12:00:00Z;Fixes a hole;;acme-1.1.0.tar.gz;acme-1.1.0.zip\n"
    )
    return folder, csv_file


def releases(services: Services) -> list[tuple[str, str, str, list[str]]]:
    with services.db.sessions() as s:
        return [
            (
                r.version,
                r.kind,
                r.published_at.isoformat() if r.published_at else "",
                [a.platform for a in r.artifacts],
            )
            for r in s.scalars(select(Release).order_by(Release.published_at))
        ]


def test_a_history_is_published_with_its_dates_and_a_rerun_skips_it(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    assert run(app, "product", "add", "acme-erp")[0] == 0
    folder, csv_file = history(tmp_path)
    args = ("import", "releases", str(folder), "--csv", str(csv_file), "--product", "acme-erp")
    code, out, err = run(app, *args)
    assert code == 0, err
    assert releases(services) == [
        ("1.0.0", "version", "2024-01-15T00:00:00+00:00", ["linux-x86_64"]),
        ("1.1.0", "security", "2024-06-30T12:00:00+00:00", ["linux-x86_64", "windows-x86_64"]),
        ("2.0.0", "version", "2025-03-01T00:00:00+00:00", ["linux-x86_64", "windows-x86_64"]),
    ]
    with services.db.sessions() as s:
        latest = s.scalar(select(Release).where(Release.version == "2.0.0"))
        assert (
            latest is not None and latest.notes.startswith("# 2.0") and latest.min_from == "1.1.0"
        )
    code, _, err = run(app, "release", "verify", "--product", "acme-erp", "--version", "1.1.0")
    assert code == 0, err

    code, out, _ = run(app, *args)
    assert code == 0
    assert out.count("exists already") == 3 and "0 published, 3 skipped" in out


def test_a_bad_row_or_a_missing_file_publishes_nothing(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    assert run(app, "product", "add", "acme-erp")[0] == 0
    folder, csv_file = history(tmp_path)
    (folder / "acme-2.0.0.zip").unlink()
    text = csv_file.read_text().replace("1.1.0;security;critical", "1.1.0;security;")
    csv_file.write_text(text)
    code, _, err = run(
        app, "import", "releases", str(folder), "--csv", str(csv_file), "--product", "acme-erp"
    )
    assert code == 1
    assert "line 2: file.windows-x86_64: no file 'acme-2.0.0.zip'" in err
    assert "line 4: severity: a security revision needs a severity" in err
    assert "nothing was published" in err
    with services.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Release)) == 0


def test_installation_list_filters_and_csv(app: Flask, services: Services, tmp_path: Path) -> None:
    assert run(app, "product", "add", "acme-erp")[0] == 0
    assert run(app, "product", "add", "other")[0] == 0
    rows = "customer,product,license_key,installation_id,version,platform,last_seen\n"
    rows += "initech,acme-erp,INITECH-KEY-0001,inst-initech-000001,4.0.0,linux-x86_64,2026-01-10\n"
    rows += "initech,acme-erp,INITECH-KEY-0001,inst-initech-000002,4.2.0,linux-x86_64,2026-03-01\n"
    rows += "globex,other,GLOBEX-KEY-00001,inst-globex-0000001,4.0.0,windows-x86_64,01/02/2026\n"
    csv_file = tmp_path / "installations.csv"
    csv_file.write_text(rows)
    assert run(app, "import", "customers", str(csv_file))[0] == 0

    def uids(*options: str) -> list[str]:
        code, out, err = run(app, "installation", "list", "--csv", *options)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].startswith("customer,product,license_id,license_prefix,installation_id")
        return [line.split(",")[4] for line in lines[1:]]

    assert uids() == ["inst-globex-0000001", "inst-initech-000001", "inst-initech-000002"]
    assert uids("--customer", "initech", "--version", "4.0.0") == ["inst-initech-000001"]
    assert uids("--product", "other") == ["inst-globex-0000001"]
    assert uids("--seen-before", "2026-02-01") == ["inst-initech-000001"]
    assert uids("--seen-after", "1/2/2026", "--seen-before", "2026-03-01") == [
        "inst-globex-0000001"
    ]
    code, _, err = run(app, "installation", "list", "--customer", "nobody")
    assert code == 1 and err.strip() == "error: no customer 'nobody'"
    code, _, err = run(app, "installation", "list", "--seen-after", "yesterday")
    assert code == 1 and "--seen-after: 'yesterday' is not a date" in err
