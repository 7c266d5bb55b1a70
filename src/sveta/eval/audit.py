"""Audit quality: corrupt a known, seeded share of a labelled folder's listings and measure the flags on them."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.engines.audit import AUDITED, Finding, audit_examples, candidates, canonical
from sveta.engines.audit_rules import RULES, Candidate, Rule, rules_with
from sveta.errors import InputError
from sveta.eval.attributes import folder_model
from sveta.learn.features import Backbone, Features, features_of
from sveta.learn.labels import Example, examples_from_folder
from sveta.progress import StageProgress
from sveta.settings import Settings

if TYPE_CHECKING:
    from sveta.learn.finetune import FineTune

CORRUPTED = ("colour", "category", "gender")  # a wrong colour, a wrong type, a wrong gender: equal shares
SHARE = 0.05
SEED = 0


def evaluate_audit(
    train: Path,
    test: Path,
    settings: Settings,
    on_progress: StageProgress | None = None,
    finetune: FineTune | None = None,
) -> dict[str, Any]:
    """Train on ``train``, corrupt 5% of ``test``'s listings, audit ``test``: precision and recall of the flags."""
    started = time.perf_counter()
    # one training shared with eval attributes / retrieval
    _, model = folder_model(train, settings, on_progress, finetune=finetune)
    examples, features = _aligned(test, settings, on_progress, model.backbone)
    corrupted, truth = corrupt(examples)
    rules = rules_with(settings.audit_min_confidence)
    findings = audit_examples(model, corrupted, features, rule=rules)
    result = score(findings, truth)
    result.update(
        n_train=model.card["n_train"],
        n_items=len(examples),
        rules={a: dataclasses.asdict(r) for a, r in rules.items()},
        seconds=round(time.perf_counter() - started, 1),
    )
    return result


