"""Deployment files parse, and every command, flag, port and variable they name exists in the code.

No container engine runs here, so this is how the files are kept honest.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mmer_cli import dispatch as cli

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
YAML_FILES = sorted(p for p in DEPLOY.rglob("*.y*ml"))


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    raise KeyError(name)


def _resolve(argv: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """Walk `mmer SUB [SUBSUB]` down to the parser that takes the remaining flags."""
    parser = cli.build_parser(argv)
    rest = list(argv)
    while rest and not rest[0].startswith("-"):
        try:
            parser = _subparser(parser, rest[0])
        except KeyError:
            break
        rest.pop(0)
    return parser, rest


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def _mmer_invocations() -> Iterator[tuple[str, list[str]]]:
    """Every `mmer ...` command line in the deployment files, as argv after `mmer`."""
    for path in YAML_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            yield from _from_yaml(path.name, doc)
    unit = (DEPLOY / "systemd" / "mmer-node.service").read_text().replace("\\\n", " ")
    for line in unit.splitlines():
        if line.startswith("ExecStart="):
            argv = shlex.split(line.split("=", 1)[1])
            yield "mmer-node.service", argv[1:]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)[-1]
    yield "Dockerfile", yaml.safe_load(cmd)


def _from_yaml(name: str, node: object) -> Iterator[tuple[str, list[str]]]:
    if isinstance(node, dict):
        image = str(node.get("image", ""))
        build = node.get("build")
        argv = node.get("command") or node.get("args")
        is_mmer = image.startswith("mmer") or (
            isinstance(build, dict) and "Dockerfile" in str(build.get("dockerfile"))
        )
        if is_mmer and isinstance(argv, list):
            yield name, [str(a) for a in argv]
        for value in node.values():
            yield from _from_yaml(name, value)
    elif isinstance(node, list):
        for value in node:
            yield from _from_yaml(name, value)


INVOCATIONS = list(_mmer_invocations())


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"


def test_every_service_command_is_found() -> None:
    names = {name for name, _ in INVOCATIONS}
    assert {"compose.yaml", "coordinator.yaml", "trainer.yaml", "mmer-node.service", "Dockerfile"} <= names


@pytest.mark.parametrize(
    ("source", "argv"), INVOCATIONS, ids=[f"{n}:{' '.join(a[:2])}" for n, a in INVOCATIONS]
)
def test_commands_and_flags_exist(source: str, argv: list[str]) -> None:
    parser, rest = _resolve(argv)
    known = _flags(parser)
    for arg in rest:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            assert flag in known, f"{source}: `mmer {' '.join(argv[:2])}` has no flag {flag}"


def test_ports_match_code_defaults() -> None:
    code = (ROOT / "mmer_core" / "config.py").read_text()
    for port in ("50051", "8080"):
        assert f"127.0.0.1:{port}" in code, (
            f"port {port} named in deploy/ but not a default in mmer_core/config.py"
        )


def test_environment_variables_are_read_by_the_code() -> None:
    text = "\n".join(p.read_text() for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".json")
    names = set(re.findall(r"\b((?:MMER|OTEL)_[A-Z_]+)\b", text))
    assert names, "no environment variables found in deploy/"
    code = "\n".join(
        p.read_text()
        for d in ("mmer_core", "edge_node", "coordinator", "trainer")
        for p in (ROOT / d).rglob("*.py")
    )
    from opentelemetry.sdk import environment_variables as otel_env

    otel_known = {v for k, v in vars(otel_env).items() if k.startswith("OTEL_")}
    otel_known |= {"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"}
    for name in sorted(names):
        if name.startswith("OTEL_"):
            assert name in otel_known, f"{name} is not an OpenTelemetry SDK variable"
        else:
            assert name in code, f"{name} is named in deploy/ but never read by the code"


def test_certificate_script_makes_a_verifiable_chain(tmp_path: Path) -> None:
    script = DEPLOY / "certs" / "make-certs.sh"
    subprocess.run(
        ["bash", str(script), str(tmp_path), "127.0.0.1", "dev-1"], check=True, capture_output=True
    )
    for name in ("ca.crt", "server.crt", "server.key", "dev-1.crt", "dev-1.key"):
        assert (tmp_path / name).is_file()
    out = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            tmp_path / "ca.crt",
            tmp_path / "server.crt",
            tmp_path / "dev-1.crt",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.count(": OK") == 2


def test_grafana_dashboard_queries_metrics_the_code_exports() -> None:
    import json

    dashboards = list((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    assert dashboards, "no provisioned Grafana dashboard"
    code = "\n".join(
        p.read_text() for d in ("coordinator", "edge_node", "mmer_core") for p in (ROOT / d).rglob("*.py")
    )
    # OpenTelemetry instrument names ("mmer.coordinator.frames") as Prometheus spells them.
    exported = {name.replace(".", "_") for name in re.findall(r'"(mmer\.[a-z_.]+)"', code)}
    for path in dashboards:
        board = json.loads(path.read_text())
        exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
        assert exprs, f"{path.name} has no queries"
        for expr in exprs:
            for metric in re.findall(
                r"\b(mmer_[a-z_]+?)(?:_milliseconds)?(?:_bucket|_count|_sum|_total)?\b", expr
            ):
                assert metric in exported, f"{path.name}: {metric} is not exported by the code"


COORDINATORS = [(source, argv) for source, argv in INVOCATIONS if argv[:1] == ["coordinator"]]


def _options(argv: list[str]) -> dict[str, str]:
    """--flag=value and --flag value pairs of a command line."""
    out, rest = {}, list(argv)
    while rest:
        arg = rest.pop(0)
        if arg.startswith("--"):
            flag, eq, value = arg.partition("=")
            out[flag] = value if eq else (rest.pop(0) if rest and not rest[0].startswith("--") else "")
    return out


@pytest.mark.parametrize(("source", "argv"), COORDINATORS, ids=[s for s, _ in COORDINATORS])
def test_deployed_coordinators_need_tokens_and_speak_only_tls(source: str, argv: list[str]) -> None:
    options = _options(argv)
    assert {"--auth", "--tls-cert", "--tls-key"} <= set(options), f"{source}: {argv}"
    assert not options["--http"].startswith("127.0.0.1"), f"{source}: the dashboard must be reachable"


def test_every_deployment_file_runs_its_coordinators() -> None:
    assert {source for source, _ in COORDINATORS} >= {"compose.yaml", "coordinator.yaml", "Dockerfile"}


def test_k8s_tokens_and_certificates_come_from_secrets() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "coordinator.yaml").read_text()))
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    options = _options(container["args"])
    for flag in ("--auth", "--tls-cert", "--tls-key"):
        path = options[flag]
        volume = next(v for mount, v in mounts.items() if path.startswith(mount + "/"))
        assert "secret" in volume, f"{flag} {path} is not read from a Secret"
    assert "env" not in container or not any("TOKEN" in e["name"] for e in container["env"])
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["scheme"] == "HTTPS" and check["path"] == "/healthz"
    from coordinator.http import is_public

    assert is_public("/healthz"), "the probes' route must need no token"


def test_prometheus_scrapes_the_coordinators_with_a_metrics_token_over_tls() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mmer-coordinator")
    assert job["scheme"] == "https"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounted = {v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"]}
    assert {job["tls_config"]["ca_file"], job["authorization"]["credentials_file"]} <= mounted


def test_server_certificate_names_every_address_given(tmp_path: Path) -> None:
    script = DEPLOY / "certs" / "make-certs.sh"
    subprocess.run(
        ["bash", str(script), str(tmp_path), "coordinator-1,coordinator-2,10.1.2.3"],
        check=True,
        capture_output=True,
    )
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert dns == {"coordinator-1", "coordinator-2", "localhost"} and ips == {"10.1.2.3", "127.0.0.1"}


def test_deployed_trainers_verify_the_coordinator_and_read_their_token_from_a_secret() -> None:
    trainers = [(s, _options(argv)) for s, argv in INVOCATIONS if argv[:2] == ["trainer", "serve"]]
    assert {s for s, _ in trainers} == {"compose.yaml", "trainer.yaml"}
    for source, options in trainers:
        assert options["--tls-ca"].startswith("/etc/mmer/"), (
            f"{source}: the trainer must verify the coordinator"
        )
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["trainer"]
    assert compose["env_file"] == ["./secrets/trainer.env"]
    pod = next(
        d
        for d in yaml.safe_load_all((DEPLOY / "k8s" / "trainer.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    container = pod["spec"]["template"]["spec"]["containers"][0]
    token = next(e for e in container["env"] if e["name"] == "MMER_TOKEN")
    assert "secretKeyRef" in token["valueFrom"]
