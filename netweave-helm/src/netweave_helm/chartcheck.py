"""The Helm SDK part of an upload, run in a short-lived child process.

``python -m netweave_helm.chartcheck <archive> ['<options JSON>']`` (without the argument the
options are read from stdin, after the SDK is loaded) runs ``helm dependency list``
(when ``{"dependencies": true}``) and ``helm lint`` (which loads the chart and checks its
defaults against ``values.schema.json``) on the archive and writes one JSON object to stdout::

    {"dependencies": {"result": [...]} | {"error": {...}} | null,
     "lint": {"result": {...}} | {"error": {"type": "HelmChartLoadError", "message": "..."}}}

``python -m netweave_helm.chartcheck <chart dir> '{"action": "vendor", "destination": DIR,
"plainHttp": false}'`` runs ``helm dependency update`` and ``helm package`` on an extracted
chart instead: ``{"update": {"result": null} | {"error": ...}, "package": {"result": PATH} |
{"error": ...}}``.

``python -m netweave_helm.chartcheck <archive> '{"action": "render", "release": NAME,
"namespace": NS, "values": {...}, "upgrade": false, "cluster": {...} | null,
"maxOutputBytes": N}'`` renders a dry-run preview (``helm install|upgrade --dry-run=client``):
``{"render": {"result": {"manifest": ..., "notes": ..., ...}} | {"error": ...} |
{"tooLarge": BYTES}}``.

Caps (``NETWEAVE_CHILD_LIMITS``, JSON ``{"dataBytes": N, "cpuSeconds": S}``) are set on this
process before the SDK loads: ``RLIMIT_DATA`` bounds what the Go heap can commit (Go reserves
~1.7 GB of address space up front, so ``RLIMIT_AS`` would not do), ``RLIMIT_CPU`` backs up the
parent's wall-clock limit. A template that needs more dies here, not in the gateway.

Why a child: the Go SDK reads the whole chart into memory (a 100 MB chart grows a process by
~350 MB, which Go does not hand back soon); in the gateway that growth would stay. The child
exits after one chart, so its memory goes with it. The parent (:mod:`netweave_helm.validation`)
interprets the raw results, so messages are the same as when the SDK ran in-process.

Imports are kept to the standard library and ``helm_python`` so that starting the child costs
little next to the lint itself.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "code": getattr(exc, "code", None),
    }


def check(archive: str, options: dict[str, Any]) -> dict[str, Any]:
    import helm_python as helm

    answer: dict[str, Any] = {"dependencies": None}
    if options.get("dependencies"):
        try:
            answer["dependencies"] = {"result": helm.dependency_list(archive)}
        except helm.HelmError as exc:
            answer["dependencies"] = {"error": _error(exc)}
    try:
        report = helm.lint(
            archive,
            strict=bool(options.get("strict")) or None,
            kube_version=options.get("kubeVersion") or None,
        )
        answer["lint"] = {"result": report}
    except helm.HelmError as exc:
        answer["lint"] = {"error": _error(exc)}
    return answer


def vendor(chart_dir: str, options: dict[str, Any]) -> dict[str, Any]:
    import helm_python as helm

    try:
        helm.dependency_update(chart_dir, plain_http=bool(options.get("plainHttp")))
    except helm.HelmError as exc:
        return {"update": {"error": _error(exc)}, "package": None}
    try:
        packaged = helm.package(chart_dir, destination=str(options["destination"]))
    except helm.HelmError as exc:
        return {"update": {"result": None}, "package": {"error": _error(exc)}}
    return {"update": {"result": None}, "package": {"result": packaged}}


#: Environment variable carrying the caps (see the module docstring).
LIMITS_ENV = "NETWEAVE_CHILD_LIMITS"


def apply_limits() -> None:
    raw = os.environ.get(LIMITS_ENV)
    if not raw:
        return
    import resource

    limits = json.loads(raw)
    data = limits.get("dataBytes")
    if data:
        resource.setrlimit(resource.RLIMIT_DATA, (int(data), int(data)))
    cpu = limits.get("cpuSeconds")
    if cpu:
        # The soft limit sends SIGXCPU, the hard one SIGKILL.
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))


def render(chart: str, options: dict[str, Any]) -> dict[str, Any]:
    """A client-side dry run, as the gateway's previews answered it in-process before."""
    import helm_python as helm

    namespace = str(options["namespace"])
    cluster = options.get("cluster")
    try:
        if cluster:
            config = helm.Config(
                kubeconfig_path=cluster.get("kubeconfig"),
                kubeconfig_content=cluster.get("kubeconfigContent"),
                kube_context=cluster.get("context"),
                namespace=namespace,
                storage_driver=cluster.get("storageDriver"),
                qps=cluster.get("qps"),
                burst_limit=cluster.get("burst"),
            )
        else:
            # Rendering needs no cluster: nothing listens at this address, nothing is stored.
            config = helm.Config(
                kube_apiserver="http://127.0.0.1:1", storage_driver="memory", namespace=namespace
            )
        values = options.get("values") or {}
        if options.get("upgrade"):
            release = config.upgrade(
                chart,
                str(options["release"]),
                values,
                namespace=namespace,
                dry_run="client",
                reset_values=True,
            )
        else:
            release = config.install(
                chart, str(options["release"]), values, namespace=namespace, dry_run="client"
            )
    except helm.HelmError as exc:
        return {"render": {"error": _error(exc)}}
    manifest = str(release.get("manifest") or "")
    notes = str(release.get("notes") or "")
    size = len(manifest.encode()) + len(notes.encode())
    cap = options.get("maxOutputBytes")
    if cap and size > int(cap):
        return {"render": {"tooLarge": size}}
    result = {key: release.get(key) for key in ("chart_name", "chart_version", "revision")}
    return {"render": {"result": {**result, "manifest": manifest, "notes": notes}}}


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        usage = "usage: python -m netweave_helm.chartcheck ARCHIVE|CHART_DIR [OPTIONS_JSON]"
        print(usage, file=sys.stderr)
        return 2
    # Only our JSON goes to the real stdout: anything else printing there (the Go runtime,
    # a library warning) is sent to stderr so it cannot corrupt the answer.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    apply_limits()
    # Load the SDK before waiting for the options on stdin: the gateway starts this process
    # early, so the load overlaps its own checks of the archive.
    import helm_python  # noqa: F401

    options = json.loads(argv[1] if len(argv) == 2 else sys.stdin.read())
    actions = {"vendor": vendor, "render": render}
    action = actions.get(str(options.get("action")), check)
    answer = action(argv[0], options)
    json.dump(answer, out, default=str)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
