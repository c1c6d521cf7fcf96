"""The Kubernetes manifests and compose file are valid: kubernetes-validate (strict, offline schemas) for every
manifest, and the shape each service needs (probes, migration Job, one scheduler)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_every_manifest_validates_against_the_kubernetes_schema() -> None:
    docs = documents()
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31", strict=True)


def test_services_have_probes_and_the_scheduler_is_single() -> None:
    deployments = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Deployment"}
    for name in ("loyalty-points", "loyalty-members"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    scheduler = next(d for n, d in deployments.items() if "scheduler" in n)
    assert scheduler["spec"]["replicas"] == 1
    assert any(d["kind"] == "Job" for d in documents()), "a migration Job"
    assert any(d["kind"] == "Secret" for d in documents())


def test_compose_runs_postgres_both_services_and_the_scheduler() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert {"postgres", "points", "members", "scheduler"} <= set(compose["services"])
