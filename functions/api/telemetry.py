"""Logger, tracer and metrics of the API function (one instance each, shared by routes)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from prtrace import cloudwatch_names as names

SERVICE = names.API_SERVICE
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=names.NAMESPACE, service=SERVICE)
