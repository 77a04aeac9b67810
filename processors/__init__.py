"""Our frame processors and observers."""
