"""Round 6 of the teacher study (issue 9, part B): the protocol's ensemble teacher trained on all 22 DS1 records.

Why: the protocol's teacher (``teacher_study.ADOPTED``, the separable 100k-parameter network, M = 3 members per seed)
trains on the 14 training records; the 8 validation records (``V8``) are held out for the students' selection signal,
but the teacher keeps its final weights, so it selects nothing on them. Rounds 1-5 changed the teacher's recipe,
network and number of members; every teacher found about half of the S beats of DS2's patients that the CE student
finds, almost all of them in one patient (record 232). What was left untried is more training *patients*: 22 instead
of 14. No DS1 yardstick exists for it (every DS1 record is in its training data), so docs/protocol-v2.md section 5
("Round 6") fixed the rule and what follows from each outcome before any run, and DS2 is read once.

Design:
- ``train``: member ``m`` of seed ``s`` is the protocol's teacher network with the protocol's quick teacher recipe
  (20 epochs, final weights, the teacher study's regularisation and augmentation), seeded ``s + 1000 m`` as the
  store's ensemble members are, trained on every DS1 beat. Its logits of DS2's beats (float16) with their labels and
  records go to ``docs/protocol-v2/runs/teacher-ds1/``.
- ``report``: per seed, the ensemble (log of the members' mean probabilities, as the ``ensemble`` row) scored on DS2
  per patient, against the committed release rows (``results/``: the CE student, the 14-record ensemble and teacher,
  every KD method), then round 6's rule.
- ``calibrate``: scores a stored 14-record teacher of the store on this tool's DS2 inputs and checks that its
  per-patient confusions equal the committed record's, so that this tool and the runner see the same DS2 beats.

Run (from the repository root; 1 thread per process, ~7 min per member on one core):
    python tools/teacher_ds1.py calibrate --data-root ../shared/data
    python tools/teacher_ds1.py train --seed 0 --seed 1 --data-root ../shared/data
    python tools/teacher_ds1.py report
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import selection_study as study
import teacher_cv
import teacher_study

from benchmark.context import member_seed
from benchmark.engine import Engine, TensorSplit
from benchmark.nn.arch import ArchSpec
from benchmark.nn.ensemble import mean_probability_logits
from benchmark.paths import resolve_cache_dir, resolve_data_root
from benchmark.protocol import DEFAULT_BUDGET, make_protocol
from benchmark.results import RunResult, read_result
from benchmark.scores import score_confusions
from benchmark.stats import compare_patients, patient_array
from benchmark.teachers import TeacherStore
from datasets.mitbih import CLASSES, DS1, DS2, SCORED_CLASSES

OUT = study.OUT / "runs" / "teacher-ds1"
REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "results" / "mitbih" / "inter-patient" / DEFAULT_BUDGET["mitbih"] / "quick"
MEMBERS = make_protocol("mitbih", "inter-patient", None, "quick").ensemble_size  # M of the protocol's ensemble
SEEDS = (0, 1, 2, 3, 4)  # part B: "over 5 seeds"
MARGIN = teacher_cv.MARGIN  # 3 points of macro-F1 over the CE student
SCORED = [CLASSES.index(c) for c in SCORED_CLASSES]
PATIENTS = [str(r) for r in DS2]
REFERENCE_ROWS = ("student", "teacher", "ensemble")


def run_path(seed: int, member: int) -> Path:
    return OUT / f"member.seed{seed}.m{member}.npz"


def train(seed: int, member: int, data: dict[str, np.ndarray]) -> Path:
    """Train member ``member`` of seed ``seed`` on all DS1 beats and store its logits of DS2's beats."""
    path = run_path(seed, member)
    if path.exists():
        return path
    chosen = teacher_cv.candidate(f"teacher:{teacher_study.ADOPTED}")
    train_split, test = study.subset(data, DS1), study.subset(data, DS2)
    engine = Engine("cpu")
    split = TensorSplit.from_numpy(train_split.x, train_split.y, engine.device)
    torch_seed = member_seed(seed, member)
    model, wall = chosen.fit(engine, split, train_split.x.shape[1], torch_seed)
    logits = engine.predict(model, torch.as_tensor(test.x)).numpy()
    meta = {"seed": seed, "member": member, "torch_seed": torch_seed, "train_records": DS1, "test_records": DS2,
            "train_beats": len(train_split.y), "arch": chosen.arch.to_dict(), "recipe_name": teacher_study.ADOPTED,
            "recipe": chosen.recipe_record(), "wall_s": wall}
    teacher_cv.save_run(path, logits, test, meta)
    print(f"teacher-ds1 {path.name}: {wall:.0f} s", flush=True)
    return path


