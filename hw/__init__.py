"""chanscale hardware (Amaranth). Not implemented yet: see issue 3."""
