"""Verification report rendering (pure): SVG plots, the offline HTML page and source-line traceability."""
