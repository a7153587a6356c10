"""First-fit-decreasing bin packing of pods onto nodes and node templates, shared by the policy and baselines.

Pods with equal requests and node selectors form one class and are packed together (as Cluster Autoscaler's
estimator groups equivalent pods), so the cost grows with the number of distinct shapes, not of pods.
Classes are taken largest first (GPU, then CPU, then memory); each goes into the bins in the order given, and
what is left opens new bins from the cheapest template that admits it, within the limits given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from oscar_deploy.autoscaler.model import ARCH_LABEL, NodeInfo, NodeTemplate, Resources

Selector = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PodClass:
    """`count` pods with the same requests and selector; `new_only` keeps them off ready nodes' free space."""

    requests: Resources
    selector: Selector
    count: int
    new_only: bool = False


@dataclass(slots=True)
class Bin:
    """A node (ready, booting, or new from a template) with the room left on it while packing."""

    name: str
    arch: str
    labels: Mapping[str, str]
    free: Resources
    kind: str
    template: NodeTemplate | None = None
    placed: int = 0

    def admits(self, selector: Selector) -> bool:
        for key, value in selector:
            if key == ARCH_LABEL:
                if value != self.arch:
                    return False
            elif self.labels.get(key) != value:
                return False
        return True


@dataclass(slots=True)
class PackResult:
    used: list[Bin] = field(default_factory=list)
    new: list[Bin] = field(default_factory=list)
    unplaced: list[tuple[PodClass, int, str]] = field(default_factory=list)


def selector_key(selector: Mapping[str, str]) -> Selector:
    return tuple(sorted(selector.items()))


Demand = tuple[Resources, Mapping[str, str], bool, int]


def classes_of(pods: Iterable[Demand]) -> list[PodClass]:
    """Groups (requests, selector, new_only, count) entries into classes, largest first."""
    counts: dict[tuple[Resources, Selector, bool], int] = {}
    for requests, selector, new_only, count in pods:
        key = (requests, selector_key(selector), new_only)
        counts[key] = counts.get(key, 0) + count
    classes = [PodClass(req, sel, count, new_only) for (req, sel, new_only), count in counts.items()]
    classes.sort(key=lambda c: (-c.requests.gpu, -c.requests.cpu_milli, -c.requests.memory_mib, c.selector))
    return classes


def node_bin(node: NodeInfo, kind: str, free: Resources | None = None) -> Bin:
    return Bin(node.name, node.arch, node.labels, node.free if free is None else free, kind)


def template_bin(template: NodeTemplate, name: str, kind: str = "new") -> Bin:
    return Bin(name, template.arch, template.labels, template.allocatable, kind, template)


def cheapest_first(templates: Iterable[NodeTemplate]) -> list[NodeTemplate]:
    ordered = list(templates)
    return sorted(ordered, key=lambda t: (t.cost_per_hour, ordered.index(t)))


def pack(
    classes: list[PodClass],
    bins: list[Bin],
    templates: list[NodeTemplate],
    available: Mapping[str, int] | None = None,
    new_limit: int | None = None,
) -> PackResult:
    """Packs the classes into `bins` (in order), then into new bins of `templates` (cheapest first).

    `available` caps new bins per template name (a template it does not name has none; None: no cap);
    `new_limit` caps new bins in total.
    Bins are updated in place (their `free` and `placed`); the result lists those that received pods.
    """
    result = PackResult()
    used_names: set[str] = set()
    opened: dict[str, int] = {}
    ordered = cheapest_first(templates)
    all_bins = list(bins)
    for position, pod_class in enumerate(classes):
        left = pod_class.count
        req = pod_class.requests
        if position % 8 == 0:
            all_bins = _open_bins(all_bins, classes[position:])
        for candidate in all_bins:
            if not left:
                break
            if pod_class.new_only and candidate.kind == "ready":
                continue
            if not candidate.admits(pod_class.selector):
                continue
            fit = min(left, req.copies_in(candidate.free))
            if fit:
                candidate.free = Resources(
                    candidate.free.cpu_milli - fit * req.cpu_milli,
                    candidate.free.memory_mib - fit * req.memory_mib,
                    candidate.free.gpu - fit * req.gpu,
                    candidate.free.pods - fit * req.pods,
                )
                candidate.placed += fit
                left -= fit
                if candidate.name not in used_names:
                    used_names.add(candidate.name)
                    result.used.append(candidate)
        reason = ""
        while left:
            template = _template_for(pod_class, ordered, available, opened)
            if template is None:
                reason = "no node template admits and fits it" if not _any_template(pod_class, ordered) else "pool"
                break
            if new_limit is not None and len(result.new) >= new_limit:
                reason = "limit"
                break
            opened[template.name] = opened.get(template.name, 0) + 1
            fresh = template_bin(template, f"{template.name}#{len(result.new) + 1}")
            fit = min(left, req.copies_in(fresh.free))
            fresh.free = Resources(
                fresh.free.cpu_milli - fit * req.cpu_milli,
                fresh.free.memory_mib - fit * req.memory_mib,
                fresh.free.gpu - fit * req.gpu,
                fresh.free.pods - fit * req.pods,
            )
            fresh.placed = fit
            left -= fit
            result.new.append(fresh)
            result.used.append(fresh)
            used_names.add(fresh.name)
            all_bins.append(fresh)
        if left:
            result.unplaced.append((pod_class, left, reason))
    return result


def _open_bins(bins: list[Bin], classes: list[PodClass]) -> list[Bin]:
    """The bins that can still take the smallest of the classes left (full bins only cost time). A resource no
    class left requests is not looked at, as the scheduler does not: a node whose pods request more CPU than it
    has still takes a pod that requests none."""
    cpu = min(c.requests.cpu_milli for c in classes)
    memory = min(c.requests.memory_mib for c in classes)
    return [
        b
        for b in bins
        if b.free.pods > 0 and (not cpu or b.free.cpu_milli >= cpu) and (not memory or b.free.memory_mib >= memory)
    ]


def _any_template(pod_class: PodClass, templates: list[NodeTemplate]) -> bool:
    return any(t.admits(dict(pod_class.selector)) and pod_class.requests.copies_in(t.allocatable) for t in templates)


def _template_for(
    pod_class: PodClass,
    templates: list[NodeTemplate],
    available: Mapping[str, int] | None,
    opened: Mapping[str, int],
) -> NodeTemplate | None:
    selector = dict(pod_class.selector)
    for template in templates:
        if not template.admits(selector) or not pod_class.requests.copies_in(template.allocatable):
            continue
        if available is not None and opened.get(template.name, 0) >= available.get(template.name, 0):
            continue
        return template
    return None


def nodes_needed(classes: list[PodClass], templates: list[NodeTemplate]) -> dict[str, int]:
    """How many fresh nodes of each template hold these pods (FFD; pods no template admits are left out)."""
    result = pack([PodClass(c.requests, c.selector, c.count) for c in classes], [], templates)
    needed: dict[str, int] = {}
    for fresh in result.new:
        assert fresh.template is not None
        needed[fresh.template.name] = needed.get(fresh.template.name, 0) + 1
    return needed
