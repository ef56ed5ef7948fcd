"""``lpips-explorer metrics``: the registered metrics, the names ``--metrics`` takes. Reads the
registry's catalog only: no PyTorch is imported."""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("metrics", help="list the metrics (the names --metrics takes)")
    p.set_defaults(func=run)


def run(args) -> int:
    from core import metrics
    from core.lpips.names import MIN_SIDE

    defaults = metrics.defaults()
    print(f"{'name':<10}{'label':<10}{'default':<9}{'map':<5}{'min side':<18}meaning")
    for spec in metrics.specs():
        side = (f"by --net ({min(MIN_SIDE.values())}-{max(MIN_SIDE.values())})" if callable(spec.min_size)
                else str(spec.minimum(metrics.MetricContext())))
        default = "yes" if spec.key in defaults else "no"
        print(f"{spec.key:<10}{spec.label:<10}{default:<9}{'yes' if spec.has_map else 'no':<5}{side:<18}{spec.meaning}")
    return 0
