"""k8s/ (kustomize base), checked offline: every manifest against the Kubernetes schema with
`kubernetes-validate --strict`, KEDA's ScaledObjects (a CRD the validator has no schema for) structurally, and
the commands, probes, grace periods and security settings the service relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings
from shared.taskq.queues import ALL_QUEUES
from tests.deploy.cli_paths import parse_cli

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}  # no offline schema: checked below instead
SECRET_TEMPLATE = "secret.template.yaml"
IMAGE_UID = int(re.search(r"ARG UID=(\d+)", (ROOT / "Dockerfile").read_text()).group(1))
ENV_REF = re.compile(r"\$\(([A-Z0-9_]+)\)")


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in load(path)]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(docs: list[dict[str, Any]], kinds: tuple[str, ...] = ("Deployment", "Job")):
    """(workload name, pod spec, container) for every workload of ``kinds`` (reelmill's own: Deployments, Jobs)."""
    found = []
    for doc in docs:
        if doc["kind"] in kinds:
            pod = doc["spec"]["template"]["spec"]
            found += [(doc["metadata"]["name"], pod, c) for c in pod["containers"]]
    return found


def kubernetes_validate(paths: list[Path]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("kubernetes-validate")
    cmd = str(exe) if exe.exists() else shutil.which("kubernetes-validate") or pytest.skip("no kubernetes-validate")
    return subprocess.run([cmd, "--strict", *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifest_files()} - {SECRET_TEMPLATE}
    assert kustomization["namespace"] == "reelmill"


def test_every_builtin_manifest_passes_strict_validation(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    paths = []
    for i, doc in enumerate(docs):
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue
        paths.append(tmp_path / f"{i:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml")
        paths[-1].write_text(yaml.safe_dump(doc))
    result = kubernetes_validate(paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") + result.stderr.count(" passed for resource ") == len(paths)
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    assert len(scaled) == 4 and len(paths) == len(docs) - len(scaled)  # ScaledObjects are the only kinds skipped


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    deployment = next(d for d in load(K8S / "api.yaml") if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    assert kubernetes_validate([bad]).returncode != 0


def test_container_commands_exist_in_the_cli(docs: list[dict[str, Any]]) -> None:
    roles = {}
    for name, _, container in containers(docs):
        path, params = parse_cli(container["args"])
        roles[name] = path
        if path in {"api", "flower"}:
            assert params["host"] == "0.0.0.0", name
    assert roles == {
        "reelmill-api": "api",
        "reelmill-worker-steps": "worker",
        "reelmill-worker-streams": "worker",
        "reelmill-worker-webhooks": "worker",
        "reelmill-worker-artifacts": "worker",
        "reelmill-beat": "beat",
        "reelmill-flower": "flower",
        "reelmill-migrate": "migrate",
    }


def queues_of(deployment: dict[str, Any]) -> set[str]:
    _, params = parse_cli(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
    return set(params["queues"].split(","))


def env_sources(docs: list[dict[str, Any]]) -> set[str]:
    config = by_kind(docs, "ConfigMap")["reelmill-config"]["data"]
    secret = by_kind(docs, "Secret")["reelmill-secrets"]["stringData"]
    return set(config) | set(secret)


def test_scaled_objects_watch_the_lists_their_workers_consume(docs: list[dict[str, Any]]) -> None:
    deployments, scaled = by_kind(docs, "Deployment"), by_kind(docs, "ScaledObject")
    assert set(scaled) == {
        "reelmill-worker-steps",
        "reelmill-worker-streams",
        "reelmill-worker-webhooks",
        "reelmill-worker-artifacts",
    }
    watched: set[str] = set()
    for name, obj in scaled.items():  # each worker serves one queue and scales on that queue alone
        spec = obj["spec"]
        target = deployments[spec["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "KEDA owns the replica count"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        lists = set()
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "redis"
            assert int(meta["listLength"]) > 0
            assert {meta["addressFromEnv"], meta["passwordFromEnv"]} <= env_sources(docs)
            redis_url = next(
                e["value"]
                for e in target["spec"]["template"]["spec"]["containers"][0]["env"]
                if e["name"] == "REELMILL_REDIS_URL"
            )
            assert redis_url.endswith(f"/{meta['databaseIndex']}"), "the scaler must watch the broker's db"
            lists.add(meta["listName"])
        assert lists == queues_of(target), name
        watched |= lists
    assert watched == set(ALL_QUEUES)


def test_env_references_resolve(docs: list[dict[str, Any]]) -> None:
    sources = env_sources(docs)
    for name, _, container in containers(docs):
        refs = {"configMapRef": "reelmill-config", "secretRef": "reelmill-secrets"}
        assert [next(iter(src.values()))["name"] for src in container["envFrom"]] == list(refs.values()), name
        for entry in container.get("env", []):
            assert set(ENV_REF.findall(entry.get("value", ""))) <= sources, (name, entry["name"])


def test_grace_periods_outlast_the_longest_step(docs: list[dict[str, Any]]) -> None:
    grace = {n: d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
             for n, d in by_kind(docs, "Deployment").items()}  # fmt: skip
    # open streams are handed back at once
    assert 30 <= grace["reelmill-worker-streams"] < Settings.model_fields["sse_max_s"].default
    assert grace["reelmill-worker-steps"] >= 60
    assert grace["reelmill-api"] > 30  # uvicorn's graceful timeout


def test_probes(docs: list[dict[str, Any]]) -> None:
    pods = {name: c for name, _, c in containers(docs)}
    api = pods["reelmill-api"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pods["reelmill-flower"]["livenessProbe"]["httpGet"]["path"] == "/healthcheck"
    workers = (("reelmill-worker-steps", "steps@"), ("reelmill-worker-streams", "streams@"))
    for name, node in (
        *workers,
        ("reelmill-worker-webhooks", "webhooks@"),
        ("reelmill-worker-artifacts", "artifacts@"),
    ):
        command = " ".join(pods[name]["livenessProbe"]["exec"]["command"])
        assert "inspect ping" in command and f'"{node}$HOSTNAME"' in command, name


def test_security_and_resources(docs: list[dict[str, Any]]) -> None:
    for name, pod, container in containers(docs, ("Deployment", "Job", "StatefulSet")):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        if name != "redis":
            assert pod["securityContext"]["runAsUser"] == IMAGE_UID, name
        assert pod["automountServiceAccountToken"] is False, name
        sec = container["securityContext"]
        assert sec["readOnlyRootFilesystem"] is True and sec["allowPrivilegeEscalation"] is False, name
        assert sec["capabilities"]["drop"] == ["ALL"], name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert "memory" in container["resources"]["limits"], name


def test_singletons_budgets_and_autoscaling(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    beat = deployments["reelmill-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["reelmill-api"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "reelmill-api" and "replicas" not in deployments["reelmill-api"]["spec"]
    assert hpa["minReplicas"] >= 2
    selected = set()
    for pdb in by_kind(docs, "PodDisruptionBudget").values():
        labels = pdb["spec"]["selector"]["matchLabels"]
        selected |= {n for n, d in deployments.items() if d["spec"]["selector"]["matchLabels"] == labels}
    assert selected == {
        "reelmill-api",
        "reelmill-worker-steps",
        "reelmill-worker-streams",
        "reelmill-worker-webhooks",
        "reelmill-worker-artifacts",
    }


def test_secret_template_holds_no_value(docs: list[dict[str, Any]]) -> None:
    """Nothing to forget to replace: every value is empty, and the pods refuse to run on empty secrets."""
    secret = by_kind(docs, "Secret")["reelmill-secrets"]
    assert "empty values" in secret["metadata"]["annotations"]["reelmill/template"]
    assert set(secret["stringData"]) >= {"REELMILL_REDIS_PASSWORD", "REELMILL_FLOWER_PASSWORD", "REELMILL_DATABASE_URL"}
    assert all(value == "" for value in secret["stringData"].values())
    for path in K8S.glob("*.yaml"):
        text = path.read_text()
        assert "CHANGE-ME" not in text and "demo" not in text.lower(), path.name


def test_kustomize_builds_the_base() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    built = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert all(d["metadata"].get("namespace") == "reelmill" for d in built if d["kind"] != "Namespace")
    images = {c["image"] for d in built if d["kind"] in {"Deployment", "Job"}
              for c in d["spec"]["template"]["spec"]["containers"]}  # fmt: skip
    assert len(images) == 1 and images != {"reelmill"}, "one image, renamed by kustomize"


# --- the broker and who may reach it -------------------------------------------------------------------------


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in {"Deployment", "Job"}}


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return doc["spec"]["template"]["metadata"]["labels"]


def admitted(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a pod with ``labels`` in the namespace matches one of the policy's ingress sources."""
    for rule in policy["spec"]["ingress"]:
        for source in rule["from"]:
            selector = source["podSelector"]
            exprs = selector.get("matchExpressions", [])
            if all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
                labels.get(e["key"]) in e["values"] for e in exprs if e["operator"] == "In"
            ):
                return True
    return False


def test_workers_serve_one_queue_each_and_webhooks_have_their_own(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    assert queues_of(deployments["reelmill-worker-steps"]) == {"steps"}
    assert queues_of(deployments["reelmill-worker-streams"]) == {"streams"}
    assert queues_of(deployments["reelmill-worker-webhooks"]) == {"webhooks"}


def test_redis_requires_the_secret_password_and_never_shows_it(docs: list[dict[str, Any]]) -> None:
    redis = by_kind(docs, "StatefulSet")["redis"]["spec"]["template"]["spec"]["containers"][0]
    script = " ".join(redis["command"] + redis["args"])
    assert "requirepass" in script and "$REELMILL_REDIS_PASSWORD" in script
    assert "--requirepass" not in script  # never on the command line
    assert 'test -n "$REELMILL_REDIS_PASSWORD"' in script  # an empty Secret value stops it
    for command in ("FLUSHALL", "FLUSHDB", "CONFIG", "DEBUG", "SHUTDOWN", "KEYS"):
        assert command in script, command
    source = next(e for e in redis["env"] if e["name"] == "REELMILL_REDIS_PASSWORD")["valueFrom"]["secretKeyRef"]
    assert source == {"name": "reelmill-secrets", "key": "REELMILL_REDIS_PASSWORD"}
    for name, _, container in containers(docs):
        for entry in container.get("env", []):
            if entry["name"] == "REELMILL_REDIS_URL":
                assert "PASSWORD" not in entry["value"] and "@" not in entry["value"], name


def test_network_policies_admit_only_reelmills_pods(docs: list[dict[str, Any]]) -> None:
    policies = by_kind(docs, "NetworkPolicy")
    redis_labels = pod_labels(by_kind(docs, "StatefulSet")["redis"])
    assert all(
        redis_labels.get(k) == v for k, v in policies["reelmill-redis"]["spec"]["podSelector"]["matchLabels"].items()
    )
    postgres = policies["reelmill-postgres"]["spec"]
    assert postgres["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "postgres"}
    for policy, port in ((policies["reelmill-redis"], 6379), (policies["reelmill-postgres"], 5432)):
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [port]
    labels = {name: pod_labels(d) for name, d in workloads(docs).items()}
    for name, pod in labels.items():
        assert admitted(policies["reelmill-redis"], pod) == (name != "reelmill-migrate"), name
        assert admitted(policies["reelmill-postgres"], pod) == (name != "reelmill-flower"), name
    strangers = [{"app.kubernetes.io/name": "other", "app.kubernetes.io/component": "api"}, {"app": "debug"}]
    assert not any(admitted(p, s) for p in policies.values() for s in strangers)
    assert not admitted(policies["reelmill-redis"], redis_labels)  # not even Redis itself
