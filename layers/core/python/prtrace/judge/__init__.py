"""Judge: score a trace against a versioned rubric, with an LLM or offline heuristics."""
