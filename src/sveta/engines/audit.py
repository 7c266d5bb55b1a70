"""The listing audit: what a seller or a title states against what the trained photo model is sure of."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

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
DEFAULT_MIN_CONFIDENCE = 0.9  # Settings.audit_min_confidence's default, for callers without settings


@dataclass(frozen=True)
class Rule:
    """When a disagreement becomes a finding. Designed for precision: a human reviews every flag.

    The stated value must be implausible for the photo (its own calibrated probability tiny, not merely second
    best: near-synonyms the catalog keeps apart, Navy Blue / Blue or Tshirts / Tops, keep a few percent). The
    listing's own title is a second, independent witness: when it names the photo's value, the seller's value
    is contradicted twice and a less certain photo suffices; when it names the stated value, the listing is
    consistent and the photo model is the likelier one to be wrong, so nothing is flagged. A contradiction the
    catalog makes often (titles saying "slippers" of items filed under Sandals) is a convention, not a slip:
    it is skipped when more than ``max_convention`` of the other listings whose title names the photo's value
    state the same value. The numbers were chosen by cross-validation on the training half of myntra-small only
    (``sveta.eval.audit.cross_validate``, 3 folds, the first two run): the best recall with precision >= 0.9 in
    every fold. Flags from the photo alone cost precision there and found almost nothing (a slipped seller value
    rarely also changes the title), hence its very strict ``max_stated``; they remain for listings whose title
    says nothing and for values read from the title itself.
    """

    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # the photo's answer, when nothing else backs it
    max_stated: float = 0.0001  # the stated value's probability, when nothing else backs the photo
    corroborated_min_confidence: float = 0.7  # the photo's answer, when the title names it too
    corroborated_max_stated: float = 0.02
    max_convention: float = 0.02

    def accepts(self, c: Candidate) -> bool:
        if c.title_agrees_with == "stated":
            return False
        if c.title_agrees_with == "photo":
            return (
                c.confidence >= self.corroborated_min_confidence
                and c.stated_probability <= self.corroborated_max_stated
                and c.convention_rate <= self.max_convention
            )
        return c.confidence >= self.min_confidence and c.stated_probability <= self.max_stated


@dataclass(slots=True)
class Candidate:
    """A stated value that is not the photo's answer, with what a rule weighs."""

    finding: Finding
    confidence: float
    stated_probability: float
    title_agrees_with: str | None  # "photo", "stated" or None (the title names neither, or is the statement)
    convention_rate: float


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

    ids, features = extract([(e.key, e.path, e.sha256) for e in examples], settings, on_progress=advance)
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
    rule: Rule | None = None,
    checked: dict[str, int] | None = None,
) -> list[Finding]:
    """Findings for ``examples`` (row-aligned with ``features``) under ``rule`` (default: ``Rule`` with the
    photo-alone threshold ``min_confidence``), most certain first."""
    rule = rule or Rule(min_confidence=min_confidence)
    found = [c.finding for c in candidates(model, examples, features, checked) if rule.accepts(c)]
    return sorted(found, key=lambda f: (-f.confidence, f.stated_probability, f.product_id, f.attribute))


def candidates(
    model: AttributeModel, examples: Sequence[Example], features: Features, checked: dict[str, int] | None = None
) -> list[Candidate]:
    """Every stated value the model can judge that is not the photo's answer, with its witnesses."""
    titles = [_title_values(e) for e in examples]
    out: list[Candidate] = []
    for attribute, p in model.probabilities(features).items():
        if attribute not in AUDITED:
            continue
        names, merged = _merged(model.classes[attribute], attribute, p)
        index = {n: i for i, n in enumerate(names)}
        stated = [canonical(attribute, e.labels[attribute]) if attribute in e.labels else None for e in examples]
        conventions = _conventions(attribute, stated, titles)
        for row, example in enumerate(examples):
            column = index.get(stated[row] or "")
            if column is None:  # nothing stated, or a value the model never learned
                continue
            if checked is not None:
                checked[attribute] = checked.get(attribute, 0) + 1
            best = int(merged[row].argmax())
            if best == column:
                continue
            said = (
                titles[row].get(attribute, set()) if example.evidence.get(attribute, "").startswith("seller") else set()
            )
            agrees = "photo" if names[best] in said else "stated" if stated[row] in said else None
            pair = conventions.get((names[best], stated[row] or ""), (1, 1))
            finding = _finding(example, attribute, float(merged[row, column]), names[best], merged[row], agrees)
            rate = (pair[0] - 1) / pair[1] if agrees == "photo" else 0.0  # the others: this listing left out
            out.append(Candidate(finding, finding.confidence, float(merged[row, column]), agrees, rate))
    return out


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
