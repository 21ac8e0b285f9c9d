"""Judge: score a trace against a versioned rubric, with an LLM or offline heuristics.

Imports the shared ground, assemble (the document) and qa (the report it weighs); the
model is called through judge/llm.py's port, implemented in prtrace.adapters."""
