"""Inputs that become node labels, taint values or a command's environment are checked against
their real formats at the edge: the pool API's driver versions (a node label and the upgrade
command's POOLWATCH_VERSION) and the controller's fault codes (a taint value and a notice label).

Before: any string passed (a driver version of `$(reboot)`, a fault code of "DROP TABLE")."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import free_port
from test_api import P, error
from test_api_support import AUTH, TOKEN, controller_over, quiet_cluster
from test_controller_support import controller, sim

from poolwatch.api.app import create_app
from poolwatch.api.upgrade import UpgradePlan, version_problem
from poolwatch.controller.server import ControllerServer, serve
from poolwatch.core.actions import NodeAction

GOOD_GPU = ["535.161.08", "550.54.15", "590.48.01", "440.33", "1000.1.1"]
GOOD_NPU = ["24.1.rc2", "24.1.RC2", "23.0.3", "23.0.rc3.b060", "24.1.RC2.SPC001"]
BAD = ["", " ", "1", "535", "535.161.08 ", " 535.161.08", "535.161.08\n", "535.161.08;reboot",
       "$(reboot)", "`id`", "DROP TABLE", "535..08", "v535.161.08", "535.161.08-beta",
       "24.1.rc", "24.1.rc2.", "24.1.rc2/../x", "24.1.rc2 x", "535.161.08.1.2",
       "\uff15\uff13\uff15.161.08", "a" * 200]  # fmt: skip


@pytest.mark.parametrize("version", GOOD_GPU + GOOD_NPU)
def test_real_driver_versions_pass(version: str) -> None:
    assert version_problem(version) is None
    assert UpgradePlan("p", version).version == version


@pytest.mark.parametrize("version", BAD)
def test_anything_else_is_refused(version: str) -> None:
    assert version_problem(version) is not None
    with pytest.raises(ValueError, match="version"):
        UpgradePlan("p", version)


def test_the_api_refuses_a_driver_version_naming_the_field(tmp_path: Path) -> None:
    cluster = quiet_cluster()
    app = create_app(controller_over(cluster, tmp_path), cluster, "http://127.0.0.1:9", TOKEN)
    url = f"{P}/pools/gpu-a/driver-upgrade"
    with TestClient(app, headers=AUTH) as client:
        for bad in ("$(reboot)", "535.161.08;id", "DROP TABLE", "1"):
            body = error(client.post(url, json={"driver": {"gpuVersion": bad}}), 400, "PW.0100",
                         "driver.gpuVersion")  # fmt: skip
            assert "like 535.161.08" in body["error_msg"]
        error(client.post(url, json={"driver": {"npuVersion": "24.1.rc2; id"}}), 400, "PW.0100",
              "driver.npuVersion")  # fmt: skip
        error(client.post(url, json={"driver": {"gpuVersion": "24.1.rc2"}}), 400, "PW.0100",
              "driver.gpuVersion")  # an Ascend version is not an NVIDIA one  # fmt: skip
        ok = client.post(url, json={"driver": {"gpuVersion": "550.54.15"}})
        assert ok.status_code == 409  # valid: refused further on (no upgrade step configured)
        assert "no upgrade step" in ok.text
    schema = app.openapi()["components"]["schemas"]["Driver"]["properties"]
    assert "pattern" in json.dumps(schema["gpuVersion"])  # documented in the OpenAPI document


def test_the_controller_refuses_a_fault_code_that_is_not_one() -> None:
    ctl = controller(sim(), dry_run=False, replace_codes=["A050101"])
    server = ControllerServer(("127.0.0.1", free_port()), ctl, "t", lambda: True, lambda: None)
    serve(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/actions"
    try:
        for code, why in (("DROP TABLE", "A followed by six digits"),
                          ("A05010", "A followed by six digits"), ("a050101", "six digits"),
                          ("A0501011", "six digits"), ("A999999", "not a known isolation code"),
                          ("A\uff1050101", "six digits")):  # fmt: skip
            action = NodeAction("isolate", f"k-{code}", node="p0-node-01", fault_code=code)
            req = urllib.request.Request(url, json.dumps(action.to_json()).encode(),
                                         {"Authorization": "Bearer t"}, method="POST")  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == 400
            doc = json.loads(err.value.read())
            assert doc["outcome"] == "refused"
            assert why in doc["detail"]
        node = next(n for n in ctl.backend.nodes() if n.name == "p0-node-01")
        assert not node.taints  # nothing reached the node
        # the in-process interfaces refuse it too
        assert ctl.submit(NodeAction("isolate", "x", node="p0-node-01",
                                     fault_code="DROP TABLE")).outcome == "refused"  # fmt: skip
        assert ctl.isolate("p0-node-01", "A999999", "test", "y").outcome == "refused"
        assert ctl.isolate("p0-node-01", "A050104", "test", "z").outcome == "done"
    finally:
        server.shutdown()
        server.server_close()
