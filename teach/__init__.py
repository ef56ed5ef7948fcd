"""Teaching with the metric engine: the class quiz's rounds and statistics, severity sweeps and equal-PSNR sets."""
