"""What the benchmark sends: the demo config pointed at the fake flow API, CloudEvents, signed notifications."""

from __future__ import annotations

import json
import time

from bench.fakeflow import WEBHOOK_SECRET
from bench.loadgen import get, post
from gateway.core import signing

SOURCE_TOKEN = "demo-token"
OPERATOR_TOKEN = "demo-operator-token"
EVENT_TYPE = "com.example.patient.checked"  # the route whose template has no review step
EVENT_HEADERS = {"Authorization": f"Bearer {SOURCE_TOKEN}", "Content-Type": "application/cloudevents+json"}

CONFIG = """
mode = "demo"  # the demo config: development secrets and the sample data key (payloads are still encrypted)

[server]
host = "127.0.0.1"
port = 8000

[store]
url = "sqlite:///{db}"

[worker]
concurrency = 16
poll_interval = 0.5
lease_seconds = 120

[encryption]
key_env = "GATEWAY_DATA_KEY"

[outbound]
allow = ["127.0.0.1"]

[dev_secrets]
GATEWAY_DATA_KEY = "demo:c2FtcGxlLWtleS1mb3ItdGhlLWRlbW8tb25seS0wMDE="
GATEWAY_DEMO_SOURCE_TOKEN = "demo-token"
GATEWAY_DEMO_OPERATOR_TOKEN = "demo-operator-token"
GATEWAY_SOHAR_CLIENT_ID = "sandbox-client"
GATEWAY_SOHAR_CLIENT_SECRET = "sandbox-secret-for-local-development-only"
GATEWAY_SOHAR_WEBHOOK_SECRET = "{webhook_secret}"
GATEWAY_DEMO_SINK_SECRET = "whsec_ZGV2ZWxvcG1lbnQtb25seS1zaW5rLXNlY3JldC0wMDAwMDE="

[operators]
tokens = [{{ name = "demo-operator", token_env = "GATEWAY_DEMO_OPERATOR_TOKEN" }}]

[sources.demo]
auth = "bearer"
token_env = "GATEWAY_DEMO_SOURCE_TOKEN"

[providers.sohar]
kind = "sohar"
base_url = "http://127.0.0.1:{fake_port}"
client_id_env = "GATEWAY_SOHAR_CLIENT_ID"
client_secret_env = "GATEWAY_SOHAR_CLIENT_SECRET"
webhook_secrets_env = ["GATEWAY_SOHAR_WEBHOOK_SECRET"]
idempotency_header = "Idempotency-Key"

[flows.eligibility]
provider = "sohar"
template = "eligibility-check"

[flows.eligibility.inputs.await-decision]
message = "Approve or deny this eligibility check"
schema = {{ type = "object", required = ["decision"], properties = {{ decision = {{ type = "string" }} }} }}

[flows.auto-eligibility]
provider = "sohar"
template = "auto-check"

[[routes]]
name = "patient-registered"
source = "demo"
type = "com.example.patient.registered"
flow = "eligibility"
input = {{ patientId = "$.data.patient.id", payerId = "$.data.coverage.payerId", requestedBy = {{ const = "gw" }} }}

[[routes]]
name = "patient-registered-auto"
source = "demo"
type = "com.example.patient.checked"
flow = "auto-eligibility"
input = {{ patientId = "$.data.patient.id", payerId = "$.data.coverage.payerId" }}

[sinks.results]
kind = "http"
url = "http://127.0.0.1:{fake_port}/sink"
internal = true
secret_env = "GATEWAY_DEMO_SINK_SECRET"
on = ["COMPLETE", "ERROR", "FAILED_TO_START"]
flows = ["*"]
"""


def config_text(db: str, fake_port: int) -> str:
    return CONFIG.format(db=db, fake_port=fake_port, webhook_secret=WEBHOOK_SECRET)


def event_body(prefix: str, n: int) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{prefix}-{n:09d}",
            "source": "/ehr/checks",
            "type": EVENT_TYPE,
            "datacontenttype": "application/json",
            "data": {"patient": {"id": f"P-{n}"}, "coverage": {"payerId": "PAYER-42"}},
        },
        separators=(",", ":"),
    ).encode()


def event_request(prefix: str):  # type: ignore[no-untyped-def]
    def make(n: int) -> bytes:
        return post("/v1/events", event_body(prefix, n), EVENT_HEADERS)

    return make


def notification_request(provider_run_ids: list[str], prefix: str):  # type: ignore[no-untyped-def]
    key = signing.parse_signing_key(WEBHOOK_SECRET)
    now = int(time.time())

    def make(n: int) -> bytes:
        run_id = provider_run_ids[n % len(provider_run_ids)]
        body = json.dumps(
            {"event": "flow.updated", "flowRunId": run_id, "status": "COMPLETE", "stateId": "done"}
        ).encode()
        headers = signing.sign_headers(key, f"msg_{prefix}_{n}", now, body, prefix="svix")
        headers["Content-Type"] = "application/json"
        return post("/v1/webhooks/sohar", body, headers)

    return make


def list_request(path: str) -> bytes:
    return get(path, {"Authorization": f"Bearer {OPERATOR_TOKEN}"})


WRK_EVENT_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"specversion":"1.0","id":"%s-%09d","source":"/ehr/checks","type":"%s",'
    .. '"datacontenttype":"application/json","data":{"patient":{"id":"P-%d"},"coverage":{"payerId":"PAYER-42"}}}',
    PREFIX, counter, EVENT_TYPE, counter)
  return wrk.format("POST", "/v1/events", HEADERS, body)
end
"""


def wrk_script(prefix: str) -> str:
    headers = ", ".join(f'["{k}"] = "{v}"' for k, v in EVENT_HEADERS.items())
    return f'PREFIX = "{prefix}"\nEVENT_TYPE = "{EVENT_TYPE}"\nHEADERS = {{ {headers} }}\n' + WRK_EVENT_SCRIPT
