"""The deployment files keep the directives that make them safe and self-healing.

Docker cannot run here, so these read the files: the Dockerfile as text, the compose file as
YAML, the systemd unit with a small INI reader that keeps repeated keys (as systemd does).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


# --- the lock files: what `make run/test/lint/bench`, CI and the Docker image install -------

REQUIREMENTS = ROOT / "requirements"
LOCKS = {name: REQUIREMENTS / f"{name}.txt" for name in ("runtime", "test", "bench")}
# (sys_platform, platform_system, os_name, python_version): where the bot and its tests run.
ENVIRONMENTS = [
    (platform, system, os_name, python)
    for platform, system, os_name in (
        ("linux", "Linux", "posix"),
        ("darwin", "Darwin", "posix"),
        ("win32", "Windows", "nt"),
    )
    for python in ("3.11", "3.12", "3.13")
]


def marker_env(platform: str, system: str, os_name: str, python: str) -> dict[str, str]:
    return {
        "sys_platform": platform,
        "platform_system": system,
        "os_name": os_name,
        "python_version": python,
        "python_full_version": python + ".0",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "extra": "",
    }


def lock_entries(path: Path) -> list[tuple[Requirement, list[str]]]:
    """Every requirement of a lock file with its hashes; continuation lines joined."""
    entries = []
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("-"), f"{path.name}: an option in the lock: {line}"
        spec, *hashes = (part.strip() for part in line.split("--hash="))
        entries.append((Requirement(spec), [h.split()[0] for h in hashes]))
    return entries


def lock_pins(path: Path) -> dict[str, list[tuple[str, Marker | None]]]:
    pins: dict[str, list[tuple[str, Marker | None]]] = {}
    for requirement, _ in lock_entries(path):
        (version,) = (s.version for s in requirement.specifier)
        pins.setdefault(canonicalize_name(requirement.name), []).append(
            (version, requirement.marker)
        )
    return pins


def pyproject_requirements() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"runtime": [Requirement(r) for r in project["dependencies"]]}
    for extra, requirements in project["optional-dependencies"].items():
        groups[extra] = [Requirement(r) for r in requirements]
    return groups


def test_lock_files_pin_exact_hashed_versions_and_name_no_index() -> None:
    for name, path in LOCKS.items():
        text = path.read_text()
        assert "make lock" in text.splitlines()[1], f"{name}: not written by `make lock`"
        # No index, mirror, local path or direct URL: each machine's own pip settings apply.
        for forbidden in ("index-url", "find-links", "trusted-host", "file:", "://", "/opt/"):
            assert forbidden not in text, f"{path.name} names {forbidden}"
        entries = lock_entries(path)
        assert entries
        for requirement, hashes in entries:
            assert requirement.url is None and not requirement.extras, str(requirement)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", str(requirement)
            assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes)


def test_lock_covers_pyproject_with_its_markers() -> None:
    groups = pyproject_requirements()
    assert set(groups) == {"runtime", "test", "bench"}
    wanted = {"runtime": ["runtime"], "test": ["runtime", "test"], "bench": list(groups)}
    for lock, group_names in wanted.items():
        pins = lock_pins(LOCKS[lock])
        for requirement in (r for g in group_names for r in groups[g]):
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{requirement} is not in {LOCKS[lock].name}: run `make lock`"
            for env in ENVIRONMENTS:
                environment = marker_env(*env)
                applies = [v for v, m in pins[name] if m is None or m.evaluate(environment)]
                if requirement.marker is None or requirement.marker.evaluate(environment):
                    assert len(applies) == 1, f"{name} on {env}: {applies}"
                    assert requirement.specifier.contains(applies[0], prereleases=True), (
                        f"{LOCKS[lock].name} pins {name}=={applies[0]}, pyproject.toml wants "
                        f"{requirement.specifier}: run `make lock`"
                    )
                elif lock == "runtime":  # e.g. uvloop: never on win32
                    assert not applies, f"{name} on {env}: {requirement.marker}"
            # A requirement's extras (python-telegram-bot[job-queue,...]) bring their packages.
            if requirement.extras:
                for dependency in map(Requirement, metadata.requires(requirement.name) or []):
                    extras_env = marker_env("linux", "Linux", "posix", "3.11")
                    if dependency.marker and any(
                        dependency.marker.evaluate({**extras_env, "extra": extra})
                        for extra in requirement.extras
                    ):
                        assert canonicalize_name(dependency.name) in pins, str(dependency)


def test_the_three_locks_agree() -> None:
    runtime, test, bench = (lock_pins(LOCKS[name]) for name in ("runtime", "test", "bench"))
    for smaller, larger in ((runtime, test), (test, bench)):
        for name, pins in smaller.items():
            assert larger.get(name) == pins, f"{name}: {pins} vs {larger.get(name)}"
    # The image installs the runtime lock only: no test tools in it.
    for tool in ("pytest", "ruff", "mypy", "py-spy"):
        assert tool not in runtime, tool


def make_dry_run(tmp_path: Path, *targets: str) -> list[str]:
    """The commands `make -n -B TARGET` would run, in a copy of the files the Makefile reads."""
    assert shutil.which("make") is not None, "make is part of the README's install steps"
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    if not (tmp_path / "requirements").exists():
        shutil.copytree(REQUIREMENTS, tmp_path / "requirements")
    result = subprocess.run(
        ["make", "-n", "-B", "-C", str(tmp_path), "--no-print-directory", *targets],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def test_makefile_installs_from_the_lock(tmp_path: Path) -> None:
    def installs(commands: list[str]) -> list[list[str]]:
        return [
            shlex.split(c)[shlex.split(c).index("install") + 1 :]
            for c in commands
            if re.search(r"\bpip install\b", c)
        ]

    commands = make_dry_run(tmp_path, "test")
    assert installs(commands) == [
        ["--quiet", "--require-hashes", "-r", "requirements/test.txt"],
        ["--quiet", "--no-deps", "-e", "."],  # the project itself, editable, after its deps
    ]
    assert commands[-1].endswith("-m pytest -q")
    bench = installs(make_dry_run(tmp_path, "bench"))
    assert ["--quiet", "--require-hashes", "-r", "requirements/bench.txt"] in bench
    for target in ("run", "lint"):
        assert installs(make_dry_run(tmp_path, target)) == installs(commands)

    # The stamp is named after the lock: a changed lock reinstalls.
    def stamp() -> str:
        (touch,) = (c for c in make_dry_run(tmp_path, "test") if c.startswith("touch "))
        return touch

    before = stamp()
    with (tmp_path / "requirements" / "test.txt").open("a") as lock:
        lock.write("\n")
    assert stamp() != before

    # `make lock` writes all three with one universal, hashed resolution and names no index.
    compiles = [c for c in make_dry_run(tmp_path, "lock") if " pip compile " in c]
    outputs = [shlex.split(c)[shlex.split(c).index("-o") + 1] for c in compiles]
    assert sorted(outputs) == sorted(f"requirements/{p.name}" for p in LOCKS.values())
    for command in compiles:
        assert "--universal" in command and "--generate-hashes" in command
        assert "index" not in command and "find-links" not in command


def test_dockerfile_installs_the_runtime_lock() -> None:
    instructions = dockerfile_instructions()
    start = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    final = instructions[start:]
    copies = {
        rest.split()[-1]: rest.split()[0]
        for k, rest in final
        if k == "COPY" and not rest.startswith("--")
    }
    runs = [rest for k, rest in final if k == "RUN" and "pip install" in rest]
    (lock_install,) = (r for r in runs if "-r " in r)
    assert "--require-hashes" in lock_install
    target = lock_install.split("-r ", 1)[1].split()[0]
    assert copies[target] == "requirements/runtime.txt"
    (wheel_install,) = (r for r in runs if "/wheels/" in r)
    assert "--no-deps" in wheel_install  # every dependency came from the lock
    assert runs.index(lock_install) < runs.index(wheel_install)


def test_the_stop_timeout_lets_a_paid_image_in_flight_finish() -> None:
    # SIGTERM waits for the rounds in flight; a kill before an image arrives loses it (paid).
    image_timeout = Settings.model_fields["image_timeout"].default
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    grace = compose["services"]["bot"]["stop_grace_period"]
    unit = read_unit(DEPLOY / "refinebot.service")["Service"]["TimeoutStopSec"]
    for value in (grace, unit[-1]):
        assert value.endswith("s") and float(value[:-1]) > image_timeout, value
