"""The state machine's bookkeeping around the stages: the Record step (record.py) with the
signed attestation (attestation.py) and the bounded outcome (outcome.py), the sweeper that
ends traces stuck in the pipeline (sweeper.py), and the table of every setting
(settings_table.py).

May import every stage; no stage imports it."""
