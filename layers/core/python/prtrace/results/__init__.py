"""What the API serves back about a trace: links to its products, or why there is none
(products.py), and its events by seq range, read from the verified chunks (events.py).

Imports only the shared ground."""
