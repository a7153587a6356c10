"""TEST DOUBLE: the AWS Service Quotas API on 127.0.0.1, for the EC2 quotas moto's server does not serve.

moto (getmoto/moto, moto/servicequotas/models.py) answers GetServiceQuota for service code `vpc` only, and the
AWS preflight reads the EC2 vCPU quota. This server stands for the real endpoint
(https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html): the JSON 1.1
protocol, `X-Amz-Target: ServiceQuotasV20190624.GetServiceQuota`, answering `{"Quota": {...}}` for the quotas
the test sets and `NoSuchResourceException` (HTTP 400) or `AccessDeniedException` for the rest. boto3 reaches it
through `AWS_ENDPOINT_URL_SERVICE_QUOTAS`, which botocore reads for the client "service-quotas". Nothing here
ships in the wheel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.doubles.local_http import LocalHttpServer, QuietHandler

TARGET = "ServiceQuotasV20190624.GetServiceQuota"


@dataclass
class FakeServiceQuotas:
    # (service code, quota code) -> value
    quotas: dict[tuple[str, str], float] = field(default_factory=dict)
    deny: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append(body)
                if self.headers.get("X-Amz-Target") != TARGET:
                    return self._reply(400, {"__type": "UnknownOperationException", "message": "not served here"})
                if fake.deny:
                    return self._reply(400, {"__type": "AccessDeniedException", "Message": "not authorized"})
                key = (body.get("ServiceCode", ""), body.get("QuotaCode", ""))
                if key not in fake.quotas:
                    return self._reply(400, {"__type": "NoSuchResourceException", "Message": "no such quota"})
                quota = {
                    "ServiceCode": key[0],
                    "QuotaCode": key[1],
                    "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                    "Value": fake.quotas[key],
                    "Unit": "None",
                    "Adjustable": True,
                    "GlobalQuota": False,
                }
                self._reply(200, {"Quota": quota})

            def _reply(self, status: int, payload: dict[str, object]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = LocalHttpServer(Handler)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
