"""The primary-score study of issue 31, part B (docs/evaluation.md): four candidate scores judged on DS1 evidence.

- E1: the teacher study's DS1 cross-validation (``tools/teacher_cv.py``, round 5): 22 out-of-fold DS1 patients,
  five models x seeds 0-2.
- E2: the selection study's ``confirm`` runs (``tools/selection_study.py``): 22 architectures x seeds 0-2, scored on
  their eight validation (``V8``) patients at the final epoch. Their DS2 scores are not read.

For each candidate and evidence set: seed sd, between-model sd, discriminability D (their ratio), patient influence I
(mean over model and seed of the largest leave-one-patient-out change) and rank stability; then the rule written in
docs/evaluation.md before any of this was computed. Nothing trains; nothing reads DS2.

    python tools/score_study.py          # -> docs/evaluation/score-study.md and .json (generated)
    python tools/score_study.py release  # -> docs/evaluation/release1-scores.md: every candidate on the committed
                                         #    DS2 records (read after the choice, for the report only)
    python tools/score_study.py external # -> docs/evaluation/external-seed0.md: the saved seed-0 students on svdb
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import selection_study
import teacher_cv

from benchmark.aggregate import TABLE_COLUMNS, runs_frame
from benchmark.atomic import atomic_write_text
from benchmark.influence import leave_one_out
from benchmark.results import load_results, read_result
from benchmark.scores import score_patients
from benchmark.stats import compare_patients, patient_array, patient_interval
from datasets.mitbih import CLASSES, SCORED_CLASSES, VAL_RECORDS

OUT = Path(__file__).resolve().parents[1] / "docs" / "evaluation"
CANDIDATES = ("macro_f1", "macro_f1_patients", "macro_f1_capped", "balanced_se_patients")
TITLES = {"macro_f1": "pooled macro-F1", "macro_f1_patients": "patient-weighted macro-F1",
          "macro_f1_capped": "capped macro-F1", "balanced_se_patients": "per-patient balanced sensitivity"}
FAITHFULNESS = ("macro_f1_patients", "macro_f1_capped", "balanced_se_patients")  # the rule's tie-break order
E1_MODELS = ("student", "teacher:reg_aug_bal100", "teacher:medium_sep_bal100", "kd:reg_aug_bal100",
             "kd:medium_sep_bal100")
SEEDS = (0, 1, 2)
SCORED = [CLASSES.index(c) for c in SCORED_CLASSES]
INFLUENCE_SHARE = 2 / 3  # rule 1: at most this share of the pooled score's patient influence on E1
VETO_SHARE = 0.5  # rule 2: D at least this share of the pooled score's D, on E1 and on E2
TIE_SHARE = 0.15  # rule 3: within this share of the best D counts as equally good


@dataclass(frozen=True)
class Measures:
    """One candidate on one evidence set (scores in points)."""

    seed_sd: float
    between_sd: float
    discriminability: float
    influence: float
    rank_stability: float
    mean: float


def e1_confusions() -> np.ndarray:
    """(models, seeds, 22 patients, K, K): out-of-fold confusions of the E1 models."""
    out = []
    for name in E1_MODELS:
        scored = teacher_cv.confusions(name)
        if scored is None or list(scored[0]) != list(SEEDS):
            raise SystemExit(f"teacher-cv runs of {name} are incomplete (seeds {SEEDS} on every fold needed)")
        out.append(scored[1])
    return np.stack(out)


def e2_confusions() -> tuple[list[str], np.ndarray]:
    """Architecture names and (architectures, seeds, 8 V8 patients, K, K) at the final epoch's weights."""
    runs = selection_study.load_phase("confirm")
    names = sorted(n for n, seeds in runs.items() if set(SEEDS) <= set(seeds))
    records = [str(r) for r in VAL_RECORDS]
    conf = np.array([[[runs[n][s]["epochs"][-1]["raw"][r]["confusion"] for r in records] for s in SEEDS]
                     for n in names], dtype=float)
    return names, conf


def measures(conf: np.ndarray, metric: str) -> Measures:
    """The docs/evaluation.md measures of ``metric`` over ``conf`` (models, seeds, patients, K, K)."""
    scores = 100 * np.stack([score_patients(m, metric, SCORED) for m in conf])  # (models, seeds)
    n_seeds = scores.shape[1]
    seed_var = float(np.mean(np.var(scores, axis=1, ddof=1)))
    between_var = max(0.0, float(np.var(scores.mean(axis=1), ddof=1)) - seed_var / n_seeds)
    seed_sd, between_sd = math.sqrt(seed_var), math.sqrt(between_var)
    loo = 100 * np.stack([leave_one_out(m, metric, SCORED) for m in conf])  # (models, seeds, patients)
    influence = float(np.mean(np.max(np.abs(loo - scores[..., None]), axis=-1)))
    means, loo_means = scores.mean(axis=1), loo.mean(axis=1)  # (models,), (models, patients)
    taus = [sps.kendalltau(means, loo_means[:, p]).statistic for p in range(loo.shape[-1])]
    return Measures(seed_sd, between_sd, between_sd / seed_sd if seed_sd > 0 else math.nan, influence,
                    float(np.nanmin(taus)) if np.isfinite(taus).any() else math.nan, float(scores.mean()))


