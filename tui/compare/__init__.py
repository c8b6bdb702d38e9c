"""The compare screen: marked sessions as overlaid curves, differing hyperparameters, bests."""
