"""Domain models of dfr: plain validated values shared by the transports, the store and the API."""
