"""The console: web pages for clerks, applicants and operators over the services' APIs."""
