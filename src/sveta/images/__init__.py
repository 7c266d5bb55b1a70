"""Images: the lazy content-addressed cache, preparation and colour."""
