"""Storage: persists readings and replies to history queries (``smartbuilding storage``).

:mod:`.service` runs the service and states its delivery contract; :mod:`.backend` is
the interface every database backend implements, and :mod:`.sqlite` the embedded one.
"""
