"""One router per area: health, products, search, look, complete, tag, audit, sources, stats and map, the web page."""
