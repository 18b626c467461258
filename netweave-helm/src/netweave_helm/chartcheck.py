"""The Helm SDK part of an upload, run in a short-lived child process.

``python -m netweave_helm.chartcheck <archive> ['<options JSON>']`` (without the argument the
options are read from stdin, after the SDK is loaded) runs ``helm dependency list``
(when ``{"dependencies": true}``) and ``helm lint`` (which loads the chart and checks its
defaults against ``values.schema.json``) on the archive and writes one JSON object to stdout::

    {"dependencies": {"result": [...]} | {"error": {...}} | null,
     "lint": {"result": {...}} | {"error": {"type": "HelmChartLoadError", "message": "..."}}}

``python -m netweave_helm.chartcheck -`` takes the archive from the options read on stdin
(``"archive": PATH``): a child started before the upload that uses it.

``python -m netweave_helm.chartcheck <archive> '{"action": "render", "release": NAME,
"namespace": NS, "values": {...}, "upgrade": false, "cluster": {...} | null,
"maxOutputBytes": N}'`` renders a dry-run preview (``helm install|upgrade --dry-run=client``):
``{"render": {"result": {"manifest": ..., "notes": ..., ...}} | {"error": ...} |
{"tooLarge": BYTES}}``.

``python -m netweave_helm.chartcheck --serve`` is a persistent render worker (see
:class:`netweave_helm.rendering.RenderPool`): after loading the SDK it answers JSON requests
line by line (``render`` as above, ``install``/``upgrade``: the real SDK call), one at a time,
with a fresh ``RLIMIT_CPU`` soft limit per request, until its stdin ends (see :func:`serve`).

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
from collections.abc import Callable
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


#: Environment variable carrying the caps (see the module docstring).
LIMITS_ENV = "NETWEAVE_CHILD_LIMITS"
#: In place of ARCHIVE: the chart is named by the options' ``archive`` (a child started before
#: its chart was known: see :class:`netweave_helm.validation.SpareCheck`).
ARCHIVE_IN_OPTIONS = "-"


def apply_limits() -> None:
    raw = os.environ.get(LIMITS_ENV)
    if not raw:
        return
    import resource

    limits = json.loads(raw)
    # A capped process that dies must not write a core of its heap into the working directory.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    data = limits.get("dataBytes")
    if data:
        resource.setrlimit(resource.RLIMIT_DATA, (int(data), int(data)))
    cpu = limits.get("cpuSeconds")
    if cpu:
        # The soft limit sends SIGXCPU, the hard one SIGKILL.
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))


def _new_config(cluster: dict[str, Any] | None, namespace: str) -> Any:
    import helm_python as helm

    if cluster:
        return helm.Config(
            kubeconfig_path=cluster.get("kubeconfig"),
            kubeconfig_content=cluster.get("kubeconfigContent"),
            kube_context=cluster.get("context"),
            namespace=namespace,
            storage_driver=cluster.get("storageDriver"),
            qps=cluster.get("qps"),
            burst_limit=cluster.get("burst"),
        )
    # Rendering needs no cluster: nothing listens at this address, nothing is stored.
    return helm.Config(
        kube_apiserver="http://127.0.0.1:1", storage_driver="memory", namespace=namespace
    )


class _Configs:
    """A persistent worker's SDK configurations, one per cluster and namespace (as the gateway
    keeps them): a Config holds Kubernetes clients and their discovery cache, which every
    install would otherwise build again."""

    def __init__(self) -> None:
        self._configs: dict[str, Any] = {}

    def get(self, cluster: dict[str, Any] | None, namespace: str) -> Any:
        key = json.dumps([cluster, namespace], sort_keys=True)
        config = self._configs.get(key)
        if config is None:
            if len(self._configs) >= 64:
                self.close()  # bounded: a miss only costs a new Config
            config = self._configs[key] = _new_config(cluster, namespace)
        return config

    def close(self) -> None:
        for config in self._configs.values():
            config.close()
        self._configs.clear()


def render(chart: str, options: dict[str, Any], configs: _Configs | None = None) -> dict[str, Any]:
    """A client-side dry run, as the gateway's previews answered it in-process before."""
    import helm_python as helm

    namespace = str(options["namespace"])
    cluster = options.get("cluster")
    try:
        if configs is not None:
            config = configs.get(cluster or None, namespace)
        else:
            config = _new_config(cluster or None, namespace)
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


#: The keyword arguments an install or an upgrade request may pass on to the SDK.
_DEPLOY_KWARGS = {
    "install": frozenset(
        {"namespace", "timeout", "wait", "create_namespace", "description", "labels"}
    ),
    "upgrade": frozenset(
        {"namespace", "timeout", "wait", "max_history", "reset_values", "description", "labels"}
    ),
}


