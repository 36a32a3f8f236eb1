"""Data sets and the budgeted training that scores one candidate."""
