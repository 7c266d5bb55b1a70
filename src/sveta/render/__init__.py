"""Pictures: contact sheets of results and the other images sveta draws."""
