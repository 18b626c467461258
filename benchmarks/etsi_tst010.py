"""Run ETSI's NFV-TST 010 v2.6.1 conformance suites for SOL003 VNF Lifecycle Management (the
``SOL003/VNFLifecycleManagement-API`` Robot Framework files, 171 cases, vnflcm v1), unmodified,
against a real gateway on the Kubernetes API emulator (issue 19; docs/etsi.md, "NFV-TST 010
conformance suites"). Not part of CI nor of the benches: it needs a copy of the suites and a
Python 3.7 environment with their ``requirements.txt`` pins, which CI does not have.

    python benchmarks/etsi_tst010.py --suites <suites checkout> --robot <venv>/bin/robot \\
        [--mode files|tests] [--out DIR] [FILE_STEM ...]

The suites: ``git archive HEAD SOL003 requirements.txt | tar -x -C <dir>`` in a clone of the
GitHub mirror ``openmsa/etsi-mano-app-test`` (a whole-tree archive stops at the MockServer jar
where the snapshot lacks that object); the environment: a Python 3.7 ``venv`` and
``pip install -r requirements.txt`` (robotframework 3.1, RESTinstance 1.0.0rc4, …).

What it starts, all on loopback: the emulator (in this process, so a test can hold an
occurrence in PROCESSING with a fault), ``netweave serve`` (SQLite in a temporary data
directory, a static token, the Helm adapter with a kubeconfig for the emulator), a proxy in
front of it that adds ``Version: 1.3.0`` when a request has none (the 2.6.1 suites never send
the header SOL013 requires), and the notification endpoint the suites' callback names
(``localhost:9091``: GET and POST answered 204; MockServer is not started).

What it onboards: a CSAR whose VNFD is the one the suites' request files name (``vnfdId``
6fc3539c-…d81f, flavour ``myFlavour``, aspect ``myAspect``, levels ``string`` and
``myNextLevel``) with the README's chart, and a chart whose install the API server refuses
(its Deployment's ``replicas`` is a string), for occurrences in FAILED_TEMP.

``--mode files`` runs each file once with fresh ids: ``vnfInstanceId`` an INSTANTIATED
instance (NOT_INSTANTIATED for the instantiate and delete files), ``vnfLcmOpOccId`` an
instantiate occurrence in FAILED_TEMP (COMPLETED for the occurrence reads, PROCESSING for
cancel), ``subscriptionId`` a subscription. ``--mode tests`` runs each test alone with the ids
its documented pre-condition asks for (a test named "Not Found" gets an id that does not
exist, "NOT-INSTANTIATED" a not instantiated instance, "not in FAILED_TEMP" a COMPLETED
occurrence, …), after seeding more than a page (100) of instances, occurrences and
subscriptions; it also sets the variables the suites leave to the tester to values of this
API (``fields``, ``sub_filter``, ``VNFM_DUPLICATION``, ``CancelMode`` as a CancelMode body),
and the proxy writes response header names in Title-Case (the gateway sends them in lower
case, the suites look ``Location`` and ``Link`` up case-sensitively). Either mode ends with
``rebot`` merging the outputs and printing Robot Framework's totals.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml
from netweave.testing import processes
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.vnfpkgm import build_csar, vnfd_document

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "docs/examples/hello-netweave"
LCM = Path("SOL003/VNFLifecycleManagement-API")
TOKEN = "tst010-" + uuid.uuid4().hex
#: jsons/createVnfRequest.json's and lccnSubscriptionRequest.json's vnfdId.
SUITE_VNFD = "6fc3539c-e602-4afa-8e13-962fb5a7d81f"
#: configuration.txt's callback_port (the notification endpoint of the suites' requests).
CALLBACK_PORT = 9091
NS = "tst010"
BOUND = 60.0  # seconds: every wait below is bounded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    """Plain HTTP to the gateway, without the proxy."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        version: str | None = "1.3.0",
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=BOUND)
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        if version:
            headers["Version"] = version
        data = json.dumps(body).encode() if body is not None else raw
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()}

    def poll(self, occ: str, states: set[str]) -> dict[str, Any]:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            status, body, _ = self.call("GET", f"/vnflcm/v1/vnf_lcm_op_occs/{occ}")
            if status == 200 and body["operationState"] in states:
                return dict(body)
            time.sleep(0.2)
        raise RuntimeError(f"occurrence {occ} did not reach {sorted(states)}")


