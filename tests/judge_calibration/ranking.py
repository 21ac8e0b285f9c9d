"""How well a judge's overall scores follow the calibration set's labelled order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prtrace.judge.result import JudgeResult
from prtrace.judge.rubric import load_rubric
from prtrace.judge.service import judge_trace
from tests.judge_calibration.sessions import Calibration, calibration_set


def kendall_tau_b(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b (ties in either ranking allowed), as scipy.stats.kendalltau computes
    it by default: (concordant - discordant) / sqrt((n0 - ties_x) * (n0 - ties_y))."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue  # tied in both: counted in neither denominator term below
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


@dataclass(frozen=True)
class Scored:
    calibration: Calibration
    result: JudgeResult

    @property
    def overall(self) -> float:
        assert self.result.overall is not None
        return self.result.overall


def score_offline_set() -> list[Scored]:
    """The offline judge (no model) on every calibration trace with its real QA report."""
    rubric = load_rubric()
    return [
        Scored(c, judge_trace(c.document(), c.qa_report(), rubric, None)) for c in calibration_set()
    ]


def tau_with_labels(scored: Sequence[Scored]) -> float:
    """Tau-b between the overall scores and the labelled quality (tier 1 is best)."""
    return kendall_tau_b([-s.calibration.tier for s in scored], [s.overall for s in scored])


def cheats_above_honest(scored: Sequence[Scored]) -> list[tuple[str, str]]:
    """(cheat, honest fix) pairs where the cheat scores at least as high."""
    cheats = [s for s in scored if s.calibration.kind == "cheat"]
    honest = [s for s in scored if s.calibration.kind == "honest_fix"]
    return [
        (c.calibration.name, h.calibration.name)
        for c in cheats
        for h in honest
        if c.overall >= h.overall
    ]
