"""Training: the train step, the STDiT and VAE loops, EMA, frame masks, run checkpoints and colossalai."""
