"""Audit quality: corrupt a known, seeded share of a labelled folder's listings and measure the flags on them."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sveta.engines.audit import AUDITED, Candidate, Finding, Rule, audit_examples, candidates, canonical
from sveta.errors import InputError
from sveta.eval.attributes import folder_model
from sveta.learn.features import Features, features_of
from sveta.learn.labels import Example, examples_from_folder
from sveta.progress import StageProgress
from sveta.settings import Settings

CORRUPTED = ("colour", "category", "gender")  # a wrong colour, a wrong type, a wrong gender: equal shares
SHARE = 0.05
SEED = 0


def evaluate_audit(
    train: Path, test: Path, settings: Settings, on_progress: StageProgress | None = None
) -> dict[str, Any]:
    """Train on ``train``, corrupt 5% of ``test``'s listings, audit ``test``: precision and recall of the flags."""
    started = time.perf_counter()
    _, model = folder_model(train, settings, on_progress)  # one training shared with eval attributes / retrieval
    examples, features = _aligned(test, settings, on_progress)
    corrupted, truth = corrupt(examples)
    rule = Rule(min_confidence=settings.audit_min_confidence)
    findings = audit_examples(model, corrupted, features, rule=rule)
    result = score(findings, truth)
    result.update(
        n_train=model.card["n_train"],
        n_items=len(examples),
        rule=dataclasses.asdict(rule),
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


def cross_validate(
    train: Path, settings: Settings, rules: Sequence[Rule], folds: int = 3, on_progress: StageProgress | None = None
) -> list[dict[str, Any]]:
    """How Rule's defaults were chosen, on ``train`` alone: k folds, each fitted on the others and corrupted as
    the eval does; per rule, each fold's precision and recall (pick the best recall with precision >= 0.9)."""
    from sveta.learn.train import fit

    examples, sharp = _aligned(train, settings, on_progress)
    thumb_keys, thumb = features_of(examples, settings, True, on_progress)
    thumb_rows = _rows(examples, thumb_keys)
    fold = np.array([int(hashlib.sha1(f"audit-cv:{e.key}".encode()).hexdigest(), 16) % folds for e in examples])
    per_fold: list[tuple[list[Candidate], dict[int, str]]] = []
    for k in range(folds):
        fit_rows, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model = fit([examples[i] for i in fit_rows], [sharp.take(fit_rows), thumb.take(thumb_rows[fit_rows])], settings)
        corrupted, truth = corrupt([examples[i] for i in held], seed=k + 1)
        per_fold.append((candidates(model, corrupted, sharp.take(held)), truth))
    out = []
    for rule in rules:
        scores = [score([c.finding for c in found if rule.accepts(c)], truth) for found, truth in per_fold]
        out.append({"rule": dataclasses.asdict(rule), "precision": [r["precision"] for r in scores],
                    "recall": [r["recall"] for r in scores]})  # fmt: skip
    return out


def _aligned(folder: Path, settings: Settings, on_progress: StageProgress | None) -> tuple[list[Example], Features]:
    """A folder's examples whose photo could be read, row-aligned with their (sharp, cached) features."""
    examples = examples_from_folder(folder)
    if not examples:
        raise InputError(f"{folder} has no labelled photos", "give a folder with styles.csv and images/")
    keys, features = features_of(examples, settings, False, on_progress)
    by_key = {e.key: e for e in examples}
    return [by_key[k] for k in keys], features


def _rows(examples: Sequence[Example], keys: Sequence[int]) -> np.ndarray:
    index = {k: i for i, k in enumerate(keys)}
    return np.array([index[e.key] for e in examples], np.int64)
