"""The ground every package stands on: the device contract, settings, data files, time, classes, alarm events.

It imports nothing of the product, so any package may import it (tests/test_layering.py keeps it so).
"""
