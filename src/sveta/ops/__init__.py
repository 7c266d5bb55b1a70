"""Operations: keeping the catalog fresh (sync), checking an install (doctor), embedding on a Ray cluster."""
