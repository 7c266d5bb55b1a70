"""Garment regions of a photo: a product shot's one item, or each person's body parts from offline pose + mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from sveta._optional import require
from sveta.errors import ConfigError
from sveta.images.colour import rgb_to_lab

Box = tuple[int, int, int, int]
Span = tuple[float, float]  # x0, x1: the columns a region may take

MAX_PEOPLE = 3
VISIBLE = 0.5  # landmark visibility above which a body point counts as seen
MASK_THRESHOLD = 0.5  # person-mask probability above which a pixel is the person
PLAIN_DELTA = 10.0  # Lab distance: a product shot's border pixels stay this close to their median
PLAIN_SHARE = 0.85  # ... for at least this share of the border
MIN_PRODUCT = 0.02  # the item must cover this share of the photo
# how far (x hip width, at least x torso) a bottom reaches beyond its leg points: a thigh's outer side, a wide leg
LEG_REACH, LEG_REACH_TORSO = 0.6, 0.3
KNEE_RADIUS = 0.08  # x torso: the patch around a knee that shows whether the garment covers it
# MediaPipe's 33 pose points (BlazePose): the ones the regions are cut by
SHOULDERS, HIPS, KNEES, ANKLES, FEET = (11, 12), (23, 24), (25, 26), (27, 28), (29, 30, 31, 32)
TORSO_POINTS = (*SHOULDERS, *HIPS)


@dataclass
class Region:
    """A part of the photo to find one garment in: ``box`` in pixels, ``mask`` over the box, and its colour core."""

    name: str  # upper / lower / full / feet / product
    box: Box
    mask: np.ndarray  # bool, the box's shape: the person (or product) pixels
    core: Box  # the inner part where the garment, not arms or hair, is most likely
    person: int | None = None  # which person (0 = the most prominent); None for a product
    # the seen knees (x, y, radius in pixels) of a lower region: covered or bare, they tell trousers from shorts
    knees: tuple[tuple[int, int, int], ...] = ()


@dataclass
class Person:
    landmarks: np.ndarray  # 33 x 3: x, y in pixels, visibility
    mask: np.ndarray  # bool, the photo's shape

    def seen(self, points: tuple[int, ...]) -> bool:
        return bool((self.landmarks[list(points), 2] >= VISIBLE).all())

    def y(self, points: tuple[int, ...]) -> float:
        return float(self.landmarks[list(points), 1].mean())

    def xs(self, points: tuple[int, ...]) -> np.ndarray:
        return self.landmarks[list(points), 0]


MEDIAPIPE_INSTALL = "pip install --no-deps mediapipe==0.10.21"


class PoseFinder:
    """MediaPipe 0.10.21's legacy Pose solution (full model, ships in the wheel, runs offline), loaded once.

    It finds one person per call. For several people, the person found is painted out and the photo searched again,
    up to ``MAX_PEOPLE``; the Tasks API's multi-person PoseLandmarker needs a .task model the wheel does not ship.
    """

    def __init__(self) -> None:
        try:
            mp = require("mediapipe", "people")
        except ConfigError as exc:  # its protobuf<5 pin would break onnx: it must go in without dependencies
            raise ConfigError(exc.message, f"run: pip install 'sveta[people]' && {MEDIAPIPE_INSTALL}") from exc
        self._pose = _pose_class(mp.solutions.pose.Pose)(
            static_image_mode=True, model_complexity=1, enable_segmentation=True, min_detection_confidence=0.5
        )

    def find(self, image: Image.Image, max_people: int = MAX_PEOPLE) -> list[Person]:
        pixels = np.array(image.convert("RGB"))
        people: list[Person] = []
        taken = np.zeros(pixels.shape[:2], bool)
        for _ in range(max_people):
            person = self._one(pixels)
            if person is None or not person.seen(SHOULDERS) or _inside(person, taken):
                break
            people.append(person)
            taken |= person.mask
            # paint the person out with the photo's median colour, so the next call finds someone else
            pixels[_dilate(person.mask, 15)] = np.median(pixels.reshape(-1, 3), axis=0).astype(np.uint8)
        return people

    def _one(self, pixels: np.ndarray) -> Person | None:
        result: Any = self._pose.process(pixels)
        if result.pose_landmarks is None:
            return None
        height, width = pixels.shape[:2]
        points = np.array([(p.x * width, p.y * height, p.visibility) for p in result.pose_landmarks.landmark])
        # a landmark the model places outside the photo is a guess, not a seen body part
        outside = (points[:, 0] < 0) | (points[:, 0] >= width) | (points[:, 1] < 0) | (points[:, 1] >= height)
        points[outside, 2] = 0.0
        mask = result.segmentation_mask
        mask = mask > MASK_THRESHOLD if mask is not None else np.ones((height, width), bool)
        return Person(points.astype(np.float32), mask)


def person_regions(person: Person, size: tuple[int, int], index: int = 0) -> list[Region]:
    """Upper (shoulders to hips), lower (waist to ankles or the photo's edge), full, feet: those the photo shows."""
    height = size[1]
    lm = person.landmarks
    top, hips = person.y(SHOULDERS), person.y(HIPS)
    torso = max(hips - top, 0.15 * height) if person.seen(HIPS) else 0.5 * height
    hips = hips if person.seen(HIPS) else min(top + torso, height)
    shoulder_x = person.xs(SHOULDERS)
    regions: list[Region] = []

    def add(
        name: str, y0: float, y1: float, core_x: np.ndarray, core_y: tuple[float, float], span: Span | None = None
    ) -> Region | None:
        y0, y1 = max(0.0, y0), min(float(height), y1)
        if y1 - y0 < 0.25 * torso:  # a sliver at the photo's edge is not a garment one can search for
            return None
        box = _mask_box(person.mask, y0, y1, span)
        if box is None:
            return None
        pad = 0.15 * (core_x.max() - core_x.min())
        core = _clip((core_x.min() - pad, core_y[0], core_x.max() + pad, core_y[1]), box)
        x0, b0, x1, b1 = box
        regions.append(Region(name, box, person.mask[b0:b1, x0:x1], core, index))
        return regions[-1]

    narrow = shoulder_x.min() + 0.15 * np.ptp(shoulder_x), shoulder_x.max() - 0.15 * np.ptp(shoulder_x)
    add("upper", top - 0.15 * torso, hips + 0.05 * torso, np.array(narrow), (top + 0.2 * torso, hips))
    waist = hips - 0.25 * torso  # the waistband sits above the hip joints
    legs = [lm[i, 1] for i in (*KNEES, *ANKLES) if lm[i, 2] >= VISIBLE]
    bottom = max(max(legs), hips) + 0.1 * torso if legs else height  # a seated person's knees may be above hips
    if person.seen(HIPS) and hips < height:
        lower = add("lower", waist, bottom, person.xs(HIPS), (hips - 0.1 * torso, bottom), _leg_span(person, torso))
        if lower is not None:
            radius = int(KNEE_RADIUS * torso)
            lower.knees = tuple((int(lm[i, 0]), int(lm[i, 1]), radius) for i in KNEES if lm[i, 2] >= VISIBLE)
        if legs:
            add("full", top - 0.15 * torso, bottom, np.array(narrow), (top + 0.2 * torso, bottom))
    feet = [i for i in FEET if lm[i, 2] >= VISIBLE]
    if feet:
        fy = lm[feet, 1]
        add("feet", fy.min() - 0.25 * torso, fy.max() + 0.12 * torso, lm[feet, 0], (fy.min() - 0.2 * torso, height))
    return regions


def _leg_span(person: Person, torso: float) -> Span:
    """The columns a bottom can reach: the hull of the seen hips, knees and ankles, widened by a thigh's reach.

    The person mask alone spans whatever touches the legs' rows: hands by the hips, arms folded on a seated
    person's lap, the chair. A seated or cross-legged person's knees and ankles stray sideways; the hull follows.
    """
    seen = [i for i in (*HIPS, *KNEES, *ANKLES) if person.landmarks[i, 2] >= VISIBLE]
    xs = person.landmarks[seen, 0]
    reach = max(LEG_REACH * float(np.ptp(person.xs(HIPS))), LEG_REACH_TORSO * torso)
    return float(xs.min()) - reach, float(xs.max()) + reach


def product_region(image: Image.Image) -> Region:
    """The one item of a product shot: its extent on a plain background, else the whole photo."""
    small = image.convert("RGB")
    scale = max(small.size) / 160
    if scale > 1:
        small = small.resize((max(1, round(small.width / scale)), max(1, round(small.height / scale))))
    lab = rgb_to_lab(np.asarray(small)).reshape(small.height, small.width, 3)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    background = np.median(border, axis=0)
    item = np.linalg.norm(lab - background, axis=2) > PLAIN_DELTA
    plain = (np.linalg.norm(border - background, axis=1) < PLAIN_DELTA).mean() >= PLAIN_SHARE
    if not plain or item.mean() < MIN_PRODUCT:
        whole = (0, 0, image.width, image.height)
        return Region("product", whole, np.ones((image.height, image.width), bool), whole)
    ys, xs = np.nonzero(item)
    sx, sy = image.width / small.width, image.height / small.height
    box = (int(xs.min() * sx), int(ys.min() * sy), int(np.ceil((xs.max() + 1) * sx)), int(np.ceil((ys.max() + 1) * sy)))
    big = np.asarray(Image.fromarray(item).resize(image.size, Image.Resampling.NEAREST))
    return Region("product", box, big[box[1] : box[3], box[0] : box[2]], box)


def _mask_box(mask: np.ndarray, y0: float, y1: float, span: Span | None = None) -> Box | None:
    """The person mask's extent inside the band y0..y1, within the columns of ``span`` when given."""
    band = mask[int(y0) : int(np.ceil(y1))]
    lo, hi = (0, mask.shape[1]) if span is None else (max(0, int(span[0])), min(mask.shape[1], int(np.ceil(span[1]))))
    cols = lo + np.nonzero(band[:, lo:hi].any(axis=0))[0]
    if len(cols) == 0:
        return None
    x0, x1 = int(cols.min()), int(cols.max()) + 1
    if x1 - x0 < 4 or int(np.ceil(y1)) - int(y0) < 4:
        return None
    return x0, int(y0), x1, int(np.ceil(y1))


def _clip(core: tuple[float, float, float, float], box: Box) -> Box:
    x0, y0, x1, y1 = (int(v) for v in core)
    bx0, by0, bx1, by1 = box
    x0, x1 = max(bx0, min(x0, bx1 - 2)), min(bx1, max(x1, x0 + 2))
    y0, y1 = max(by0, min(y0, by1 - 2)), min(by1, max(y1, y0 + 2))
    return x0, y0, max(x1, x0 + 2), max(y1, y0 + 2)


def _inside(person: Person, taken: np.ndarray) -> bool:
    """Is this 'new' person the torso of one already found (a ghost left at the painted-out edges)?"""
    x, y = person.landmarks[list(TORSO_POINTS), :2].mean(axis=0)
    h, w = taken.shape
    return bool(taken[min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1)])


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """The mask grown by about ``steps`` pixels, on an 8x smaller copy (a full-size max filter takes seconds)."""
    from PIL import ImageFilter

    small = Image.fromarray(mask.astype(np.uint8) * 255).reduce(8)
    grown = small.filter(ImageFilter.MaxFilter(2 * max(1, steps // 8) + 1))
    return np.asarray(grown.resize((mask.shape[1], mask.shape[0]), Image.Resampling.NEAREST)) > 0


def _pose_class(pose: type) -> type:
    """``pose``, or where protobuf dropped ``FieldDescriptor.label`` (6+; onnx needs it), a subclass that can still
    set its calculator options.

    MediaPipe 0.10.21's ``SolutionBase._modify_calculator_options`` reads that attribute. The subclass overrides the
    method for this one graph only: other MediaPipe users in the process keep the original. Its calculator options
    are all scalars here, so setting them directly is what the original does for them.
    """
    from google.protobuf.descriptor import FieldDescriptor

    if hasattr(FieldDescriptor, "label"):
        return pose
    return type("SvetaPose", (pose,), {"_modify_calculator_options": _modify_calculator_options})


def _modify_calculator_options(self: Any, config: Any, params: dict[str, Any]) -> None:
    from mediapipe.python import solution_base

    nested: dict[str, list[tuple[str, Any]]] = {}
    for key, value in params.items():
        node_name, _, field_name = key.partition(".")
        nested.setdefault(node_name, []).append((field_name, value))
    for node in config.node:
        if node.name not in nested:
            continue
        options_type = solution_base.CALCULATOR_TO_OPTIONS[node.calculator]
        packed = [o for o in node.node_options if o.type_url.endswith(options_type.DESCRIPTOR.full_name)]
        if packed:
            options = options_type.FromString(packed[0].value)
            _set_fields(options, nested[node.name])
            packed[0].value = options.SerializeToString()
        else:
            _set_fields(node.options.Extensions[options_type.ext], nested[node.name])


def _set_fields(options: Any, fields: list[tuple[str, Any]]) -> None:
    for name, value in fields:
        if value is None:
            options.ClearField(name)
        else:
            setattr(options, name, value)
