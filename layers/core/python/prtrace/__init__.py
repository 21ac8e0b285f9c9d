"""prtrace core: trace schema, integrity, ingestion domain logic and storage adapters."""
