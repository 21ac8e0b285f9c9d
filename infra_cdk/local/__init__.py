"""Run the stack on one machine against a local AWS emulator."""
