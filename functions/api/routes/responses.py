"""Small helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

import orjson
from aws_lambda_powertools.event_handler import Response


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=orjson.dumps(body).decode(),
        headers=headers,
    )