def apply_rule(e1: Mapping[str, Measures], e2: Mapping[str, Measures]) -> tuple[str, list[str]]:
    """The chosen primary score and the rule's steps as sentences (docs/evaluation.md, 'The rule')."""
    pooled1, pooled2 = e1["macro_f1"], e2["macro_f1"]
    steps, remaining = [], []
    for name in FAITHFULNESS:
        limit = INFLUENCE_SHARE * pooled1.influence
        if e1[name].influence > limit:
            steps.append(f"{TITLES[name]}: not eligible, E1 influence {e1[name].influence:.2f} > {limit:.2f}")
            continue
        vetoed = [label for label, mine, pooled in (("E1", e1[name], pooled1), ("E2", e2[name], pooled2))
                  if pooled.discriminability > 0 and not mine.discriminability >= VETO_SHARE * pooled.discriminability]
        if vetoed:
            steps.append(f"{TITLES[name]}: eligible, passed over: D below {VETO_SHARE:g} x pooled on "
                         f"{' and '.join(vetoed)}")
            continue
        steps.append(f"{TITLES[name]}: eligible (E1 influence {e1[name].influence:.2f} <= {limit:.2f}), kept "
                     f"(D {e1[name].discriminability:.2f} on E1, {e2[name].discriminability:.2f} on E2)")
        remaining.append(name)
    if not remaining:
        steps.append("no candidate remains: the pooled macro-F1 stays the primary score")
        return "macro_f1", steps
    best = max(e1[n].discriminability for n in remaining)
    tied = [n for n in remaining if e1[n].discriminability >= (1 - TIE_SHARE) * best]
    chosen = tied[0]  # ``remaining`` keeps the faithfulness order
    steps.append(f"highest E1 D among them: {best:.2f}; within {TIE_SHARE:.0%} of it: "
                 f"{', '.join(TITLES[n] for n in tied)}; first in the faithfulness order: {TITLES[chosen]}")
    return chosen, steps


def markdown(e1: Mapping[str, Measures], e2: Mapping[str, Measures], chosen: str, steps: list[str],
             archs: int) -> str:
    lines = ["# Primary-score study: the measures and the rule applied",
             "", "> Generated by `python tools/score_study.py` from the stored DS1 runs; do not edit. The rule and its "
             "evidence: [../evaluation.md](../evaluation.md).", "",
             f"E1: {len(E1_MODELS)} models x seeds {', '.join(map(str, SEEDS))}, 22 out-of-fold DS1 patients. "
             f"E2: {archs} architectures x seeds {', '.join(map(str, SEEDS))}, the 8 V8 patients at the final "
             "epoch. Scores in points.", "",
             "| candidate | set | mean | seed sd | between-model sd | D | patient influence I | rank stability "
             "(min tau) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in CANDIDATES:
        for label, m in (("E1", e1[name]), ("E2", e2[name])):
            lines.append(f"| {TITLES[name]} | {label} | {m.mean:.1f} | {m.seed_sd:.2f} | {m.between_sd:.2f} | "
                         f"{m.discriminability:.2f} | {m.influence:.2f} | {m.rank_stability:+.2f} |")
    lines += ["", "The rule, step by step:", "", *[f"- {s}" for s in steps], "",
              f"**Chosen primary score: {TITLES[chosen]} (`{chosen}`).**", ""]
    return "\n".join(lines)


RESULTS = Path(__file__).resolve().parents[1] / "results" / "mitbih"
LEAD_ROWS = ("ensemble", "teacher")  # the KD source and one member, each against the CE student


def release_markdown(results: Path = RESULTS) -> str:
    """Every candidate on the committed MIT-BIH records (DS2): each row's mean and seed sd, and the teacher's and the
    ensemble's lead over the CE student with its paired patient-bootstrap CI."""
    runs = runs_frame(load_results(results))
    runs = runs[runs["confusion_by_group"].map(lambda g: g is not None) & (runs["variant"] == "")]
    lines = ["# Release records re-scored with every candidate score (DS2)", "",
             "> Generated by `python tools/score_study.py release` from the committed records; do not edit. Read "
             "after the primary score was chosen on DS1 evidence ([../evaluation.md](../evaluation.md)); nothing "
             "here chose anything.", ""]
    for key, table in runs.groupby(list(TABLE_COLUMNS), sort=True):
        budget = dict(zip(TABLE_COLUMNS, key, strict=True))["budget"]
        patients = sorted({p for g in table["confusion_by_group"] for p in g})
        conf = {label: (list(rows["seed"]), patient_array(list(rows["confusion_by_group"]), patients, len(CLASSES)))
                for label, rows in table.groupby("method_label", sort=True)}
        lines += [f"## budget `{budget}`, {len(patients)} test patients", "",
                  "| row | seeds | " + " | ".join(f"{TITLES[c]}: mean ± seed sd" for c in CANDIDATES) + " |",
                  "| --- | ---: | " + " | ".join("---:" for _ in CANDIDATES) + " |"]
        for label, (seeds, array) in conf.items():
            cells = [f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}"
                     for v in (score_patients(array, c, SCORED) for c in CANDIDATES)]
            lines.append(f"| {label} | {len(seeds)} | " + " | ".join(cells) + " |")
        lines += ["", "Lead over the CE student (points; paired patient bootstrap 95 % CI, common seeds):", ""]
        for lead in LEAD_ROWS:
            if lead not in conf or "student" not in conf:
                continue
            common = sorted(set(conf[lead][0]) & set(conf["student"][0]))
            pick = {name: conf[name][1][[conf[name][0].index(s) for s in common]] for name in (lead, "student")}
            parts = []
            for c in CANDIDATES:
                got = compare_patients(pick[lead], pick["student"], c, SCORED)
                parts.append(f"{TITLES[c]} {100 * got.diff:+.1f} [{100 * got.low:+.1f}, {100 * got.high:+.1f}]")
            lines.append(f"- `{lead}` - `student` ({len(common)} seeds): " + "; ".join(parts))
        lines.append("")
    return "\n".join(lines)


