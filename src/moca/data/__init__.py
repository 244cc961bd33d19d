"""AVSBench data: on-disk layout, readers, datasets, synthetic generator, audio front end."""
