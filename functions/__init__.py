"""The deployed functions, each a thin handler over the core (layers/core/python/prtrace):
api/ (the HTTP API: router, models, problems, the OpenAPI document), authorizer/,
assemble/, qa_grant/ (PrepareQa), judge/, record/ and sweeper/ (Lambdas), and the two
container tasks, qa_runner/ (sandboxed tests) and export_job/ (dataset exports).

A handler parses its event, calls the core through prtrace.adapters.wiring, and shapes the
answer; the logic lives in the core. No function imports another."""
