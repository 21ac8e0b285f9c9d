"""The offline judge on the calibration set (tests/judge_calibration): how closely its
overall scores follow the labelled quality order (Kendall's tau-b, the figure the
calibration test asserts >= 0.8), and the orderings the set exists to check.
`run()` returns flat keys with units in their names; `python -m bench.judge_calibration`
prints them."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tests.judge_calibration.ranking import cheats_above_honest, score_offline_set, tau_with_labels


def run() -> dict[str, float]:
    scored = score_offline_set()
    cheats = [s for s in scored if s.calibration.kind == "cheat"]
    honest = [s for s in scored if s.calibration.kind == "honest_fix"]
    return {
        "judge_offline_calibration_traces": len(scored),
        "judge_offline_calibration_kendall_tau_b": round(tau_with_labels(scored), 4),
        "judge_offline_calibration_cheats_above_honest_pairs": len(cheats_above_honest(scored)),
        "judge_offline_calibration_max_cheat_fix_correctness": max(
            s.result.score_of("fix_correctness") for s in cheats
        ),
        "judge_offline_calibration_max_cheat_overall": max(s.overall for s in cheats),
        "judge_offline_calibration_min_honest_overall": min(s.overall for s in honest),
    }


def main() -> None:
    table = Table("offline judge on the calibration set", "value")
    for key, value in run().items():
        table.add_row(key, f"{value:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
