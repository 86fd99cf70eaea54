"""Training and checkpoint machinery: checkpoints, distributed launch, EMA."""