# -- report ---------------------------------------------------------------------------------------------------------
def by_patient(logits: np.ndarray, y: np.ndarray, record: np.ndarray) -> np.ndarray:
    """(22, K, K) confusion per DS2 patient (rows true), in ``DS2`` order."""
    return teacher_cv.patient_confusions(logits, y, record, DS2)


def ensemble_confusions() -> tuple[list[int], np.ndarray]:
    """Seeds with all members stored, and their ensembles' DS2 confusions (seeds, 22, K, K): the log of the members'
    mean probabilities, as the ``ensemble`` row scores it."""
    seeds, out = [], []
    for seed in SEEDS:
        paths = [run_path(seed, m) for m in range(MEMBERS)]
        if not all(p.exists() for p in paths):
            continue
        runs = [teacher_cv.load_run(p) for p in paths]
        logits = mean_probability_logits([torch.as_tensor(r["logits"]) for r in runs]).numpy()
        seeds.append(seed)
        out.append(by_patient(logits, runs[0]["y"], runs[0]["record"]))
    return seeds, np.stack(out) if out else np.zeros((0, len(DS2), len(CLASSES), len(CLASSES)))


def release_rows(release: Path = RELEASE) -> dict[str, dict[int, RunResult]]:
    """Row name -> seed -> committed record, for the reference rows and every KD method (no ablations)."""
    rows: dict[str, dict[int, RunResult]] = {}
    for folder in sorted(p for p in release.iterdir() if p.is_dir() and "[" not in p.name):
        records = {(r := read_result(path)).key.seed: r for path in sorted(folder.glob("seed*.json"))}
        rows[folder.name] = {seed: r for seed, r in records.items() if r.status == "ok"}
    return rows


def row_confusions(records: dict[int, RunResult], seeds: list[int]) -> np.ndarray:
    return patient_array([records[s].test_confusion_by_group for s in seeds], PATIENTS, len(CLASSES))


def per_seed_f1(conf: np.ndarray) -> np.ndarray:
    return score_confusions(conf.sum(axis=1), "macro_f1", SCORED)


def class_rates(conf: np.ndarray, cls: str) -> tuple[float, float]:
    """Sensitivity and +P of ``cls`` (%) over the seeds' pooled patients."""
    pooled, k = conf.sum(axis=(0, 1)), CLASSES.index(cls)
    hits = pooled[k, k]
    return 100 * hits / max(pooled[k].sum(), 1), 100 * hits / max(pooled[:, k].sum(), 1)


