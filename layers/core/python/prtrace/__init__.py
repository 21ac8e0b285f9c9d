"""prtrace core: the domain of every stage, with no AWS SDK in it.

Stages, in the order a trace goes through them (a stage may import the stages before it,
to read what they produce, never one after it; tests/unit/test_layering.py holds this):

    ingest/      tokens in, chunks verified and stored (the API's write side)
    results/     what the API serves back: a trace's events by page, links to its products
    provenance/  the signed trace manifest and the trace-to-state check
    assemble/    a finalized trace verified into one document, its metrics
    qa/          the fix validated: the repository's tests before and after, sandboxed
    judge/       the session scored on the rubric, by an LLM or offline
    dataset/     rows, files and exports built from complete traces
    pipeline/    the state machine's bookkeeping: Record, the outcome, the sweeper
    adapters/    S3, DynamoDB, KMS, Step Functions, OpenAI, the sandbox backends: the only
                 place boto3, httpx, openai and docker are imported

The shared ground, which imports no stage: `schema` (trace schema v1), `canonical`,
`errors`, `settings`, `ports` (the storage interfaces), `records` and `tokens` (what the
stores keep), `storage_keys`, `integrity`, `validation`, `patches`, `write_once`, and a few
small tables of names.
"""
