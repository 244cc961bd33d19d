"""moca: unsupervised audio-visual segmentation (MoCA) as a reproducible training workflow."""

__version__ = "0.1.0"
