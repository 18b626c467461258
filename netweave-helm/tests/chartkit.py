"""Builders for test charts and hostile archives (written with tarfile, no Helm involved)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
data:
  greeting: {{ .Values.greeting | quote }}
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-app
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
    spec:
      containers:
        - name: app
          image: "example/app:{{ .Values.tag }}"
"""


def chart_yaml(name: str, version: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiVersion": "v2",
        "name": name,
        "version": version,
        "description": f"test chart {name}",
        "type": "application",
        "appVersion": "1.0.0",
    }
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


def chart_files(
    name: str,
    version: str,
    *,
    values: dict[str, Any] | None = None,
    templates: dict[str, str] | None = None,
    schema: dict[str, Any] | None = None,
    **chart_extra: Any,
) -> dict[str, bytes]:
    files = {
        "Chart.yaml": yaml.safe_dump(chart_yaml(name, version, **chart_extra)).encode(),
        "values.yaml": yaml.safe_dump(
            values if values is not None else {"greeting": "hello", "replicaCount": 1, "tag": "1"}
        ).encode(),
    }
    for tname, body in (
        templates if templates is not None else {"configmap.yaml": CONFIGMAP}
    ).items():
        files[f"templates/{tname}"] = body.encode()
    if schema is not None:
        files["values.schema.json"] = json.dumps(schema).encode()
    return files


def write_tgz(
    path: Path,
    files: dict[str, bytes],
    *,
    top: str | None,
    extra: Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = (),
    fmt: int = tarfile.PAX_FORMAT,
) -> Path:
    """A gzip tar with ``files`` under ``top/`` plus raw ``extra`` members."""
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for item in extra:
            if isinstance(item, tuple):
                info, data = item
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(item)
    return path


def build_chart(directory: Path, name: str, version: str, **kwargs: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return write_tgz(
        directory / f"{name}-{version}.tgz", chart_files(name, version, **kwargs), top=name
    )


def subchart_files(prefix: str, name: str, version: str) -> dict[str, bytes]:
    """Files of a vendored subchart under ``charts/<name>/``."""
    return {f"{prefix}charts/{name}/{k}": v for k, v in chart_files(name, version).items()}
