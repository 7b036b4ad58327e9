"""`python -m bot health`: database, heartbeat freshness and (webhook mode) the listening port."""

from __future__ import annotations

import json
import socket
import time

from bot.health import check_health, heartbeat_path, write_heartbeat
from storage.store import Store
from tests.cli_helpers import clean_environment, free_port, run_cli


async def make_database(tmp_path):
    database = tmp_path / "data" / "refinebot.db"
    store = await Store.open(database)
    await store.close()
    return database


def test_no_database_is_unhealthy(tmp_path) -> None:
    report = check_health(tmp_path / "data" / "refinebot.db")
    assert not report.ok and "does not exist" in report.line
    assert not (tmp_path / "data").exists()  # the check creates nothing


async def test_heartbeat_freshness(tmp_path) -> None:
    database = await make_database(tmp_path)
    assert check_health(database).line.startswith("unhealthy: no heartbeat yet")

    path = write_heartbeat(database.parent, "polling")
    assert path == heartbeat_path(database.parent)
    assert path.stat().st_mode & 0o777 == 0o600
    report = check_health(database)
    assert report.ok and report.line.startswith("healthy: polling, heartbeat 0 s ago")

    stale = check_health(database, max_age=120, now=time.time() + 300)
    assert not stale.ok and "last heartbeat 300 s ago (limit 120 s)" in stale.line


async def test_a_database_that_does_not_answer_is_unhealthy(tmp_path) -> None:
    database = tmp_path / "data" / "refinebot.db"
    database.parent.mkdir()
    database.write_bytes(b"this is not a database" * 100)
    write_heartbeat(database.parent, "polling")
    report = check_health(database)
    assert not report.ok and "does not answer" in report.line


async def test_webhook_mode_knocks_on_the_port(tmp_path) -> None:
    database = await make_database(tmp_path)
    closed = free_port()
    write_heartbeat(database.parent, "webhook", "0.0.0.0", closed)
    report = check_health(database)
    assert not report.ok
    assert f"webhook server on 127.0.0.1:{closed} does not accept connections" in report.line

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        write_heartbeat(database.parent, "webhook", "0.0.0.0", server.getsockname()[1])
        report = check_health(database)
    assert report.ok and report.line.startswith("healthy: webhook")


async def test_a_running_bot_is_healthy_and_beats_only_while_it_polls(
    bots, make_settings, telegram, data_dir, tmp_path
) -> None:
    app = await bots.start(make_settings())
    path = heartbeat_path(data_dir)
    await telegram.wait_for(path.exists)
    beat = json.loads(path.read_text())
    assert beat["mode"] == "polling" and abs(beat["at"] - time.time()) < 10

    env = clean_environment(DATABASE_PATH=str(data_dir / "refinebot.db"))
    finished = await run_cli("health", env=env, cwd=tmp_path)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.startswith("healthy: polling")

    # Once the update loop stops, the heartbeat is no longer written, so it goes stale.
    (job,) = app.job_queue.get_jobs_by_name("heartbeat")
    path.unlink()
    await job.run(app)
    assert path.exists()
    path.unlink()
    await app.updater.stop()
    await job.run(app)
    assert not path.exists()