def corrupt(
    examples: Sequence[Example], share: float = SHARE, seed: int = SEED
) -> tuple[list[Example], dict[int, str]]:
    """Copies of ``examples`` where a seeded ``share`` of them has one wrong value, and key -> corrupted attribute.

    Each corrupted attribute gets an equal share of the items; the wrong value is drawn from the folder's other
    values of that attribute weighted by their frequency (a realistic slip), never one that normalises alike.
    """
    rng = np.random.default_rng(seed)
    out = [dataclasses.replace(e, labels=dict(e.labels), evidence=dict(e.evidence)) for e in examples]
    n = round(len(out) * share)
    quotas = [n // len(CORRUPTED) + (i < n % len(CORRUPTED)) for i in range(len(CORRUPTED))]
    order = [int(i) for i in rng.permutation(len(out))]
    truth: dict[int, str] = {}
    for attribute, quota in zip(CORRUPTED, quotas, strict=True):
        counts = Counter(e.labels[attribute] for e in examples if attribute in e.labels)
        for i in order:
            if quota == 0:
                break
            example = out[i]
            if example.key in truth or attribute not in example.labels:
                continue
            own = canonical(attribute, example.labels[attribute])
            others = [(v, c) for v, c in counts.items() if canonical(attribute, v) != own]
            if not others:
                continue
            weights = np.array([c for _, c in others], float)
            example.labels[attribute] = others[int(rng.choice(len(others), p=weights / weights.sum()))][0]
            truth[example.key] = attribute
            quota -= 1
    return out, truth


def score(findings: Sequence[Finding], truth: dict[int, str]) -> dict[str, Any]:
    """Precision over every flag (a flag on an untouched listing counts against it), recall over the corruptions."""
    hits = [f for f in findings if truth.get(f.product_id) == f.attribute]
    by_attribute = {
        a: {
            "corrupted": sum(v == a for v in truth.values()),
            "flags": sum(f.attribute == a for f in findings),
            "true_flags": sum(f.attribute == a for f in hits),
        }
        for a in AUDITED
    }
    return {
        "precision": round(len(hits) / len(findings), 4) if findings else 0.0,
        "recall": round(len(hits) / len(truth), 4) if truth else 0.0,
        "n_corrupted": len(truth),
        "n_flagged": len(findings),
        "n_flagged_items": len({f.product_id for f in findings}),
        "by_attribute": by_attribute,
    }


TARGET_PRECISION = 0.9
MARGIN = 0.04  # held-out precision must clear the target by this much: another catalog's errors are not val's
SEEDS = 6
# Coarse on purpose (a fine grid fits the few false flags of one split), each threshold's strictest value first.
GRID: dict[str, tuple[float, ...]] = {
    "max_stated": (0.0001, 0.001, 0.01),
    "corroborated_min_confidence": (0.9, 0.7, 0.5),
    "corroborated_max_stated": (0.005, 0.02, 0.1),
    "max_convention": (0.02, 0.1),
    "min_agreement": (0.9, 0.8, 0.7, 0.0),
}


@dataclasses.dataclass
class Condition:
    """The candidates of one held-out folder under one corruption seed, as columns, with the truth."""

    name: str
    titled: bool  # the listings' titles as given (else removed: a catalog whose titles say nothing)
    attribute: np.ndarray
    agrees: np.ndarray  # 0 the title names neither, 1 the photo's value, 2 the stated value
    columns: dict[str, np.ndarray]  # confidence, stated_probability, convention_rate, type_agreement, type_unisex
    true: np.ndarray  # the candidate is a corrupted value

    @classmethod
    def of(cls, name: str, titled: bool, found: Sequence[Candidate], truth: dict[int, str]) -> Condition:
        fields = ("confidence", "stated_probability", "convention_rate", "type_agreement", "type_unisex")
        code = {None: 0, "photo": 1, "stated": 2}
        return cls(
            name,
            titled,
            np.array([c.finding.attribute for c in found], dtype=object),
            np.array([code[c.title_agrees_with] for c in found], np.int8),
            {f: np.array([getattr(c, f) for c in found], np.float64) for f in fields},
            np.array([truth.get(c.finding.product_id) == c.finding.attribute for c in found], bool),
        )

    def accepted(self, attribute: str, rule: Rule) -> np.ndarray:
        """``rule.accepts`` over every candidate of ``attribute``, vectorised (a test keeps the two equal)."""
        c = self.columns
        visible = (c["type_agreement"] >= rule.min_agreement) & (c["type_unisex"] <= rule.max_unisex)
        backed = (
            (c["confidence"] >= rule.corroborated_min_confidence)
            & (c["stated_probability"] <= rule.corroborated_max_stated)
            & (c["convention_rate"] <= rule.max_convention)
        )
        alone = (c["confidence"] >= rule.min_confidence) & (c["stated_probability"] <= rule.max_stated)
        return (self.attribute == attribute) & visible & np.where(self.agrees == 1, backed, (self.agrees == 0) & alone)


def held_out_conditions(
    train: Path,
    folders: Sequence[Path],
    settings: Settings,
    seeds: int = SEEDS,
    on_progress: StageProgress | None = None,
) -> list[Condition]:
    """The model trained on ``train``; each held-out folder corrupted ``seeds`` ways, its titles kept and removed."""
    _, model = folder_model(train, settings, on_progress)
    out = []
    for folder in folders:
        examples, features = _aligned(folder, settings, on_progress)
        for titled, seed in itertools.product((True, False), range(seeds)):
            corrupted, truth = corrupt(
                examples if titled else [dataclasses.replace(e, title="") for e in examples], seed=seed
            )
            found = candidates(model, corrupted, features)
            out.append(Condition.of(f"{Path(folder).name}{'' if titled else ' (no titles)'}", titled, found, truth))
    return out


def calibrate(
    conditions: Sequence[Condition], target: float = TARGET_PRECISION, margin: float = MARGIN
) -> dict[str, Any]:
    """The rules (one per corrupted attribute, from the grid) with the most true flags where titles are kept, whose
    precision, all attributes together, is at least ``target + margin`` in every condition (seeds pooled).

    Ties go to more true flags without titles, then fewer false flags, then the stricter rules (the grid lists
    each threshold's strictest value first).
    """
    names = sorted({c.name for c in conditions})
    titled = np.array([any(c.titled for c in conditions if c.name == n) for n in names])
    fronts = [_front(conditions, a, names) for a in CORRUPTED]
    best: tuple[tuple[int, int, int], tuple[Option, ...]] | None = None
    for chosen in itertools.product(*fronts):
        tp, fp = np.sum([o.tp for o in chosen], axis=0), np.sum([o.fp for o in chosen], axis=0)
        if np.all(tp >= (target + margin) * (tp + fp)):  # a condition without flags has nothing wrong
            key = (int(tp[titled].sum()), int(tp.sum()), -int(fp.sum()))
            if best is None or key > best[0]:
                best = (key, chosen)
    if best is None:
        raise InputError(f"no rule in the grid reaches precision {target + margin} on every held-out condition")
    tp, fp = np.sum([o.tp for o in best[1]], axis=0), np.sum([o.fp for o in best[1]], axis=0)
    runs = Counter(c.name for c in conditions)
    return {
        "rules": {a: o.rule for a, o in zip(CORRUPTED, best[1], strict=True)},
        "precision": {n: round(float(t / max(t + f, 1)), 4) for n, t, f in zip(names, tp, fp, strict=True)},
        "true_flags_per_run": {n: round(float(t) / runs[n], 2) for n, t in zip(names, tp, strict=True)},
    }


@dataclasses.dataclass(frozen=True)
class Option:
    """One grid rule for one attribute: its true and false flags per condition (seeds pooled)."""

    rule: Rule
    tp: np.ndarray
    fp: np.ndarray


def _front(conditions: Sequence[Condition], attribute: str, names: list[str]) -> list[Option]:
    """The attribute's grid rules that no other rule beats (more true flags, no more false ones, everywhere)."""
    options = []
    for rule in _grid(attribute):
        tp, fp = np.zeros(len(names), np.int64), np.zeros(len(names), np.int64)
        for c in conditions:
            mask = c.accepted(attribute, rule)
            tp[names.index(c.name)] += int((mask & c.true).sum())
            fp[names.index(c.name)] += int((mask & ~c.true).sum())
        options.append(Option(rule, tp, fp))
    return [o for i, o in enumerate(options) if not any(_beats(p, o, j < i) for j, p in enumerate(options) if j != i)]


def _beats(p: Option, o: Option, earlier: bool) -> bool:
    """``p`` is at least as good as ``o`` everywhere, and better somewhere (or the same and stricter)."""
    if np.any(p.tp < o.tp) or np.any(p.fp > o.fp):
        return False
    return earlier or bool(np.any(p.tp > o.tp) or np.any(p.fp < o.fp))


def _grid(attribute: str) -> Iterator[Rule]:
    """Every rule of the grid for ``attribute``, strictest first; the rest of ``RULES[attribute]`` is kept."""
    for values in itertools.product(*GRID.values()):
        yield dataclasses.replace(RULES[attribute], **dict(zip(GRID, values, strict=True)))


def _aligned(
    folder: Path, settings: Settings, on_progress: StageProgress | None, backbone: Backbone | None = None
) -> tuple[list[Example], Features]:
    """A folder's examples whose photo could be read, row-aligned with their (sharp, cached) features."""
    examples = examples_from_folder(folder)
    if not examples:
        raise InputError(f"{folder} has no labelled photos", "give a folder with styles.csv and images/")
    keys, features = features_of(examples, settings, False, on_progress, backbone)
    by_key = {e.key: e for e in examples}
    return [by_key[k] for k in keys], features
