"""Pure intake rules: eligibility, age and residence arithmetic, view transitions. No I/O."""
