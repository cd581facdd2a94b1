"""The on-demand Job that drains an orphaned spool (k8s/jobs): it renders and validates
offline, stays out of the overlays, runs a command the CLI accepts on the directory the
ingest keeps its spool in, from the volume the StatefulSet retains, as the ingest's user."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml
from click.testing import CliRunner

from hookstream.cli import main
from tests.deploy._manifests import K8S, Doc, Rendered, main_container, pod_spec, run, tool
from tests.deploy.test_k8s_render import _kubernetes_validate


def _job() -> Doc:
    result = run(tool("kustomize"), "build", K8S / "jobs")
    assert result.returncode == 0, result.stderr
    (job,) = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert job["kind"] == "Job"
    return dict(job)


def test_the_job_passes_strict_schema_validation(tmp_path: Path) -> None:
    returncode, output = _kubernetes_validate([_job()], tmp_path / "job.yaml")
    assert returncode == 0, output


def test_no_overlay_runs_the_job(renders: dict[str, Rendered]) -> None:
    assert not [doc for r in renders.values() for doc in r.docs if doc["kind"] == "Job"]


def test_the_job_drains_the_ingests_spool_directory_from_its_retained_volume(
    prod: Rendered,
) -> None:
    job, ingest = _job(), prod.one("StatefulSet", "hookstream-ingest")
    container = main_container(job)
    args = container["args"]
    assert args[:2] == ["spool", "drain"]
    accepted = CliRunner().invoke(main, [*args, "--help"])
    assert accepted.exit_code == 0, accepted.output
    spool_dir = PurePosixPath(prod.hookstream_config()["HOOKSTREAM_SPOOL_PATH"]).parent
    assert args[2] == str(spool_dir)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["spool"] == str(spool_dir)
    (template,) = ingest["spec"]["volumeClaimTemplates"]
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == "spool"]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert claim == f"{template['metadata']['name']}-{ingest['metadata']['name']}-0"
    assert ingest["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    assert pod_spec(job)["securityContext"] == pod_spec(ingest)["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod_spec(job)["restartPolicy"] == "Never"
