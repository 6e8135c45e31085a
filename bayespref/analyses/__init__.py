"""Analyses of fitted models: heterogeneity, causal estimands and overlap, sensitivity to unobserved
confounding. They use inference and models; nothing below them imports them."""
