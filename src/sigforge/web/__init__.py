"""The HTTP edge: app factory, thin controllers, the API contract (schemas), and the one DomainError→HTTP map."""
