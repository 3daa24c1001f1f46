"""Per-layer target sparsities from a sensitivity sweep: pure arithmetic, no TensorFlow.

Each layer's accuracy drop is taken as a function of its sparsity, linear between the
measured points (and 0 at sparsity 0), replaced by its lower convex hull. Pruned
parameters are then bought greedily where they cost the least drop per parameter, until
the parameter-weighted mean sparsity of the swept layers equals the target. On convex
curves that minimises the sum of the layers' drops, which is the predicted drop (layers
are assumed to hurt accuracy independently).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

Point = tuple[float, float]  # (sparsity, accuracy drop)


class ProposalError(ValueError):
    """The sweep cannot support the requested target."""


@dataclass(frozen=True)
class Proposal:
    layer_sparsities: dict[str, float]
    predicted_accuracy_drop: float


def lower_hull(points: list[Point]) -> list[Point]:
    """The lower convex hull of points sorted by sparsity (Andrew's monotone chain)."""
    hull: list[Point] = []
    for point in sorted(points):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1) > 0:
                break
            hull.pop()
        hull.append(point)
    return hull


def drop_curve(rows: list[list[float]], baseline: float) -> list[Point]:
    """A layer's (sparsity, drop) hull, starting at (0, 0)."""
    points = {0.0: 0.0}
    for sparsity, accuracy in rows:
        points[float(sparsity)] = baseline - accuracy if sparsity > 0 else 0.0
    return lower_hull(list(points.items()))


def interpolate(curve: list[Point], sparsity: float) -> float:
    for (x1, y1), (x2, y2) in itertools.pairwise(curve):
        if x1 <= sparsity <= x2:
            return y1 + (y2 - y1) * (sparsity - x1) / (x2 - x1)
    return curve[-1][1]


def propose(
    table: dict[str, list[list[float]]], baseline: float, params: dict[str, int], target_sparsity: float
) -> Proposal:
    """Per-layer sparsities whose parameter-weighted mean is `target_sparsity`, at the least predicted drop."""
    curves = {name: drop_curve(rows, baseline) for name, rows in table.items()}
    total = sum(params[name] for name in curves)
    reachable = sum(params[name] * curve[-1][0] for name, curve in curves.items()) / total
    if target_sparsity > reachable + 1e-12:
        raise ProposalError(
            f"target_sparsity ({target_sparsity}) is above what the sweep measured: at most {reachable:.6f} "
            "(every swept layer at its largest sparsity); sweep larger sparsities"
        )
    segments = []
    for name, curve in curves.items():
        for order, ((x1, y1), (x2, y2)) in enumerate(itertools.pairwise(curve)):
            segments.append(((y2 - y1) / ((x2 - x1) * params[name]), name, order, x2 - x1))
    sparsities = dict.fromkeys(curves, 0.0)
    remaining = target_sparsity * total  # parameters still to prune
    # Hull slopes rise within a layer, so sorting by cost keeps each layer's segments in order.
    for _, name, _, width in sorted(segments):
        if remaining <= 0:
            break
        taken = min(width * params[name], remaining)
        sparsities[name] += taken / params[name]
        remaining -= taken
    drop = sum(interpolate(curves[name], sparsity) for name, sparsity in sparsities.items())
    return Proposal(layer_sparsities=sparsities, predicted_accuracy_drop=drop)