def rule(seeds: list[int], candidate: np.ndarray, rows: dict[str, dict[int, RunResult]]) -> list[str]:
    """Round 6's rule (docs/protocol-v2.md section 5, written before its runs): part B's teacher condition holds if the
    22-record ensemble's 5-seed mean DS2 macro-F1 is at least ``MARGIN`` above the CE student's (release records,
    the same seeds) and above every KD method's 5-seed mean; the paired patient CI is shown, not required."""
    if seeds != list(SEEDS):
        return [f"Rule: not applicable yet (seeds stored with all {MEMBERS} members: "
                f"{', '.join(map(str, seeds)) or 'none'}; needs {', '.join(map(str, SEEDS))})."]
    mean = float(per_seed_f1(candidate).mean())
    student = rows["student"]
    comp = compare_patients(candidate, row_confusions(student, seeds), "macro_f1", SCORED)
    margin_ok = comp.diff >= MARGIN
    lines = [f"- Over the CE student: {100 * comp.diff:+.1f} points (CI {100 * comp.low:+.1f} to "
             f"{100 * comp.high:+.1f}, p {comp.p:.2f}; needs >= {100 * MARGIN:+.0f}) -> "
             f"**{'met' if margin_ok else 'not met'}**"]
    above_all = True
    for name, records in rows.items():
        if name in REFERENCE_ROWS:
            continue
        other = float(np.mean([records[s].metrics["macro_f1"] for s in sorted(records)]))
        above_all &= mean > other
        lines.append(f"- Over `{name}` ({len(records)} seeds, {100 * other:.1f}): {100 * (mean - other):+.1f} points")
    verdict = margin_ok and above_all
    lines += ["", f"Verdict: part B's teacher condition is **{'met' if verdict else 'not met'}** by the 22-record "
                  f"ensemble ({100 * mean:.1f} mean DS2 macro-F1 over seeds {', '.join(map(str, seeds))})."]
    return lines


def shown(path: Path) -> str:
    """``path`` as a report names it: relative to the repository when inside it."""
    return (path.relative_to(REPO) if path.is_relative_to(REPO) else path).as_posix()


def more_patients(candidate: np.ndarray, others: dict[str, np.ndarray], seeds: list[int],
                  protocol_ensemble: np.ndarray) -> list[str]:
    """What the eight extra training patients changed: the paired difference to the 14-record ensemble (same seeds),
    and per DS2 patient with S beats, each row's S Se and false S alarms per seed (seeds pooled)."""
    comp = compare_patients(candidate, protocol_ensemble, "macro_f1", SCORED)
    k = CLASSES.index("S")
    rows = {"round 6": candidate, **others}
    lines = ["## More patients: the 22-record ensemble against the 14-record one", "",
             f"Paired over DS2's patients, seeds {', '.join(map(str, seeds))}: {100 * comp.diff:+.1f} macro-F1 points "
             f"(CI {100 * comp.low:+.1f} to {100 * comp.high:+.1f}, p {comp.p:.2f}).", "",
             "| patient | S beats | " + " | ".join(f"{name}: S Se · false S per seed" for name in rows) + " |",
             "|---|---:|" + "---:|" * len(rows)]
    for i, patient in enumerate(PATIENTS):
        support = int(candidate[0, i, k].sum())
        if support == 0:
            continue
        cells = []
        for conf in rows.values():
            found, alarms = conf[:, i, k, k].sum(), conf[:, i, :, k].sum() - conf[:, i, k, k].sum()
            cells.append(f"{100 * found / conf[:, i, k].sum():.0f} % · {alarms / len(conf):.0f}")
        lines.append(f"| {patient} | {support} | " + " | ".join(cells) + " |")
    return lines


