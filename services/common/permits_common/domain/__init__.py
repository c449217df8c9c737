"""Domain values shared by more than one service: pure rules, no I/O, no frameworks."""
