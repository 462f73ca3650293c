"""Engine: the one place that wires models, data, losses and metrics together."""
