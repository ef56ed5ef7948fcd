"""The networks, their layers and the versions LPIPS offers: plain data, kept free of heavy
imports (the app's first screen and the command line's --help list them before torch has loaded)."""

NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")
VERSIONS: tuple[str, ...] = ("0.1", "0.0")
NET_LABELS: dict[str, str] = {"alex": "AlexNet", "vgg": "VGG16", "squeeze": "SqueezeNet 1.1"}

# Layer names as the LPIPS paper and the official code call them.
TAP_NAMES: dict[str, tuple[str, ...]] = {
    "alex": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
    "squeeze": ("relu1", "relu2", "relu3", "relu4", "relu5", "relu6", "relu7"),
}
CHANNELS: dict[str, tuple[int, ...]] = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}
# Smallest square input each net accepts (found by `smallest_input`, checked in the tests):
# below it a pooling layer would get an empty window.
MIN_SIDE: dict[str, int] = {"alex": 31, "vgg": 16, "squeeze": 17}