def deploy(chart: str, options: dict[str, Any], configs: _Configs, context: Any) -> dict[str, Any]:
    """A real ``helm install`` or ``helm upgrade`` (the SDK renders, stores and applies as
    Helm does): ``{"deploy": {"result": release} | {"error": ...}}``. A manifest over
    ``maxOutputBytes`` (with the notes) is not handed back (``manifestOmitted``: their size),
    so the gateway never reads more than the cap from a worker."""
    import helm_python as helm

    action = str(options.get("action"))
    allowed = _DEPLOY_KWARGS[action]
    kwargs = {k: v for k, v in (options.get("kwargs") or {}).items() if k in allowed}
    namespace = str(options["namespace"])
    try:
        config = configs.get(options.get("cluster") or None, namespace)
        call = config.upgrade if action == "upgrade" else config.install
        release = call(
            chart, str(options["release"]), options.get("values") or {}, context=context, **kwargs
        )
    except helm.HelmError as exc:
        return {"deploy": {"error": _error(exc)}}
    size = len(str(release.get("manifest") or "").encode())
    size += len(str(release.get("notes") or "").encode())
    cap = options.get("maxOutputBytes")
    if cap and size > int(cap):
        release["manifest"] = ""
        release["notes"] = ""
        release["manifestOmitted"] = size
    return {"deploy": {"result": release}}


#: The gateway's pid, given to a persistent worker (``--serve``): it dies with the gateway.
PARENT_ENV = "NETWEAVE_RENDER_PARENT"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this worker when the gateway dies (even by SIGKILL): an
    orphaned worker must not go on installing a release that a restarted gateway resumes."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != int(parent):
        os._exit(0)  # the gateway died before the request took effect


def _cpu_cap(seconds: Any) -> None:
    """``RLIMIT_CPU`` for the next request: the CPU time used so far plus ``seconds`` (the
    soft limit only, so the next request can move it again; over it the kernel sends SIGXCPU,
    which ends this worker)."""
    if not seconds:
        return
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = int(usage.ru_utime + usage.ru_stime) + int(seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _vm_data() -> int:
    """This worker's data segment now (what ``RLIMIT_DATA`` counts), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - Linux always says


def serve(out: Any) -> int:
    """A persistent render worker (``--serve``): once the SDK is loaded, ``{"ready": true,
    "vmData": N}``; then one JSON request per stdin line, one JSON answer per stdout line
    (``{"id", "answer", "vmData"}``), one request at a time; a line
    ``{"cancel": ID}`` cancels request ID's install or upgrade. Ends at the end of stdin."""
    import queue
    import threading

    import helm_python as helm

    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
    lock = threading.Lock()
    running: dict[str, Any] = {}

    def read() -> None:
        try:
            for line in sys.stdin:
                message = json.loads(line)
                if "cancel" in message:
                    with lock:
                        context = running.get(str(message["cancel"]))
                        if context is not None:
                            context.cancel()
                else:
                    requests.put(message)
        finally:
            requests.put(None)

    threading.Thread(target=read, name="requests", daemon=True).start()
    # TMPDIR (the worker's own directory, removed when it ends) is not emptied between
    # requests: a kept Config's inline kubeconfig lives there.
    configs = _Configs()
    # Ready, with the data segment the SDK takes before any chart (Go maps much up front).
    out.write(json.dumps({"ready": True, "vmData": _vm_data()}) + "\n")
    out.flush()
    while (request := requests.get()) is not None:
        ident = str(request.get("id"))
        _cpu_cap(request.get("cpuSeconds"))
        action = request.get("action")
        argument = str(request.get("argument"))
        if action in _DEPLOY_KWARGS:
            context = helm.HelmContext()
            with lock:
                running[ident] = context
            try:
                answer = deploy(argument, request, configs, context)
            finally:
                with lock:
                    running.pop(ident, None)
                context.close()
        elif action == "render":
            answer = render(argument, request, configs)
        else:
            answer = check(argument, request)
        line = json.dumps(
            {"id": ident, "answer": answer, "vmData": _vm_data()}, default=str, ensure_ascii=False
        )
        out.write(line + "\n")
        out.flush()
    configs.close()
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--serve"]:
        out = os.fdopen(os.dup(1), "w", encoding="utf-8")
        os.dup2(2, 1)
        _die_with_parent()
        apply_limits()
        return serve(out)
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
    # ARCHIVE_IN_OPTIONS: started before its chart was known (a spare), it is named here.
    chart = str(options.pop("archive")) if argv[0] == ARCHIVE_IN_OPTIONS else argv[0]
    actions: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
        "render": render,
    }
    action = actions.get(str(options.get("action")), check)
    answer = action(chart, options)
    json.dump(answer, out, default=str)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
