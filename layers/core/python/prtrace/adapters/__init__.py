"""Storage, secret, model and sandbox adapters behind the domain's ports (prtrace.ports,
the stages' ports.py). The outermost layer of the core: it may import every stage, and
only it imports boto3, httpx, openai or docker; wiring.py builds each function's graph."""