def report(release: Path = RELEASE) -> str:
    seeds, candidate = ensemble_confusions()
    rows = release_rows(release)
    lines = ["# Round 6: the ensemble teacher trained on all 22 DS1 records, read on DS2", "",
             "Generated by `python tools/teacher_ds1.py report`; do not edit. DS2 (test) scores, %, per seed and "
             "their mean ± sd; S Se / +P over the seeds' pooled patients; Δ: paired difference to the CE student "
             "over DS2's 22 patients, with its patient-bootstrap CI and permutation p-value "
             f"(`benchmark.stats.compare_patients`). Release rows: the committed records in `{shown(release)}`.",
             "", "| row | training records | seeds | macro-F1 per seed | mean ± sd | S Se / +P | record 232 S Se | "
                 "V Se / +P | accuracy | Δ vs CE student |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    table = {"ensemble, 22 DS1 records (round 6)": ("22 (DS1)", seeds, candidate)} if seeds else {}
    for name in (*REFERENCE_ROWS[::-1], *(n for n in rows if n not in REFERENCE_ROWS)):
        if rows.get(name):
            common = [s for s in (seeds or sorted(rows[name])) if s in rows[name]]
            table[name] = ("14 (protocol)", common, row_confusions(rows[name], common))
    student = rows.get("student", {})
    at_232 = PATIENTS.index("232")
    for name, (records, row_seeds, conf) in table.items():
        f1 = 100 * per_seed_f1(conf)
        s_se, s_ppv = class_rates(conf, "S")
        se_232, _ = class_rates(conf[:, [at_232]], "S")
        v_se, v_ppv = class_rates(conf, "V")
        accuracy = 100 * score_confusions(conf.sum(axis=1), "accuracy", SCORED).mean()
        delta = "–"
        if name != "student" and all(s in student for s in row_seeds):
            comp = compare_patients(conf, row_confusions(student, row_seeds), "macro_f1", SCORED)
            delta = f"{100 * comp.diff:+.1f} [{100 * comp.low:+.1f}, {100 * comp.high:+.1f}] p={comp.p:.2f}"
        sd = f"{f1.std(ddof=1):.1f}" if len(f1) > 1 else "–"
        lines.append(f"| {name} | {records} | {', '.join(map(str, row_seeds))} | {' / '.join(f'{v:.1f}' for v in f1)} "
                     f"| {f1.mean():.1f} ± {sd} | {s_se:.1f} / {s_ppv:.1f} | {se_232:.1f} | {v_se:.1f} / {v_ppv:.1f} "
                     f"| {accuracy:.1f} | {delta} |")
    if seeds and rows.get("ensemble"):
        lines += ["", *more_patients(candidate, {n: table[n][2] for n in ("ensemble", "student") if n in table},
                                     seeds, row_confusions(rows["ensemble"], seeds))]
    lines += ["", "## Round 6's rule applied (docs/protocol-v2.md section 5)", "", *rule(seeds, candidate, rows), ""]
    return "\n".join(lines) + "\n"


def calibrate(data: dict[str, np.ndarray], cache_dir: Path, release: Path = RELEASE) -> str:
    """Score the committed seed-0 teacher's stored network on this tool's DS2 beats; its per-patient confusions must
    equal the committed record's (same DS2 beats and scoring as the runner). Raises ``SystemExit`` if not."""
    record = read_result(release / "teacher" / "seed0.json")
    members = record.teacher.get("members", [record.teacher])
    (own,) = [m for m in members if m["seed"] == record.key.seed]  # the teacher row scores the seed's own member
    teacher_id = own["id"]
    test = study.subset(data, DS2)
    teacher = TeacherStore.in_cache(cache_dir).load_stored(record.key.dataset, record.key.split, teacher_id,
                                                           ArchSpec.from_dict(own["arch"]), own["seed"],
                                                           test.x.shape[1], len(CLASSES))
    logits = Engine("cpu").predict(teacher.model, torch.as_tensor(test.x)).numpy()
    mine = by_patient(logits, test.y, test.groups)
    theirs = row_confusions({0: record}, [0])[0]
    if not np.array_equal(mine, theirs):
        raise SystemExit(f"calibration failed: teacher {teacher_id} scores differently on this tool's DS2 beats than "
                         f"in {release / 'teacher' / 'seed0.json'} ({int(np.abs(mine - theirs).sum())} beats differ)")
    return (f"calibration: teacher {teacher_id} (seed 0) gives the committed record's per-patient DS2 confusions "
            f"exactly ({int(mine.sum())} beats)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--seed", type=int, choices=SEEDS, action="append", required=True)
    p.add_argument("--member", type=int, choices=range(MEMBERS), action="append")
    study.add_data_options(p)
    study.add_data_options(sub.add_parser("calibrate"))
    sub.add_parser("report")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "report":
        return study.publish("teacher-ds1.md", report())
    cache_dir = resolve_cache_dir(args.cache_dir)
    data = study.load_records(resolve_data_root(args.data_root), cache_dir)
    if args.command == "calibrate":
        print(calibrate(data, cache_dir))
        return 0
    for seed in args.seed:
        for member in args.member or range(MEMBERS):
            train(seed, member, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
