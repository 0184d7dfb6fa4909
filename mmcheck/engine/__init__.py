"""The generic model checker: breadth-first search over any model protocol (knows nothing
of memory management), in one process or hash-partitioned over several."""
