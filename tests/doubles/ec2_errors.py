"""TEST DOUBLE: an EC2 endpoint on 127.0.0.1 that answers every call with one error, for the errors moto's EC2
server does not make: expired or refused credentials (RequestExpired, ExpiredToken, AuthFailure), an IAM policy
that denies the action (UnauthorizedOperation), throttling (RequestLimitExceeded) and server faults (InternalError).

It stands for the real endpoint's error answers as the EC2 API reference documents them
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html): the HTTP status of the error and an
XML body `<Response><Errors><Error><Code>...</Code><Message>...</Message></Error></Errors><RequestID>...`, which
botocore's EC2 (query protocol) parser reads into ClientError. boto3 reaches it through AWS_ENDPOINT_URL_EC2. The
error is plain data the test sets; each request's Action is recorded. Nothing here ships in the wheel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from tests.doubles.local_http import LocalHttpServer, QuietHandler


@dataclass
class Ec2Errors:
    status: int = 400
    code: str = "AuthFailure"
    message: str = "AWS was not able to validate the provided access credentials"
    actions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                fake.actions.append(parse_qs(body).get("Action", [""])[0])
                data = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                    f"<Code>{escape(fake.code)}</Code><Message>{escape(fake.message)}</Message>"
                    "</Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
                ).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = LocalHttpServer(Handler)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