SEED0_STUDENTS = OUT / "seed0-students"  # release 1's seed-0 `small` rows rerun with --save-models


def _se_ppv(metrics: Mapping[str, Any], cls: str) -> str:
    """``Se / +P`` of class ``cls`` (%) from a score's pooled metrics (``benchmark.metrics``)."""
    scores = metrics["per_class"][cls]
    return f"{100 * scores['sensitivity']:.0f} / {100 * scores['ppv']:.0f}"


def external_markdown(folder: Path = SEED0_STUDENTS, committed: Path = RESULTS) -> str:
    """The saved seed-0 students: whether each reproduces its release record on DS2, and its SVDB scores."""
    from benchmark.external import load_external_scores, sidecar_path

    lines = ["# Release 1's seed-0 students on the external test set (svdb)", "",
             "> Generated by `python tools/score_study.py external`; do not edit. The students were saved by rerunning "
             "seed 0 of release 1's `small` rows with `--save-models` (docs/evaluation.md, part C).", "",
             "| row | DS2 macro-F1 | same DS2 predictions as release 1's record | SVDB macro-F1 (95 % CI, patients) | "
             "SVDB S Se / +P | SVDB V Se / +P | SVDB patients |", "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    scores = {(s.key.method_label, s.model_sha256): s for s in load_external_scores(folder)}
    for path in sorted(folder.rglob("seed0.json")):
        record = read_result(path)
        old = committed / path.relative_to(folder / "mitbih")
        same = "yes" if old.is_file() and read_result(old).test_confusion_by_group == \
            record.test_confusion_by_group else "no"
        score = scores.get((record.key.method_label, record.model.get("sha256")))
        if score is None or not sidecar_path(path, "svdb").is_file():
            svdb = ["not evaluated", "–", "–", "–"]
        else:
            patients = sorted(score.confusion_by_group)
            conf = patient_array([score.confusion_by_group], patients, len(CLASSES))
            ci = patient_interval(conf, "macro_f1", SCORED)
            svdb = [f"{100 * score.metrics['macro_f1']:.1f} ({100 * ci.low:.1f}–{100 * ci.high:.1f})",
                    _se_ppv(score.metrics, "S"),
                    _se_ppv(score.metrics, "V"), str(len(score.confusion_by_group))]
        lines.append(f"| {record.key.method_label} | {100 * record.metrics['macro_f1']:.1f} | {same} | "
                     + " | ".join(svdb) + " |")
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args in (["release"], ["external"]):
        text = release_markdown() if args == ["release"] else external_markdown()
        atomic_write_text(OUT / ("release1-scores.md" if args == ["release"] else "external-seed0.md"), text)
        print(text)
        return 0
    e1_conf = e1_confusions()
    archs, e2_conf = e2_confusions()
    e1 = {name: measures(e1_conf, name) for name in CANDIDATES}
    e2 = {name: measures(e2_conf, name) for name in CANDIDATES}
    chosen, steps = apply_rule(e1, e2)
    text = markdown(e1, e2, chosen, steps, len(archs))
    atomic_write_text(OUT / "score-study.md", text)
    payload = {"chosen": chosen, "steps": steps, "e1": {k: asdict(v) for k, v in e1.items()},
               "e2": {k: asdict(v) for k, v in e2.items()}, "e2_architectures": archs}
    atomic_write_text(OUT / "score-study.json", json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
