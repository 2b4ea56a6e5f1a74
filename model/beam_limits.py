"""The widest beam generation accepts.

A module of its own, importing nothing, so that the API's request schema (:mod:`api.schemas`)
can derive its own limit from it without importing the model (and torch) at start-up.
"""

MAX_BEAM = 20
