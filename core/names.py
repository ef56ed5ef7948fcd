"""The networks and versions LPIPS offers (kept free of heavy imports: the app's first
screen lists them before torch has loaded)."""

NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")
VERSIONS: tuple[str, ...] = ("0.1", "0.0")
NET_LABELS: dict[str, str] = {"alex": "AlexNet", "vgg": "VGG16", "squeeze": "SqueezeNet 1.1"}
