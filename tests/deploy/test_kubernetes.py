"""deploy/kubernetes: every overlay renders (``kubectl kustomize``, offline) and validates against
the Kubernetes schemas (kubernetes-validate) and KEDA's CRDs (vendored in schemas/); KEDA's
triggers cover every Redis list kombu really fills; and the commands, env names, ports and
paths in the manifests are the ones speechfleet reads, so renaming a setting, an option or a
queue in the code without the manifests fails here."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from api.routes.health import router as health
from jobcontract.priorities import PRIORITIES, queue_keys
from jobcontract.settings import APISettings, FleetSettings, WorkerSettings
from speechfleet.cli import main as cli
from speechfleet.redis_server import EmbeddedRedis
from speechmodels import load_model_configs
from speechmodels.config import queue_for
from speechmodels.weights import CACHE_ENV
from tests.fleet import ROOT
from workers.celery_app import WEBHOOK_QUEUE

KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu", "gpu", "external-redis")
SCHEMAS = Path(__file__).resolve().parent / "schemas"
#: the oldest Kubernetes the manifests claim (HPA autoscaling/v2 and PDB policy/v1 are GA from
#: 1.23 and 1.21) and the newest kubernetes-validate ships
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (for kubectl kustomize) is not installed")


@cache
def render(overlay: str) -> tuple[dict, ...]:
    done = subprocess.run([KUBECTL, "kustomize", str(KUBERNETES / "overlays" / overlay)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return tuple(yaml.safe_load_all(done.stdout))


def of_kind(docs, kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def containers(docs):
    """(workload, container) for every container of every Deployment and StatefulSet."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                yield doc, container


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def served_queues(deployment: dict) -> dict[str, list[str]]:
    """What a worker Deployment consumes, by the model (or 'webhooks') it serves."""
    (command,) = [c["command"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    if "--webhooks" in command:
        return {WEBHOOK_QUEUE: [WEBHOOK_QUEUE]}
    return {model: [queue_for(model)] for model in option(command, "--models").split(",")}


def model_configs(docs, tmp_path: Path):
    (configmap,) = [doc for name, doc in of_kind(docs, "ConfigMap").items() if name.startswith("speechfleet-config")]
    path = tmp_path / "config.yml"
    path.write_text(configmap["data"]["config.yml"])
    return {config.name: config for config in load_model_configs(path)}


def strict(schema: dict) -> dict:
    """A CRD's schema as the API server applies it with strict field validation: unknown fields
    are errors (a misspelt pollingInterval would otherwise be pruned without a word)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    elif isinstance(schema, list):
        schema = [strict(value) for value in schema]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the vendored KEDA CRD's schema."""
    schemas = {}
    for path in SCHEMAS.glob("keda.sh_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schemas[api_version, crd["spec"]["names"]["kind"]] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def env_names(settings: type[FleetSettings]) -> set[str]:
    """The environment variables a settings class reads."""
    names = set()
    for field, info in settings.model_fields.items():
        alias = info.validation_alias
        names |= set(alias.choices) if alias is not None else {settings.model_config["env_prefix"] + field}
    return {name.upper() for name in names}


#: what each `speechfleet <role>` container may be given: its settings, and the weights cache
ROLE_ENV = {"api": env_names(APISettings), "worker": env_names(WorkerSettings) | {CACHE_ENV}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_and_keda_schemas(overlay):
    docs = render(overlay)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ScaledObject",
            "TriggerAuthentication", "Secret", "ConfigMap"} <= kinds
    assert ("StatefulSet" in kinds) == (overlay != "external-redis")
    for doc in docs:
        crd = crd_schemas().get((doc["apiVersion"], doc["kind"]))
        if doc["apiVersion"].startswith("keda.sh/"):
            assert crd is not None, f"no vendored schema for {doc['apiVersion']} {doc['kind']}"
            jsonschema.validate(doc, crd)
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    assert of_kind(docs, "HorizontalPodAutoscaler")["api"]["apiVersion"] == "autoscaling/v2"
    assert of_kind(docs, "PodDisruptionBudget")["api"]["apiVersion"] == "policy/v1"


def test_the_schemas_catch_mistakes():
    """The checks above can fail: a misspelt field and a wrong type are refused."""
    (scaled,) = [doc for doc in render("cpu") if doc["kind"] == "ScaledObject"][:1]
    schema = crd_schemas()["keda.sh/v1alpha1", "ScaledObject"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**scaled, "spec": {**scaled["spec"], "pollingInteval": 5}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**scaled, "spec": {**scaled["spec"], "minReplicaCount": "zero"}}, schema)
    hpa = of_kind(render("cpu"), "HorizontalPodAutoscaler")["api"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**hpa, "spec": {**hpa["spec"], "minReplica": 2}}, K8S_VERSIONS[0], strict=True)


SEND_AT_EVERY_PRIORITY = """
import json, sys, redis
from jobcontract.plan import JobPlan
from jobcontract.priorities import PRIORITIES
from workers.canvas import enqueue_delivery, send_job
from workers.celery_app import app
for model in json.loads(sys.argv[1]):
    for priority in PRIORITIES:
        send_job(app, f"{model}-{priority}", JobPlan.build(model, "vad", [(model, "vad")]), priority)
enqueue_delivery("job-with-a-webhook")
client = redis.Redis.from_url(sys.argv[2])
print(json.dumps({key.decode(): client.llen(key) for key in client.keys("*") if client.type(key) == b"list"}))
"""


@cache
def queued_by_the_code(models: tuple[str, ...]) -> dict[str, int]:
    """Redis list -> messages in it, once the code has sent one job per request priority to
    every model, and one webhook delivery, on a real Redis."""
    with EmbeddedRedis() as server:
        done = subprocess.run([sys.executable, "-c", SEND_AT_EVERY_PRIORITY, json.dumps(models), server.url],
                              cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "REDIS_URL": server.url})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_worker_group_scales_on_all_its_priority_lists(overlay, tmp_path):
    docs = render(overlay)
    deployments, scaled = of_kind(docs, "Deployment"), of_kind(docs, "ScaledObject")
    workers = {name for name, d in deployments.items() if "worker" in d["spec"]["template"]["spec"]["containers"][0]
               ["command"]}
    assert set(scaled) == workers, "every worker Deployment has its ScaledObject, and only those"
    depths = queued_by_the_code(tuple(model_configs(docs, tmp_path)))
    authentications = of_kind(docs, "TriggerAuthentication")
    watched = set()
    for name, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        triggers = spec["triggers"]
        served = served_queues(deployments[name])
        # a trigger per list kombu may keep for the group's queues (every priority step)...
        expected = [key for queues in served.values() for queue in queues for key in queue_keys(queue)]
        assert sorted(t["metadata"]["listName"] for t in triggers) == sorted(expected), name
        # ...so the triggers together count every message the code sent to the group, once
        sent = 1 if WEBHOOK_QUEUE in served else len(PRIORITIES) * len(served)
        assert sum(depths.get(t["metadata"]["listName"], 0) for t in triggers) == sent, name
        watched |= {t["metadata"]["listName"] for t in triggers}
        assert all(t["type"] == "redis" and t["authenticationRef"]["name"] in authentications for t in triggers)
        # one metric, the sum of every list (the HPA alone would take the largest list); the
        # formula names each trigger once, as an expression variable
        names = [t["name"] for t in triggers]
        assert len(set(names)) == len(names) and all(re.fullmatch(r"[A-Za-z_]\w*", name) for name in names)
        modifiers = spec["advanced"]["scalingModifiers"]
        assert sorted(modifiers["formula"].split(" + ")) == sorted(names)
        assert float(modifiers["target"]) >= 1
    assert set(depths) <= watched, "a list the code fills that no group scales on"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_connection_agrees_everywhere(overlay):
    docs = render(overlay)
    secret = of_kind(docs, "Secret")["speechfleet-redis"]
    values = secret.get("stringData") or {key: base64.b64decode(value).decode()
                                          for key, value in secret["data"].items()}
    url = urlsplit(values["REDIS_URL"])
    assert values["REDIS_ADDRESS"] == f"{url.hostname}:{url.port or 6379}"
    assert values["REDIS_PASSWORD"] == (url.password or "")
    database = url.path.strip("/") or "0"
    for scaled in of_kind(docs, "ScaledObject").values():
        assert {t["metadata"]["databaseIndex"] for t in scaled["spec"]["triggers"]} == {database}
    (authentication,) = of_kind(docs, "TriggerAuthentication").values()
    assert {(ref["parameter"], ref["name"], ref["key"]) for ref in authentication["spec"]["secretTargetRef"]} == {
        ("address", "speechfleet-redis", "REDIS_ADDRESS"), ("password", "speechfleet-redis", "REDIS_PASSWORD")}
    services = of_kind(docs, "Service")
    if "redis" in of_kind(docs, "StatefulSet"):  # in the cluster: the URL names its Service and port
        assert url.hostname == "redis" and url.port in [p["port"] for p in services["redis"]["spec"]["ports"]]
        (redis_container,) = of_kind(docs, "StatefulSet")["redis"]["spec"]["template"]["spec"]["containers"]
        command = redis_container["command"]
        assert option(command, "--appendonly") == "yes" and option(command, "--maxmemory-policy") == "noeviction"
        # the policy that keeps other namespaces out lets in what it names: Redis's port, and KEDA
        (rule,) = of_kind(docs, "NetworkPolicy")["redis"]["spec"]["ingress"]
        assert {p["port"] for p in rule["ports"]} == {p["name"] for p in redis_container["ports"]}
        assert {"kubernetes.io/metadata.name": "keda"} in [peer.get("namespaceSelector", {}).get("matchLabels")
                                                           for peer in rule["from"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_commands_env_and_ports_are_what_speechfleet_reads(overlay):
    docs = render(overlay)
    configmaps, secrets = of_kind(docs, "ConfigMap"), of_kind(docs, "Secret")
    routes = {route.path for route in health.routes}  # where the probes may point
    for workload, container in containers(docs):
        command = container["command"]
        # every env name reaching the container, and every key it refers to, exists
        names = {item["name"] for item in container.get("env", [])}
        for item in container.get("env", []):
            ref = item.get("valueFrom", {})
            for kind, source in (("configMapKeyRef", configmaps), ("secretKeyRef", secrets)):
                if kind in ref:
                    target = source[ref[kind]["name"]]
                    assert ref[kind]["key"] in {**target.get("data", {}), **target.get("stringData", {})}
        for source in container.get("envFrom", []):
            kind, pool = ("configMapRef", configmaps) if "configMapRef" in source else ("secretRef", secrets)
            names |= set(pool[source[kind]["name"]].get("data", {}))
        if command[0] != "speechfleet":
            continue
        role = command[1]
        # the command parses as the CLI defines it (a renamed or removed option fails here)
        cli.commands[role].make_context(role, list(command[2:]))
        # (OTEL_* would be the OpenTelemetry SDK's own, read by jobcontract.tracing's exporter)
        unread = {name for name in names - ROLE_ENV[role] if not name.startswith("OTEL_")}
        assert not unread, f"{workload['metadata']['name']}: {sorted(unread)} not read by speechfleet {role}"
        env = {**{k: v for c in container.get("envFrom", []) if "configMapRef" in c
                  for k, v in configmaps[c["configMapRef"]["name"]]["data"].items()},
               **{item["name"]: item.get("value") for item in container.get("env", [])}}
        # SPEECHFLEET_CONFIG is a file of the mounted ConfigMap
        config_path = Path(env["SPEECHFLEET_CONFIG"])
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
        (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent]
        assert config_path.name in configmaps[volumes[mount["name"]]["configMap"]["name"]]["data"]
        if role == "api":
            port = int(option(command, "--port"))
            assert [p["containerPort"] for p in container["ports"]] == [port]
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["path"] in routes
    # every Service's target port is a named port of the pods it selects
    for service in of_kind(docs, "Service").values():
        selected = [c for w, c in containers(docs)
                    if service["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert selected, service["metadata"]["name"]
        named = {p["name"] for c in selected for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= named


def test_secrets_fail_closed_as_shipped():
    """The committed Secret has no API keys: the production API refuses to start without them
    (as compose refuses to render), and Flower refuses to start without basic auth."""
    docs = render("cpu")
    (secret,) = [doc for name, doc in of_kind(docs, "Secret").items() if name.startswith("speechfleet-secrets")]
    assert set(secret["data"]) == {"SPEECHFLEET_API_KEYS", "SPEECHFLEET_WEBHOOK_SECRET", "FLOWER_BASIC_AUTH"}
    assert all(value == "" for value in secret["data"].values())
    (api,) = [c for w, c in containers(docs) if w["metadata"]["name"] == "api"]
    environment = {item["name"]: item.get("value") for item in api["env"]}["SPEECHFLEET_ENVIRONMENT"]
    with pytest.raises(ValueError, match="SPEECHFLEET_API_KEYS"):
        APISettings(environment=environment, api_keys="")
    (flower,) = [c for w, c in containers(docs) if w["metadata"]["name"] == "flower"]
    assert 'test -n "$FLOWER_BASIC_AUTH"' in flower["command"][-1]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_models_groups_and_scale_from_zero(overlay, tmp_path):
    docs = render(overlay)
    configs = model_configs(docs, tmp_path)
    deployments, scaled = of_kind(docs, "Deployment"), of_kind(docs, "ScaledObject")
    groups = {name: served_queues(deployments[name]) for name in scaled if name != "webhooks"}
    served = [model for group in groups.values() for model in group]
    assert sorted(served) == sorted(configs), "every configured model is served by exactly one group"
    for name, models in groups.items():
        spec = scaled[name]["spec"]
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
        grace = WorkerSettings(**{"shutdown_grace_s": env[k] for k in env if k == "SPEECHFLEET_SHUTDOWN_GRACE_S"})
        grace = grace.shutdown_grace_s
        # KEDA may take a group to zero only if the API queues its models' jobs meanwhile
        assert (spec["minReplicaCount"] == 0) == all(configs[m].scale_from_zero for m in models), name
        assert spec["cooldownPeriod"] > grace and spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert pod["terminationGracePeriodSeconds"] > grace, "SIGKILL must not come before the grace ends"
        assert "replicas" not in deployments[name]["spec"], "KEDA owns the replica count"
        assert of_kind(docs, "PodDisruptionBudget")[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]
        # one GPU per pod exactly where the models run on CUDA, and only on GPU nodes
        on_gpu = {configs[m].device_config.device.startswith("cuda") for m in models}
        assert len(on_gpu) == 1, f"{name} mixes CPU and GPU models in one process"
        gpus = container["resources"].get("limits", {}).get("nvidia.com/gpu")
        assert (gpus == 1) == on_gpu.pop(), name
        assert container["resources"].get("requests", {}).get("nvidia.com/gpu") == gpus
        if gpus:
            assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert any(spec["spec"]["minReplicaCount"] == 0 for spec in scaled.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_config_is_the_repositorys(overlay, tmp_path):
    """The ConfigMap'd config.yml is config.yml, but for scale_from_zero and (GPU) the device."""
    rendered = model_configs(render(overlay), tmp_path)
    repository = {config.name: config for config in load_model_configs(ROOT / "config.yml")}
    assert list(rendered) == list(repository)
    for name, config in rendered.items():
        ignore = {"scale_from_zero", "device_config"}
        assert config.model_dump(exclude=ignore) == repository[name].model_dump(exclude=ignore), name
        assert config.device_config.device in ("cpu", "cuda")
    assert any(config.device_config.device == "cuda" for config in rendered.values()) == (overlay == "gpu")


def test_list_names_keep_their_control_characters():
    """kombu's priority separator (\\x06\\x16) survives YAML escaping and kustomize exactly."""
    names = {t["metadata"]["listName"] for doc in render("cpu") if doc["kind"] == "ScaledObject"
             for t in doc["spec"]["triggers"]}
    assert "model.silero-vad\x06\x163" in names and "webhooks\x06\x169" in names
