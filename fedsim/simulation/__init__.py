"""Scenarios and their simulation: the only package that imports Flower's runtime and Ray.

Import :mod:`fedsim.simulation.scenario` for parsing alone (it does not load Flower).
"""
