"""The deployment files keep the directives that make them safe and self-healing.

Docker cannot run here, so these read the files: the Dockerfile as text, the compose file as
YAML, the systemd unit with a small INI reader that keeps repeated keys (as systemd does).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from bot.__main__ import _parser
from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Return {section: {key: [values...]}}; comments and blank lines skipped, like systemd."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    bases = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert bases and all(re.match(r"python:3\.1[1-9]-slim\b", base) for base in bases)
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]

    def last(keyword: str) -> str:
        values = [rest for k, rest in final if k == keyword]
        assert values, f"no {keyword} in the final stage"
        return values[-1]

    user = last("USER")
    assert user.split(":")[0] not in ("root", "0") and user.split(":")[0].isdigit()
    assert '"/data"' in last("VOLUME") or last("VOLUME") == "/data"
    envs = " ".join(rest for k, rest in final if k == "ENV")
    assert "DATABASE_PATH=/data/" in envs
    healthcheck = last("HEALTHCHECK")
    assert "--interval=" in healthcheck and '"-m", "bot", "health"' in healthcheck
    assert last("CMD") == '["python", "-m", "bot"]'
    runs = " ".join(rest for k, rest in instructions if k == "RUN")
    assert "[test]" not in runs and ".[" not in runs  # no test extras in the image
    # Every path the build copies exists, so a rename breaks this test, not the build.
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
    # The health check is a real command of this program.
    assert _parser().parse_args(["health"]).command == "health"


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    service = compose["services"]["bot"]
    assert service["restart"] == "unless-stopped"
    env_files = service["env_file"]
    assert "../.env" in ([env_files] if isinstance(env_files, str) else env_files)
    assert service["build"]["context"] == ".."
    assert (DEPLOY / ".." / service["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert service["environment"]["DATABASE_PATH"].startswith("/data/")
    named = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/data"]
    assert named and named[0] in compose["volumes"]  # a named volume, declared
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["logging"]["options"]["max-size"]  # logs rotate


def test_systemd_unit() -> None:
    unit = read_unit(DEPLOY / "refinebot.service")
    service = unit["Service"]

    def one(key: str) -> str:
        assert len(service.get(key, [])) == 1, f"{key}: {service.get(key)}"
        return service[key][0]

    command = shlex.split(one("ExecStart"))
    assert command[0].endswith("/.venv/bin/python") and command[1:] == ["-m", "bot"]
    assert one("Restart") == "on-failure" and one("RestartSec")
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "StateDirectory": "refinebot",
    }.items():
        assert one(key) == value, key
    assert one("User") not in ("root", "0") and one("EnvironmentFile")
    writable = one("ReadWritePaths").split()
    assert "/var/lib/refinebot" in writable
    database = [v for v in service["Environment"] if v.startswith("DATABASE_PATH=")]
    assert len(database) == 1
    assert any(database[0].removeprefix("DATABASE_PATH=").startswith(w + "/") for w in writable)
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"][0]


def test_deploy_readme_states_capacity_from_the_benchmark() -> None:
    text = (DEPLOY / "README.md").read_text()
    section = text.split("\n## Capacity\n", 1)[1].split("\n## ", 1)[0]
    assert "make bench" in section and "rounds a second" in section
    for heading in ("Docker Compose", "systemd", "Webhook mode", "Backups", "Why one process"):
        assert f"## {heading}" in text


def test_every_setting_is_documented() -> None:
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        key = name.upper()
        assert re.search(rf"^#? ?{key}=", example, re.M), f"{key} missing from .env.example"
        assert re.search(rf"^\|[^|\n]*\b{key}\b", readme, re.M), f"{key} missing from README"
