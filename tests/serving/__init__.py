"""cxr predict and cxr serve, tested with a tiny cascade (a package, so that its conftest
does not shadow the root one: import its helpers as ``serving.conftest``)."""
