"""Panel views, one module per group of screens of the manual."""
