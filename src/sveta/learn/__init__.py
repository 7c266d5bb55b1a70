"""Learning from the catalog: labels, attribute heads, the tuned embedding, the text map."""
