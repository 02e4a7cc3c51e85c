"""ScienceLab's container images: one folder per image, and `build.py`, which `make images` runs."""
