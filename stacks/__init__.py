"""Stack composition: typed settings in, components out."""
