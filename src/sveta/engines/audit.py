"""The listing audit: what a seller or a title states against what the trained photo model is sure of."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.engines.audit_rules import DEFAULT_MIN_CONFIDENCE, Candidate, Rule, rules_with, type_witnesses
from sveta.learn.store import DEFAULT_NAME
from sveta.vocab.reading import canonical

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.learn.features import Features
    from sveta.learn.heads import AttributeModel
    from sveta.learn.labels import Example
    from sveta.progress import StageProgress
    from sveta.settings import Settings

AUDITED = ("category", "colour", "gender", "occasion")


@dataclass(slots=True)
class Finding:
    """One listing whose stated value the photo contradicts, with what both sides rest on."""

    product_id: int
    title: str
    photo: str
    attribute: str
    stated: str  # as the seller / title gives it
    origin: str  # seller | text
    evidence: str  # the feed column or the title words that gave the stated value
    stated_probability: float  # the photo model's calibrated belief in the stated value
    photo_value: str  # the photo model's answer (canonical name)
    confidence: float  # its calibrated probability
    title_agrees_with: str | None = None  # "photo" when the listing's title names the photo's value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditReport:
    n_products: int
    findings: list[Finding]
    model: str
    seconds: float = 0.0
    checked: dict[str, int] = field(default_factory=dict)  # attribute -> stated values the model could judge

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        findings = self.findings if limit is None else self.findings[:limit]
        return {
            "n_products": self.n_products,
            "n_findings": len(self.findings),
            "model": self.model,
            "checked": self.checked,
            "seconds": self.seconds,
            "findings": [f.as_dict() for f in findings],
        }


def audit_catalog(catalog: CatalogStore, settings: Settings, name: str = DEFAULT_NAME) -> list[Finding]:
    """Every product's stated attributes against its photo, most certain contradiction first."""
    return run_audit(catalog, settings, name).findings


def run_audit(
    catalog: CatalogStore, settings: Settings, name: str = DEFAULT_NAME, on_progress: StageProgress | None = None
) -> AuditReport:
    """``audit_catalog`` with its counts: products audited, stated values judged, the model used."""
    from sveta.learn.features import extract
    from sveta.learn.labels import examples_from_catalog
    from sveta.learn.store import load_model

    started = time.perf_counter()
    model = load_model(settings, name)
    examples = examples_from_catalog(catalog)
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress("features", done[0], len(examples))

    items = [(e.key, e.path, e.sha256) for e in examples]
    ids, features = extract(items, settings, on_progress=advance, backbone=model.backbone)
    by_key = {e.key: e for e in examples}
    audited = [by_key[k] for k in ids]  # photos that cannot be read are left out by extract
    checked: dict[str, int] = {}
    findings = audit_examples(model, audited, features, min_confidence=settings.audit_min_confidence, checked=checked)
    version = f"tuned:{model.card.get('name', name)}@{model.card.get('model_id', '')}"
    return AuditReport(len(audited), findings, version, round(time.perf_counter() - started, 1), checked)


def audit_examples(
    model: AttributeModel,
    examples: Sequence[Example],
    features: Features,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    rule: Rule | Mapping[str, Rule] | None = None,
    checked: dict[str, int] | None = None,
) -> list[Finding]:
    """Findings for ``examples`` (row-aligned with ``features``) under ``rule``, most certain first.

    ``rule`` is one Rule for every attribute or one per attribute; by default the calibrated ``RULES`` with the
    photo-alone threshold ``min_confidence``.
    """
    if rule is None:
        rules: Mapping[str, Rule] = rules_with(min_confidence)
    else:
        rules = dict.fromkeys(AUDITED, rule) if isinstance(rule, Rule) else rule
    found = [c.finding for c in candidates(model, examples, features, checked) if _accepts(rules, c)]
    return sorted(found, key=lambda f: (-f.confidence, f.stated_probability, f.product_id, f.attribute))


def _accepts(rules: Mapping[str, Rule], c: Candidate) -> bool:
    rule = rules.get(c.finding.attribute)
    return rule is not None and rule.accepts(c)


def candidates(
    model: AttributeModel, examples: Sequence[Example], features: Features, checked: dict[str, int] | None = None
) -> list[Candidate]:
    """Every stated value the model can judge that is not the photo's answer, with its witnesses."""
    titles = [_title_values(e) for e in examples]
    probabilities = model.probabilities(features)
    types = _types(model, examples, probabilities)
    out: list[Candidate] = []
    for attribute, p in probabilities.items():
        if attribute in AUDITED:
            names, merged = _merged(model.classes[attribute], attribute, p)
            out += _judged(attribute, names, merged, examples, titles, types, checked)
    return out


