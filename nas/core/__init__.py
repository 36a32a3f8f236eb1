"""The ground floor: errors, strict parsing, storage, atomic files, interrupts; no torch."""
