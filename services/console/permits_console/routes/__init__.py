"""One module of routes per audience: staff sign-in, clerks, the applicant, operators."""
