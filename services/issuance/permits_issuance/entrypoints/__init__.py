"""Framework edges: the Faust agents and timers, and the HTTP routes served inside the worker."""
