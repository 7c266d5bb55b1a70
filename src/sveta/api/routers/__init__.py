"""One router per area: health, products, search, look, complete, tag, audit, sources."""