def start_proxy(upstream: int, title_case: bool) -> http.server.ThreadingHTTPServer:
    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
            }
            if "version" not in {k.lower() for k in headers}:
                headers["Version"] = "1.3.0"
            conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=BOUND)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            self.send_response(resp.status, resp.reason)
            for name, value in resp.getheaders():
                if name.lower() in ("transfer-encoding", "connection", "content-length"):
                    continue
                if title_case:
                    name = "-".join(part.capitalize() for part in name.split("-"))
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    return serve(Proxy, free_port())


class Sink(http.server.BaseHTTPRequestHandler):
    """The notification endpoint: the subscription's GET test and the notifications, 204."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()


def serve(
    handler: type[http.server.BaseHTTPRequestHandler], port: int
) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def chart_archive(target: Path, name: str, *, broken: bool) -> Path:
    """The README's chart as ``name`` 0.1.0; ``broken``: replicas is a string the API server
    refuses, so Helm's install fails."""
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(p for p in CHART.rglob("*") if p.is_file()):
            rel = path.relative_to(CHART).as_posix()
            data = path.read_bytes()
            if rel == "Chart.yaml":
                doc = yaml.safe_load(data)
                doc["name"], doc["version"] = name, "0.1.0"
                data = yaml.safe_dump(doc).encode()
            if broken and rel == "templates/deployment.yaml":
                data = data.replace(
                    b"replicas: {{ .Values.replicaCount }}",
                    b'replicas: "{{ .Values.replicaCount }}x"',
                )
            info = tarfile.TarInfo(f"{name}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target


def suite_vnfd() -> dict[str, Any]:
    """A VNFD with the ids the suites' request files name."""
    text = json.dumps(vnfd_document(SUITE_VNFD, product="tst010-cnf", vdu="hello"))
    text = text.replace('"small"', '"string"').replace('"large"', '"myNextLevel"')
    doc = json.loads(text.replace("web_aspect", "myAspect"))
    doc["topology_template"]["node_templates"]["VNF"]["properties"]["flavour_id"] = "myFlavour"
    return dict(doc)


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for key, value in fields.items():
        out.write(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="chart"; filename="{filename}"\r\n'
        "Content-Type: application/gzip\r\n\r\n".encode()
    )
    out.write(content + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Seeds:
    """Fresh resources for each run of a file or test."""

    def __init__(self, gw: Gateway, emulator: KubernetesEmulator, broken: str) -> None:
        self.gw = gw
        self.emulator = emulator
        self.broken = broken
        self.count = 0

    def instance(self, vnfd: str) -> str:
        self.count += 1
        status, body, _ = self.gw.call(
            "POST",
            "/vnflcm/v1/vnf_instances",
            {"vnfdId": vnfd, "vnfInstanceName": f"seed-{self.count}"},
        )
        assert status == 201, (status, body)
        return str(body["id"])

    def instantiate(self, instance: str, state: str) -> str:
        status, body, headers = self.gw.call(
            "POST",
            f"/vnflcm/v1/vnf_instances/{instance}/instantiate",
            {
                "flavourId": "myFlavour",
                "additionalParams": {"namespace": NS, "releaseName": f"r{self.count}"},
            },
        )
        assert status == 202, (status, body)
        occ = headers["location"].rsplit("/", 1)[1]
        self.gw.poll(occ, {state})
        return occ

    def fresh(self) -> dict[str, str]:
        not_inst = self.instance(SUITE_VNFD)
        inst = self.instance(SUITE_VNFD)
        inst_occ = self.instantiate(inst, "COMPLETED")
        failed_inst = self.instance(self.broken)
        failed_occ = self.instantiate(failed_inst, "FAILED_TEMP")
        status, sub, _ = self.gw.call(
            "POST",
            "/vnflcm/v1/subscriptions",
            {"callbackUri": f"http://127.0.0.1:{CALLBACK_PORT}/n"},
        )
        assert status == 201, (status, sub)
        return {
            "not_inst": not_inst,
            "inst": inst,
            "inst_occ": inst_occ,
            "failed_inst": failed_inst,
            "failed_occ": failed_occ,
            "sub": str(sub["id"]),
        }

    def processing(self, inst: str) -> str:
        """A scale occurrence held in PROCESSING: the API server hangs the workload's writes
        (released when the test ends)."""
        self.emulator.faults.hang(
            path=f"/apis/apps/v1/namespaces/{NS}/*", method=frozenset({"PATCH", "PUT", "POST"})
        )
        status, body, headers = self.gw.call(
            "POST",
            f"/vnflcm/v1/vnf_instances/{inst}/scale",
            {"type": "SCALE_OUT", "aspectId": "myAspect"},
        )
        assert status == 202, (status, body)
        occ = headers["location"].rsplit("/", 1)[1]
        self.gw.poll(occ, {"PROCESSING"})
        return occ

    def pages(self) -> None:
        """More than a page (100) of instances, occurrences (MODIFY_INFO) and subscriptions."""
        holder = self.instance(SUITE_VNFD)
        for i in range(101):
            self.instance(SUITE_VNFD)
            status, body, _ = self.gw.call(
                "PATCH",
                f"/vnflcm/v1/vnf_instances/{holder}",
                {"vnfInstanceDescription": f"page {i}"},
                content_type="application/merge-patch+json",
            )
            assert status == 202, (status, body)
            status, body, _ = self.gw.call(
                "POST",
                "/vnflcm/v1/subscriptions",
                {"callbackUri": f"http://127.0.0.1:{CALLBACK_PORT}/p{i}"},
            )
            assert status == 201, (status, body)


def tests_of(path: Path) -> list[tuple[str, str]]:
    """Each test's name and its documented pre-conditions, in file order."""
    tests: list[tuple[str, str]] = []
    section = ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("***"):
            section = line.strip("* ").lower()
        elif section == "test cases" and line.strip() and not line.startswith(("  ", "\t")):
            # A name starts the line (Robot 3.1 also takes one with a single leading space).
            if not line.strip().startswith("#"):
                tests.append((line.strip(), ""))
        elif section == "test cases" and "Pre-conditions:" in line and tests:
            tests[-1] = (tests[-1][0], line.split("Pre-conditions:", 1)[1].strip())
    return tests


INSTANCE_FILES = (
    "Heal",
    "Scale",
    "Terminate",
    "Instantiate",
    "Operate",
    "ChangeVNFFlavour",
    "ChangeExternal",
    "IndividualVNFInstance",
)
OCC_FILES = ("Retry", "Rollback", "Fail", "Cancel", "IndividualVnfLcmOperationOccurence")


def precondition(
    stem: str, test: str, pre: str, ids: dict[str, str], seeds: Seeds
) -> dict[str, str]:
    """The ids a test's documented pre-condition asks for (a file's tests share one variable
    for resources in different states)."""
    low, name = pre.lower(), test.lower()
    missing = "not found" in name or "not existing" in low
    if stem.startswith(INSTANCE_FILES):
        if missing:
            return {"vnfInstanceId": str(uuid.uuid4())}
        if re.search(r"\bis in +not[- ]instantiated", low) or (
            stem.startswith("InstantiateVNF") and "not instantiated" in low
        ):
            return {"vnfInstanceId": ids["not_inst"]}
        if "another lcm operation is ongoing" in low:
            seeds.processing(ids["inst"])
            return {"vnfInstanceId": ids["inst"]}
        if stem == "IndividualVNFInstance" and name == "delete individual vnfinstance":
            return {"vnfInstanceId": ids["not_inst"]}  # existing, and deletable
        return {"vnfInstanceId": ids["inst"]}
    if stem.startswith(OCC_FILES):
        if missing:
            return {"vnfLcmOpOccId": str(uuid.uuid4())}
        if "is not in" in low:
            return {"vnfLcmOpOccId": ids["inst_occ"]}
        if stem.startswith(("Cancel", "IndividualVnfLcm")):
            if "processing" in low:
                return {"vnfLcmOpOccId": seeds.processing(ids["inst"])}
            return {"vnfLcmOpOccId": ids["inst_occ"]}
        return {"vnfLcmOpOccId": ids["failed_occ"]}
    if stem.startswith(("InstantiateVNFTaskWorkflow", "DeleteVNF")):
        return {"vnfInstanceId": ids["not_inst"]}
    return {}


def per_file(stem: str, ids: dict[str, str], seeds: Seeds) -> dict[str, str]:
    if stem.startswith(("InstantiateVNF", "DeleteVNF")):
        return {"vnfInstanceId": ids["not_inst"]}
    if stem.startswith("CancelOperation"):
        return {"vnfLcmOpOccId": seeds.processing(ids["inst"])}
    if stem.startswith(("IndividualVnfLcmOperationOccurence", "VnfLcmOperationOcc")):
        return {"vnfLcmOpOccId": ids["inst_occ"]}
    return {}


def robot(
    robot_bin: Path, cwd: Path, outdir: Path, variables: dict[str, str], args: list[str]
) -> str:
    cmd = [str(robot_bin), "--outputdir", str(outdir), "--report", "NONE", "--log", "NONE"]
    cmd += ["--console", "dotted"]
    for key, value in variables.items():
        cmd += ["--variable", f"{key}:{value}"]
    done = subprocess.run(
        cmd + args, cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "console.txt").write_text(done.stdout + done.stderr)
    totals = [line for line in done.stdout.splitlines() if " passed, " in line]
    return totals[-1] if totals else done.stdout[-300:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--suites", type=Path, required=True, help="checkout of the suites' repository"
    )
    parser.add_argument(
        "--robot", type=Path, required=True, help="robot of a venv with the suites' pins"
    )
    parser.add_argument("--mode", choices=("files", "tests"), default="files")
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: a new temp dir)"
    )
    parser.add_argument("stems", nargs="*", help="only these files (names without .robot)")
    args = parser.parse_args(argv)
    suites = (args.suites / LCM).resolve()
    if not suites.is_dir():
        parser.error(f"{suites}: not a directory")
    out = args.out or Path(tempfile.mkdtemp(prefix="tst010-"))
    shutil.rmtree(out / "robot", ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="tst010-gateway-"))
    netweave = Path(sys.executable).parent / "netweave"

    emulator = KubernetesEmulator(host="127.0.0.1", port=0)
    emulator.start()
    kubeconfig = emulator.write_kubeconfig(work / "emulator.kubeconfig")
    config = {
        "api": {"token": TOKEN},
        # One attempt: a failed Helm install is FAILED_TEMP at once.
        "operations": {"pollInterval": 0.05, "maxAttempts": 1},
        "notifications": {
            "allowedCidrs": ["127.0.0.0/8", "::1/128"],
            "maxAttempts": 3,
            "timeout": 3.0,
        },
        "plugins": {
            "dms": [
                {
                    "name": "helm-local",
                    "type": "helm",
                    "default": True,
                    "config": {
                        "storage": {"kind": "local"},
                        "cluster": {"kubeconfig": str(kubeconfig), "wait": "none"},
                        "timeouts": {"write": 20},
                    },
                }
            ]
        },
    }
    (work / "netweave.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (work / "gateway.log").open("w") as log:
        gateway = subprocess.Popen(
            [
                *(str(netweave), "serve", "--port", str(port), "--data-dir", str(work / "data")),
                *("--config", str(work / "netweave.yaml"), "--log-format", "json"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sink = serve(Sink, CALLBACK_PORT)
    proxy = start_proxy(port, title_case=args.mode == "tests")
    gw = Gateway(port)
    try:
        deadline = time.monotonic() + BOUND
        while True:
            try:
                if gw.call("GET", "/vnflcm/v1/api_versions", version=None)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or gateway.poll() is not None:
                raise RuntimeError(f"the gateway did not start: see {work / 'gateway.log'}")
            time.sleep(0.3)
        csar = build_csar(
            work / "tst010.csar",
            vnfd=suite_vnfd(),
            chart=chart_archive(work / "hello-netweave-0.1.0.tgz", "hello-netweave", broken=False),
            chart_name="hello-netweave-0.1.0.tgz",
        )
        status, pkg, _ = gw.call("POST", "/vnfpkgm/v2/vnf_packages", {}, version="2.4.0")
        assert status == 201, (status, pkg)
        status, body, _ = gw.call(
            "PUT",
            f"/vnfpkgm/v2/vnf_packages/{pkg['id']}/package_content",
            raw=csar.read_bytes(),
            content_type="application/zip",
            version="2.4.0",
        )
        assert status == 202, (status, body)
        raw, content_type = multipart(
            {"name": "hello-broken", "artifactVersion": "0.1.0"},
            "hello-broken-0.1.0.tgz",
            chart_archive(work / "broken.tgz", "hello-broken", broken=True).read_bytes(),
        )
        status, broken, _ = gw.call(
            "POST",
            "/o2dms/v1/nfDeploymentDescriptors",
            raw=raw,
            content_type=content_type,
            version=None,
        )
        assert status == 201, (status, broken)
        seeds = Seeds(gw, emulator, str(broken["packageId"]))

        files = sorted(p.name for p in suites.glob("*.robot") if "Keywords" not in p.name)
        files.sort(key=lambda n: n.startswith("Delete"))  # deletes last
        if args.stems:
            files = [f for f in files if f.removesuffix(".robot") in args.stems]
        base = {
            "VNFM_SCHEMA": "http",
            "VNFM_HOST": "127.0.0.1",
            "VNFM_PORT": str(proxy.server_address[1]),
            "AUTHORIZATION": f"Bearer {TOKEN}",
            "vnfPkgId_processing": str(pkg["id"]),
            "sleep_interval": "2s",
            "total_polling_time": "30 sec",
            "polling_interval": "1 sec",
        }
        tester = {
            "VNFM_DUPLICATION": "1",  # this VNFM creates a duplicate subscription (no 303)
            "CancelMode": '{"cancelMode": "GRACEFUL"}',
            "sub_filter": f"filter=(eq,callbackUri,http://localhost:{CALLBACK_PORT}/notification)",
        }
        fields = {"VNFInstances": "metadata", "VnfLcmOperationOccurences": "resourceChanges"}
        if args.mode == "tests":
            seeds.pages()
        for name in files:
            stem = name.removesuffix(".robot")
            runs = [(stem, "")] if args.mode == "files" else tests_of(suites / name)
            for index, (test, pre) in enumerate(runs):
                ids = seeds.fresh()
                variables = {
                    **base,
                    "vnfInstanceId": ids["inst"],
                    "notInstantiatedVnfInstanceId": ids["not_inst"],
                    "conflicVnfInstanceId": ids["inst"],
                    "vnfLcmOpOccId": ids["failed_occ"],
                    "subscriptionId": ids["sub"],
                }
                if args.mode == "files":
                    variables.update(per_file(stem, ids, seeds))
                    outdir = out / "robot" / stem
                    selected = [name]
                else:
                    variables.update(tester)
                    if stem in fields:
                        variables["fields"] = fields[stem]
                    variables.update(precondition(stem, test, pre, ids, seeds))
                    safe = re.sub(r"[^A-Za-z0-9]+", "_", test)[:70]
                    outdir = out / "robot" / stem / f"{index:02d}_{safe}"
                    selected = ["--test", test, name]
                result = robot(args.robot, suites, outdir, variables, selected)
                label = stem if args.mode == "files" else f"{stem} / {test}"
                print(f"{label}: {result}", flush=True)
                emulator.faults.clear()
        outputs = sorted(str(p) for p in (out / "robot").rglob("output.xml"))
        rebot = args.robot.parent / "rebot"
        subprocess.run(
            [
                *(str(rebot), "--name", f"TST010 SOL003 VNF LCM ({args.mode})"),
                *("--outputdir", str(out), "--output", "merged.xml", "--log", "NONE"),
                *("--report", "NONE", *outputs),
            ],
            check=False,
            timeout=600,
            capture_output=True,
        )
        # rebot's own output, written just above.
        merged = ElementTree.parse(out / "merged.xml").getroot()  # noqa: S314
        total = merged.findall("statistics/total/stat")[-1]
        passed, failed = int(total.get("pass", "0")), int(total.get("fail", "0"))
        print(
            f"{passed + failed} tests total, {passed} passed, {failed} failed (rebot: {total.text})"
        )
        # Each failure with Robot's message: what a triage starts from.
        for suite in merged.iter("suite"):
            for test in suite.findall("test"):
                status = test.find("status")
                if status is not None and status.get("status") == "FAIL":
                    message = " ".join((status.text or "").split())[:200]
                    print(f"FAIL {suite.get('name')} / {test.get('name')}: {message}")
        print(f"outputs: {out}; gateway log: {work / 'gateway.log'}")
    finally:
        processes.stop(gateway)
        proxy.shutdown()
        sink.shutdown()
        emulator.faults.clear()
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