def _judged(
    attribute: str,
    names: list[str],
    merged: np.ndarray,
    examples: Sequence[Example],
    titles: list[dict[str, set[str]]],
    types: list[str],
    checked: dict[str, int] | None,
) -> list[Candidate]:
    """``candidates`` for one attribute: ``merged`` holds its probabilities per canonical value in ``names``."""
    index = {n: i for i, n in enumerate(names)}
    stated = [canonical(attribute, e.labels[attribute]) if attribute in e.labels else None for e in examples]
    known = [s if s in index else None for s in stated]  # nothing stated, or a value the model never learned
    best = [names[int(i)] for i in merged.argmax(axis=1)]
    conventions = _conventions(attribute, stated, titles)
    witnesses = type_witnesses(attribute, stated, best, types)  # the catalog's filing, learned value or not
    if checked is not None and any(known):
        checked[attribute] = checked.get(attribute, 0) + sum(s is not None for s in known)
    out: list[Candidate] = []
    for row, example in enumerate(examples):
        value = known[row]
        if value is None or best[row] == value:
            continue
        said = titles[row].get(attribute, set()) if example.evidence.get(attribute, "").startswith("seller") else set()
        agrees = "photo" if best[row] in said else "stated" if value in said else None
        pair = conventions.get((best[row], value), (1, 1))
        p_stated = float(merged[row, index[value]])
        finding = _finding(example, attribute, p_stated, best[row], merged[row], agrees)
        rate = (pair[0] - 1) / pair[1] if agrees == "photo" else 0.0  # the others: this listing left out
        out.append(Candidate(finding, finding.confidence, p_stated, agrees, rate, *witnesses[row]))
    return out


def _types(model: AttributeModel, examples: Sequence[Example], probabilities: dict[str, np.ndarray]) -> list[str]:
    """Each listing's type: its stated category, else the photo's."""
    if "category" not in probabilities:
        return [canonical("category", e.labels.get("category", "")) for e in examples]
    names, merged = _merged(model.classes["category"], "category", probabilities["category"])
    photo = merged.argmax(axis=1)
    return [
        canonical("category", e.labels["category"]) if "category" in e.labels else names[int(photo[row])]
        for row, e in enumerate(examples)
    ]


def _title_values(example: Example) -> dict[str, set[str]]:
    """What the listing's title names, per attribute, in canonical values."""
    from sveta.ingest.text_attributes import extract_text_attributes

    values: dict[str, set[str]] = {}
    for record in extract_text_attributes(example.title):
        values.setdefault(record.name, set()).add(record.value)
    return values


def _conventions(
    attribute: str, stated: list[str | None], titles: list[dict[str, set[str]]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(title value, stated value) -> (listings with both, listings whose title names that value)."""
    both: Counter[tuple[str, str]] = Counter()
    named: Counter[str] = Counter()
    for value, title in zip(stated, titles, strict=True):
        for said in title.get(attribute, ()) if value else ():
            named[said] += 1
            both[(said, value or "")] += 1
    return {pair: (n, named[pair[0]]) for pair, n in both.items()}


def _merged(classes: list[str], attribute: str, p: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Probabilities per canonical value: classes that normalise alike (a seller's and a title's name) add up."""
    names: list[str] = []
    for name in classes:
        if canonical(attribute, name) not in names:
            names.append(canonical(attribute, name))
    onehot = np.zeros((len(classes), len(names)), np.float32)
    for i, name in enumerate(classes):
        onehot[i, names.index(canonical(attribute, name))] = 1.0
    return names, p @ onehot


def _finding(
    example: Example, attribute: str, p_stated: float, value: str, row: np.ndarray, agrees: str | None
) -> Finding:
    origin, _, evidence = example.evidence.get(attribute, "seller:").partition(":")
    return Finding(
        product_id=example.key,
        title=example.title,
        photo=str(example.path),
        attribute=attribute,
        stated=example.labels[attribute],
        origin=origin,
        evidence=evidence,
        stated_probability=round(p_stated, 4),
        photo_value=value,
        confidence=round(float(row.max()), 4),
        title_agrees_with=agrees,
    )
