"""Every deployment file parses, and the references between them hold: ports, probe paths,
commands, environment names (against the Settings model), routes of the gateway (against the
apps' OpenAPI paths), metric names (against what `/metrics` serves); `nginx -t` where nginx is
installed."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PORTS = {"filing": 8001, "confirmation": 8002, "payments": 8003, "notify": 8004}
SETTINGS = {name.upper() for name in Settings.model_fields}
# environment names that are not our settings: the postgres image's, the pod's own name
OTHER_ENV = {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "POD_NAME"}


def _k8s() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def _app_paths(service: str) -> set[str]:
    app = importlib.import_module(f"services.{service}.app").create_app()
    return set(app.openapi()["paths"])


def _served_paths(service: str) -> set[str]:
    app = importlib.import_module(f"services.{service}.app").create_app()
    return {getattr(r, "path", "") for r in app.routes}


def _module_exists(target: str) -> bool:
    module, _, attr = target.partition(":")
    return hasattr(importlib.import_module(module), attr) if attr else True


def _check_command(command: list[str]) -> None:
    """`uvicorn x.y:z`, `celery -A x.y:z`, `-m module`: the targets exist."""
    for i, arg in enumerate(command):
        if arg == "-m":
            importlib.import_module(command[i + 1])
        if re.fullmatch(r"[a-z_.]+:[a-z_]+", arg):
            assert _module_exists(arg), arg


def test_every_manifest_parses_and_has_a_kind() -> None:
    docs = _k8s()
    assert docs
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
    assert _compose()["services"]
    yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    json.loads((DEPLOY / "grafana" / "reserved-share.json").read_text(encoding="utf-8"))


def test_kubernetes_references() -> None:
    docs = _k8s()
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind["Deployment"]
    config = by_kind["ConfigMap"]["reserved-share-config"]["data"]
    secret = by_kind["Secret"]["reserved-share-secrets"]["stringData"]
    assert set(config) | set(secret) <= SETTINGS, (set(config) | set(secret)) - SETTINGS
    assert not set(config) & set(secret)
    for name, port in PORTS.items():
        dep = deployments[name]
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= (
            dep["spec"]["template"]["metadata"]["labels"].items()
        )
        assert container["command"][container["command"].index("--port") + 1] == str(port)
        assert f"services.{name}.app:create_app" in container["command"]
        assert container["ports"][0]["containerPort"] == port
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        served = _served_paths(name)
        assert {"/readyz", "/healthz", "/metrics"} <= served
        service = by_kind["Service"][name]
        assert service["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["targetPort"] == port
    for dep in deployments.values():
        for container in dep["spec"]["template"]["spec"]["containers"]:
            if container["image"].startswith("reserved-share"):
                _check_command(container["command"])
                refs = container["envFrom"]
                assert {"configMapRef": {"name": "reserved-share-config"}} in refs
                assert {"secretRef": {"name": "reserved-share-secrets"}} in refs
            for env in container.get("env", []):
                assert env["name"] in SETTINGS | OTHER_ENV, env["name"]
    for job in by_kind["Job"].values():
        for container in job["spec"]["template"]["spec"]["containers"]:
            _check_command(container["command"])
    assert deployments["beat"]["spec"]["replicas"] == 1
    assert deployments["beat"]["spec"]["strategy"]["type"] == "Recreate"
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in by_kind["HorizontalPodAutoscaler"].values()
    }
    assert hpa_targets == {"worker-matching", "worker-notify"}
    assert hpa_targets <= set(deployments)
    for name in ("worker-matching", "worker-notify"):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        queue = container["command"][container["command"].index("-Q") + 1]
        assert name == f"worker-{queue}"


def test_compose_references() -> None:
    compose = _compose()
    services = compose["services"]
    for name, port in PORTS.items():
        svc = services[name]
        assert svc["command"][svc["command"].index("--port") + 1] == str(port)
        assert "/readyz" in " ".join(svc["healthcheck"]["test"]) and str(port) in " ".join(
            svc["healthcheck"]["test"]
        )
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        env = svc.get("environment", {})
        assert set(env) <= SETTINGS | OTHER_ENV, (name, set(env) - SETTINGS - OTHER_ENV)
        if svc.get("image", "").startswith("reserved-share"):
            _check_command(svc["command"])
    assert services["migrate"]["restart"] == "no"
    for name in ("postgres", "redis", "nginx"):
        assert "healthcheck" in services[name]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    queues = {
        svc["command"][svc["command"].index("-Q") + 1]
        for svc in services.values()
        if "-Q" in svc.get("command", [])
    }
    from shared.celery_app import QUEUES

    assert queues == set(QUEUES)
    assert sum(1 for s in services.values() if "beat" in s.get("command", [])) == 1


def _nginx_routes() -> list[tuple[re.Pattern[str], str]]:
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    routes = []
    for pattern, body in re.findall(r"location ~ (\S+) \{(.*?)\}", conf, flags=re.S):
        upstream = re.search(r"proxy_pass http://(\w+);", body)
        if upstream:
            routes.append((re.compile(pattern), upstream.group(1)))
    return routes


def test_gateway_routes_every_api_path_to_its_service() -> None:
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    upstreams = dict(re.findall(r"upstream (\w+)\s*\{\s*server \w+:(\d+);", conf))
    assert {k: int(v) for k, v in upstreams.items()} == PORTS
    compose = _compose()["services"]
    assert set(upstreams) <= set(compose)
    routes = _nginx_routes()
    for service in PORTS:
        for path in _app_paths(service):
            if not path.startswith("/api/"):
                continue
            sample = re.sub(r"\{[^}]+\}", "1", path)
            matched = [up for rx, up in routes if rx.search(sample)]
            assert matched[:1] == [service], (path, matched)
    assert "X-Request-ID" in conf
    sizes = re.findall(r"client_max_body_size (\d+)m", conf)
    assert max(int(s) for s in sizes) >= 150 * 5  # 150 receipts of 5 MB


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed here")
def test_nginx_accepts_the_gateway_config(tmp_path: Path) -> None:
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    # the compose host names do not resolve here: same file with local upstreams
    conf = re.sub(r"server (\w+):(\d+);", r"server 127.0.0.1:\2;", conf)
    conf = conf.replace("pid /tmp/nginx-reserved-share.pid;", f"pid {tmp_path}/nginx.pid;")
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    result = subprocess.run(
        [
            "nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            str(tmp_path / "error.log"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_alerts_and_dashboard_use_metrics_that_exist() -> None:
    source = (REPO / "shared" / "metrics.py").read_text(encoding="utf-8")
    known = set(re.findall(r'"(reserved_share_[a-z_]+)"', source))
    known |= {"http_requests_total", "http_request_duration_seconds_bucket", "up"}
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    names = {r["alert"] for g in alerts["groups"] for r in g["rules"]}
    assert {"ReviewQueueStale", "SmsOutboxNotDraining", "MatchingLagging"} <= names
    dashboard = json.loads((DEPLOY / "grafana" / "reserved-share.json").read_text(encoding="utf-8"))
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for expr in exprs:
        metrics = re.findall(r"\b(?:reserved_share|http)_[a-z_]+\b", expr) or ["up"] * (
            "up{" in expr
        )
        assert metrics, expr
        for metric in metrics:
            assert metric in known, (metric, expr)


def test_procfile_commands_exist() -> None:
    """`make run`'s processes: the modules and app factories they name exist; Flower runs with
    basic auth (`shared.flower`)."""
    lines = [
        ln
        for ln in (DEPLOY / "Procfile").read_text(encoding="utf-8").splitlines()
        if ln and not ln.startswith("#")
    ]
    names = set()
    for line in lines:
        name, _, command = line.partition(":")
        names.add(name)
        _check_command(command.replace("${PYTHON:-.venv/bin/python}", "python").split())
    assert {"filing", "confirmation", "payments", "notify", "worker", "beat", "flower"} <= names
    assert any("shared.flower" in ln for ln in lines if ln.startswith("flower:"))
