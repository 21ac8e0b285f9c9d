"""The dataset export task (ECS Fargate, started by the export state machine): makes one
export (prtrace.dataset.job) and exits 0, or 1 with error.json stored, or 2 when its own
configuration is wrong. Its environment names the export (PRTRACE_EXPORT_TENANT,
PRTRACE_EXPORT_ID, set per run by the state machine) and the stores."""

from __future__ import annotations

import logging
import sys

from prtrace.adapters.wiring import run_export_job
from prtrace.settings import ConfigurationError, ExportJobSettings

log = logging.getLogger("prtrace.dataset.job")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        settings = ExportJobSettings.from_env()
    except ConfigurationError as exc:
        log.error("%s", exc)
        return 2
    try:
        manifest = run_export_job(settings)
    except Exception:
        log.exception("export %s of %s failed", settings.export_id, settings.export_tenant)
        return 1
    log.info(
        "export %s: %d traces, %d events, files %s",
        settings.export_id, manifest["trace_count"], manifest["event_count"],
        ", ".join(sorted(manifest["files"])),
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
