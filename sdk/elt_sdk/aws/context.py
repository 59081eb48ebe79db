"""What a handler is given as Lambda's ``context`` when something other than Lambda invokes it:
the local runtime's event sources, ``elt-sdk invoke``, tests."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
"""Credentials for an endpoint that is not AWS (the embedded endpoint, ``--endpoint-url``): boto3
signs every request, so it needs some."""


@dataclass
class LambdaContext:
    function_name: str
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    memory_limit_in_mb: int = 1024

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_s - time.time()) * 1000))
