"""Thinc layers that sit between an encoder's token vectors and a component's head.

Light at import: each module imports only spaCy/thinc/numpy.
"""
